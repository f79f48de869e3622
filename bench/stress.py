#!/usr/bin/env python3
"""Stress test for `aula`: several runs of one lesson at once, then a hunt for
port collisions and for processes left behind.

Usage:

    python3 bench/stress.py                          # 3 processes x 8 exercises, 1 round
    python3 bench/stress.py --processes 2 --exercises 4
    python3 bench/stress.py --rounds 5 --aula-arg=--jobs=2 --keep

Python 3.11, standard library only, Linux only (it reads /proc).

What one round does
-------------------

1. A lesson of M exercises (`--exercises`, default 8) is written to a
   temporary folder (removed at the end unless `--keep`; generated once and
   run by every round). The exercises cycle through three kinds, each a
   server cell, a client cell and their `output` blocks, using only the
   runner's `HOST` and `PORT` (never a fixed port):
     - `tcp4-NN`: TCP echo on (HOST, PORT): accept one connection, echo
       until EOF, end;
     - `tcp6-NN`: the same on ("::1", PORT);
     - `udp-NN`:  UDP echo on (HOST, PORT): echo one datagram, end.
   The last exercise, `spawn-NN`, is a TCP echo whose server first starts a
   long-lived child, `std::process::Command::new("sleep").arg("300").spawn()`,
   and then serves normally: after the run no such process may survive.
   Servers listen on loopback only; clients set 10 s read timeouts; each
   exercise has `timeout=` from `--exercise-timeout` (default 30 s, so that a
   loaded 2-core machine is not mistaken for a broken runner; 0 leaves the
   format's default of 10 s).

2. P aula processes (`--processes`, default 3) are started at the same time,
   each `AULA run --format json --no-cache [--aula-arg ...] LESSON`, stdout and stderr
   to files (not pipes, so that a stray grandchild holding an inherited
   descriptor cannot hang the script). Each gets `--timeout` seconds
   (default 900); past it, that aula process alone is killed with SIGKILL
   and counts as failed.

3. From each process's exit status and JSON report (../shared/REPORT-FORMAT.md)
   the script counts, over all processes of the round:
     - failures: exercise verdicts that are not `pass` (an exercise missing
       from a report, or every exercise of a process that printed no
       readable report, counts as one with verdict `(no report)`);
     - address-in-use: non-pass exercises whose text (message, diff, stderr,
       or any other string in the exercise's JSON object) mentions
       "Address already in use" or "os error 98";
     - flaky: non-pass exercises that passed in another process of the same
       round;
     - collisions: non-pass exercises that are address-in-use or flaky
       (counted once if both).

4. Once every aula process has exited, the script waits `--settle` seconds
   (default 1) and scans /proc/*/stat, cmdline and environ for processes
   left behind. A candidate is a process that
     - has `EVCXR_IS_RUNTIME=1` in its environment (an evcxr context), or
     - whose command line starts with the aula binary's path, or
     - is `sleep 300` and started after the script did (field 22 of
       /proc/PID/stat, clock ticks since boot, against the script's own), or
     - carries this script's tag (below) in its environment.
   Every aula process is started with `AULA_STRESS_TAG=<unique value>` in its
   environment, which its children inherit. A candidate carrying the tag is a
   stray of this run: it is reported (PID, why, command line) and killed
   with SIGKILL, so that the machine stays clean. A candidate without the tag
   (another engineer's `cargo test`, another benchmark's aula) is listed as
   "not ours" and neither counted nor killed. Zombies are ignored (they hold
   nothing and cannot be killed).

Output and exit status
----------------------

Per round, one line per aula process and the details of every non-pass
exercise and stray; at the end a summary: processes, exercises per process,
wall time, failures, collisions (address in use / flaky), stray processes,
and the verdict. Exit status 0 only if there were no collisions and no
strays and every aula process exited 0 in every round (the summary says
which condition failed); 1 otherwise; 2 for a bad command line or a missing
aula binary.

`--aula-arg` is repeatable and must be written with `=` when its value starts
with a dash: `--aula-arg=--jobs=2 --aula-arg=--grace=2`.

Ctrl-C kills the aula processes this script started, then cleans up strays
and the temporary folder as usual.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TAG_VAR = "AULA_STRESS_TAG"
COLLISION_MARKERS = ("Address already in use", "os error 98")
DEFAULT_AULA = Path(__file__).resolve().parent.parent / "target" / "release" / "aula"
NO_REPORT = "(no report)"


# --------------------------------------------------------------------------
# The lesson
# --------------------------------------------------------------------------

def _tcp_server(host_expr: str, shown_addr: str, exercise: str, timeout: int,
                spawn: bool) -> tuple[str, str]:
    spawn_code = ""
    spawn_out = ""
    if spawn:
        spawn_code = (
            "// A long-lived child: the runner must not leave it behind.\n"
            'let _child = std::process::Command::new("sleep").arg("300").spawn().unwrap();\n'
            'println!("Spawned a child");\n'
        )
        spawn_out = "Spawned a child\n"
    attrs = f"rust,server,exercise={exercise}"
    if timeout:
        attrs += f",timeout={timeout}"
    code = (
        f"```{attrs}\n"
        "use std::io::{Read, Write};\n"
        "use std::net::TcpListener;\n"
        "\n"
        f"{spawn_code}"
        f"let listener = TcpListener::bind({host_expr}).unwrap();\n"
        "let (mut conn, addr) = listener.accept().unwrap();\n"
        'println!("Connected by {addr}");\n'
        "let mut buf = [0u8; 1024];\n"
        "let mut total = 0;\n"
        "loop {\n"
        "    let n = conn.read(&mut buf).unwrap();\n"
        "    if n == 0 {\n"
        "        break;\n"
        "    }\n"
        "    conn.write_all(&buf[..n]).unwrap();\n"
        "    total += n;\n"
        "}\n"
        'println!("Echoed {total} bytes");\n'
        "```\n"
    )
    return code, spawn_out + f"Connected by {shown_addr}:[..]\n"


def _tcp_client(host_expr: str, exercise: str, message: str) -> tuple[str, str]:
    code = (
        f"```rust,client,exercise={exercise}\n"
        "use std::io::{Read, Write};\n"
        "use std::net::{Shutdown, TcpStream};\n"
        "use std::time::Duration;\n"
        "\n"
        f"let mut stream = TcpStream::connect({host_expr}).unwrap();\n"
        "stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();\n"
        f'stream.write_all(b"{message}").unwrap();\n'
        "stream.shutdown(Shutdown::Write).unwrap();\n"
        "let mut echoed = String::new();\n"
        "stream.read_to_string(&mut echoed).unwrap();\n"
        'println!("Received {echoed}");\n'
        "```\n"
    )
    return code, f"Received {message}\n"


def _udp_server(exercise: str, timeout: int) -> str:
    attrs = f"rust,server,exercise={exercise}"
    if timeout:
        attrs += f",timeout={timeout}"
    code = (
        f"```{attrs}\n"
        "use std::net::UdpSocket;\n"
        "\n"
        "let socket = UdpSocket::bind((HOST, PORT)).unwrap();\n"
        "let mut buf = [0u8; 1500];\n"
        "let (n, peer) = socket.recv_from(&mut buf).unwrap();\n"
        "socket.send_to(&buf[..n], peer).unwrap();\n"
        'println!("Echoed {n} bytes to {peer}");\n'
        "```\n"
    )
    return code


def _udp_client(exercise: str, message: str) -> tuple[str, str]:
    code = (
        f"```rust,client,exercise={exercise}\n"
        "use std::net::UdpSocket;\n"
        "use std::time::Duration;\n"
        "\n"
        "let socket = UdpSocket::bind((HOST, 0)).unwrap();\n"
        "socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();\n"
        f'socket.send_to(b"{message}", (HOST, PORT)).unwrap();\n'
        "let mut buf = [0u8; 1500];\n"
        "let (n, from) = socket.recv_from(&mut buf).unwrap();\n"
        'println!("Received {} from {from}", String::from_utf8_lossy(&buf[..n]));\n'
        "```\n"
    )
    return code, f"Received {message} from [HOST]:[PORT]\n"


def exercise_plan(count: int) -> list[tuple[str, str]]:
    """(id, kind) for each exercise: tcp4/tcp6/udp in turn, the last one spawn."""
    kinds = ["tcp4", "tcp6", "udp"]
    plan = []
    for i in range(1, count + 1):
        kind = "spawn" if i == count else kinds[(i - 1) % len(kinds)]
        plan.append((f"{kind}-{i:02d}", kind))
    return plan


def make_lesson(count: int, timeout: int) -> str:
    parts = [
        "# Stress lesson\n\n"
        "Generated by `bench/stress.py`: echo exercises over TCP (IPv4 and\n"
        "IPv6 loopback) and UDP, and one server that starts a long-lived child.\n"
    ]
    for exercise, kind in exercise_plan(count):
        message = f"hello from {exercise}"
        parts.append(f"\n## Exercise `{exercise}` ({kind})\n")
        if kind in ("tcp4", "spawn"):
            server, server_out = _tcp_server("(HOST, PORT)", "127.0.0.1", exercise,
                                             timeout, spawn=kind == "spawn")
            client, client_out = _tcp_client("(HOST, PORT)", exercise, message)
            server_out += f"Echoed {len(message.encode())} bytes\n"
        elif kind == "tcp6":
            server, server_out = _tcp_server('("::1", PORT)', "[::1]", exercise,
                                             timeout, spawn=False)
            client, client_out = _tcp_client('("::1", PORT)', exercise, message)
            server_out += f"Echoed {len(message.encode())} bytes\n"
        else:
            server = _udp_server(exercise, timeout)
            server_out = f"Echoed {len(message.encode())} bytes to 127.0.0.1:[..]\n"
            client, client_out = _udp_client(exercise, message)
        parts.append("\n" + server + "\n```output\n" + server_out + "```\n")
        parts.append("\n" + client + "\n```output\n" + client_out + "```\n")
    return "".join(parts)


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------

def proc_stat(pid: int | str) -> tuple[str, int, int] | None:
    """(state, ppid, starttime in clock ticks since boot), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or
    # parentheses itself: the fields after it start past the last ')'.
    rest = raw[raw.rindex(")") + 2:].split()
    # rest[0] is field 3 (state), so field N is rest[N - 3].
    return rest[0], int(rest[1]), int(rest[22 - 3])


def proc_read(pid: int | str, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


@dataclass
class Candidate:
    pid: int
    start: int
    ppid: int
    argv: list[str]
    reasons: list[str]
    tagged: bool
    environ_readable: bool

    @property
    def cmdline(self) -> str:
        return " ".join(self.argv) if self.argv else "?"


def scan_processes(aula: Path, tag: str, since_ticks: int) -> list[Candidate]:
    own = os.getpid()
    aula_prefixes = {str(aula), os.path.realpath(aula)}
    tag_entry = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        stat = proc_stat(entry)
        if stat is None:
            continue
        state, ppid, start = stat
        if state in ("Z", "X"):
            continue
        raw_cmd = proc_read(entry, "cmdline")
        if not raw_cmd:  # kernel thread, or gone
            continue
        argv = [a.decode(errors="replace") for a in raw_cmd.rstrip(b"\0").split(b"\0")]
        raw_env = proc_read(entry, "environ")
        env = set(raw_env.split(b"\0")) if raw_env is not None else set()
        reasons = []
        if b"EVCXR_IS_RUNTIME=1" in env:
            reasons.append("evcxr runtime")
        if any(argv[0].startswith(p) for p in aula_prefixes):
            reasons.append("aula binary")
        if (os.path.basename(argv[0]) == "sleep" and argv[1:] == ["300"]
                and start >= since_ticks):
            reasons.append("sleep 300 started after the script")
        tagged = tag_entry in env
        if tagged and not reasons:
            reasons.append("descendant (carries the run's tag)")
        if reasons:
            found.append(Candidate(int(entry), start, ppid, argv, reasons, tagged,
                                   raw_env is not None))
    return found


def kill_strays(strays: list[Candidate], wait: float = 3.0) -> dict[int, str]:
    """SIGKILL each stray (after checking its PID was not reused); returns
    pid -> what happened."""
    fate = {}
    for s in strays:
        stat = proc_stat(s.pid)
        if stat is None or stat[2] != s.start:
            fate[s.pid] = "already gone"
            continue
        try:
            os.kill(s.pid, signal.SIGKILL)
            fate[s.pid] = "killed"
        except ProcessLookupError:
            fate[s.pid] = "already gone"
        except PermissionError as e:
            fate[s.pid] = f"could not kill: {e}"
    deadline = time.monotonic() + wait
    pending = [s for s in strays if fate[s.pid] == "killed"]
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        pending = [s for s in pending
                   if (st := proc_stat(s.pid)) is not None and st[2] == s.start
                   and st[0] not in ("Z", "X")]
    for s in pending:
        fate[s.pid] = "SIGKILL sent, still alive after {:.0f} s".format(wait)
    return fate


# --------------------------------------------------------------------------
# Running aula
# --------------------------------------------------------------------------

@dataclass
class ProcResult:
    index: int
    pid: int
    status: int | None = None     # exit status; negative = killed by signal
    timed_out: bool = False
    seconds: float = 0.0
    report: dict | None = None
    report_error: str = ""
    stderr_tail: str = ""
    verdicts: dict[str, dict] = field(default_factory=dict)  # id -> exercise object


def run_round(args, aula: Path, lesson: Path, workdir: Path, round_no: int,
              tag: str, running: list) -> tuple[list[ProcResult], float]:
    env = dict(os.environ)
    env[TAG_VAR] = tag
    env.setdefault("NO_COLOR", "1")
    # --no-cache: every process must really run every exercise, or the
    # stress test measures the result cache instead.
    cmd = [str(aula), "run", "--format", "json", "--no-cache", *args.aula_arg, str(lesson)]
    procs = []
    t0 = time.monotonic()
    for i in range(args.processes):
        out = open(workdir / f"round{round_no}-proc{i + 1}.stdout", "wb")
        err = open(workdir / f"round{round_no}-proc{i + 1}.stderr", "wb")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=env, cwd=workdir)
        out.close()
        err.close()
        running.append(p)
        procs.append((p, ProcResult(index=i + 1, pid=p.pid)))
    deadline = t0 + args.timeout
    pending = list(procs)
    while pending:
        now = time.monotonic()
        for item in list(pending):
            p, r = item
            rc = p.poll()
            if rc is not None:
                r.status, r.seconds = rc, now - t0
                pending.remove(item)
            elif now >= deadline:
                p.kill()  # this aula process only, by its pid
                try:
                    r.status = p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    r.status = None
                r.timed_out, r.seconds = True, time.monotonic() - t0
                pending.remove(item)
        if pending:
            time.sleep(0.1)
    wall = time.monotonic() - t0
    for p, _ in procs:
        running.remove(p)

    results = []
    for _, r in procs:
        stdout = (workdir / f"round{round_no}-proc{r.index}.stdout").read_bytes()
        stderr = (workdir / f"round{round_no}-proc{r.index}.stderr").read_bytes()
        r.stderr_tail = stderr.decode(errors="replace").strip()[-1500:]
        try:
            r.report = json.loads(stdout)
            if not isinstance(r.report, dict):
                r.report, r.report_error = None, "stdout is JSON but not an object"
        except ValueError as e:
            r.report_error = f"stdout is not a JSON report ({e}); {len(stdout)} bytes"
        if r.report is not None:
            try:
                for lesson_rep in r.report.get("lessons", []):
                    for ex in lesson_rep.get("exercises", []):
                        r.verdicts[ex["id"]] = ex
            except (AttributeError, KeyError, TypeError) as e:
                r.report_error = f"unexpected report shape: {e!r}"
        results.append(r)
    return results, wall


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


@dataclass
class Failure:
    proc: int
    exercise: str
    verdict: str
    addr_in_use: bool
    flaky: bool
    detail: str


def classify(results: list[ProcResult], ids: list[str]) -> list[Failure]:
    passed_in = {i: {r.index for r in results
                     if r.verdicts.get(i, {}).get("verdict") == "pass"} for i in ids}
    failures = []
    for r in results:
        for i in ids:
            ex = r.verdicts.get(i)
            verdict = ex.get("verdict", "?") if ex else NO_REPORT
            if verdict == "pass":
                continue
            text = "\n".join(strings_in(ex)) if ex else ""
            addr = any(m in text for m in COLLISION_MARKERS)
            flaky = bool(passed_in[i] - {r.index})
            detail = ""
            if ex:
                bits = [ex.get("message", "")]
                if ex.get("diff"):
                    bits.append(ex["diff"])
                if ex.get("stderr"):
                    bits.append("stderr: " + str(ex["stderr"]))
                detail = "\n".join(b for b in bits if b)
            elif r.report_error:
                detail = r.report_error
            failures.append(Failure(r.index, i, verdict, addr, flaky, detail))
    return failures


def indent(text: str, prefix: str = "        ", limit: int = 1200) -> str:
    if len(text) > limit:
        text = text[:limit] + " [...]"
    return "\n".join(prefix + line for line in text.splitlines())


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="stress.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--processes", "-p", type=int, default=3, metavar="P",
                    help="aula processes run at once on the same lesson (default 3)")
    ap.add_argument("--exercises", "-m", type=int, default=8, metavar="M",
                    help="exercises in the generated lesson (default 8)")
    ap.add_argument("--rounds", "-n", type=int, default=1, metavar="N",
                    help="repeat the whole thing N times (default 1)")
    ap.add_argument("--aula", type=Path, default=DEFAULT_AULA, metavar="PATH",
                    help=f"the aula binary (default {DEFAULT_AULA})")
    ap.add_argument("--aula-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `aula run`, repeatable; write "
                         "--aula-arg=--jobs=2 when it starts with a dash")
    ap.add_argument("--timeout", type=float, default=900.0, metavar="SECS",
                    help="limit of each aula process; past it, it is killed (default 900)")
    ap.add_argument("--exercise-timeout", type=int, default=30, metavar="SECS",
                    help="timeout= written on every exercise (default 30; 0 = "
                         "none, the format's default of 10 s)")
    ap.add_argument("--settle", type=float, default=1.0, metavar="SECS",
                    help="wait after the last aula exits before looking for "
                         "stray processes (default 1)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder (lesson, each process's "
                         "stdout/stderr) and print its path")
    args = ap.parse_args(argv)
    for name in ("processes", "exercises", "rounds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.timeout <= 0 or args.settle < 0 or args.exercise_timeout < 0:
        ap.error("--timeout must be positive, --settle and --exercise-timeout not negative")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("stress.py: needs Linux (/proc)", file=sys.stderr)
        return 2
    aula = args.aula if args.aula.is_absolute() else Path.cwd() / args.aula
    if not os.access(aula, os.X_OK):
        print(f"stress.py: no executable aula at {aula}", file=sys.stderr)
        return 2

    own_stat = proc_stat("self")
    script_start_ticks = own_stat[2]
    tag = f"{os.getpid()}-{time.time_ns()}"
    workdir = Path(tempfile.mkdtemp(prefix="aula-stress-"))
    lesson = workdir / "stress.md"
    lesson.write_text(make_lesson(args.exercises, args.exercise_timeout))
    ids = [i for i, _ in exercise_plan(args.exercises)]

    print(f"aula:      {aula}" + (f"  (extra args: {' '.join(args.aula_arg)})"
                                   if args.aula_arg else ""))
    print(f"lesson:    {lesson} ({args.exercises} exercises: {', '.join(ids)})")
    print(f"run:       {args.rounds} round(s) x {args.processes} aula processes at once"
          f", timeout {args.timeout:g} s each; tag {TAG_VAR}={tag}")
    if not Path("/proc/net/if_inet6").exists():
        print("note:      no IPv6 on this machine; the tcp6 exercises cannot pass")
    sys.stdout.flush()

    running: list[subprocess.Popen] = []
    totals = dict(failures=0, addr=0, flaky=0, collisions=0, strays=0, results=0)
    nonzero: list[str] = []
    all_status: list[str] = []
    total_wall = 0.0
    interrupted = False
    t_all = time.monotonic()
    try:
        for round_no in range(1, args.rounds + 1):
            print(f"\n=== round {round_no}/{args.rounds} ===")
            sys.stdout.flush()
            results, wall = run_round(args, aula, lesson, workdir, round_no, tag, running)
            total_wall += wall
            failures = classify(results, ids)
            for r in results:
                n_pass = sum(1 for i in ids if r.verdicts.get(i, {}).get("verdict") == "pass")
                if r.timed_out:
                    st = f"killed after the {args.timeout:g} s timeout"
                elif r.status is not None and r.status < 0:
                    st = f"killed by signal {-r.status}"
                else:
                    st = f"exit {r.status}"
                all_status.append(st)
                if r.status != 0 or r.timed_out:
                    nonzero.append(f"round {round_no} process {r.index}: {st}")
                summ = (r.report or {}).get("summary", {})
                print(f"  process {r.index} (pid {r.pid}): {st}, {r.seconds:.1f} s, "
                      f"{n_pass}/{len(ids)} exercises passed"
                      + (f" (report summary: {json.dumps(summ)})" if summ else ""))
                if r.report_error:
                    print(f"      no usable report: {r.report_error}")
                if r.report_error or (r.status not in (0, 1)):
                    if r.stderr_tail:
                        print("      stderr (tail):")
                        print(indent(r.stderr_tail))
                for lesson_rep in (r.report or {}).get("lessons", []):
                    bad_cells = isinstance(lesson_rep, dict) and lesson_rep.get(
                        "unchecked_cell_failures")
                    if bad_cells:
                        print(f"      unchecked_cell_failures: {json.dumps(bad_cells)[:500]}")
            for f in failures:
                tags = [t for t, on in (("ADDRESS IN USE", f.addr_in_use),
                                        ("FLAKY: passed in another process", f.flaky)) if on]
                print(f"  process {f.proc}: {f.exercise}: {f.verdict}"
                      + (f"  [{'; '.join(tags)}]" if tags else ""))
                if f.detail:
                    print(indent(f.detail))
            n_addr = sum(f.addr_in_use for f in failures)
            n_flaky = sum(f.flaky for f in failures)
            n_coll = sum(f.addr_in_use or f.flaky for f in failures)

            # Stray processes, once every aula process has exited.
            time.sleep(args.settle)
            candidates = scan_processes(aula, tag, script_start_ticks)
            strays = [c for c in candidates if c.tagged]
            foreign = [c for c in candidates if not c.tagged]
            fate = kill_strays(strays) if strays else {}
            tck = os.sysconf("SC_CLK_TCK")
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            print(f"  stray processes (after {args.settle:g} s): {len(strays)}")
            for s in strays:
                age = uptime - s.start / tck
                print(f"    pid {s.pid} (ppid {s.ppid}, started {age:.1f} s before the "
                      f"scan) [{', '.join(s.reasons)}]: {s.cmdline[:300]} -> {fate[s.pid]}")
            if foreign:
                print(f"  matching processes not from this run (no {TAG_VAR} of ours; "
                      f"not counted, not killed): {len(foreign)}")
                for c in foreign:
                    why = ", ".join(c.reasons)
                    env_note = "" if c.environ_readable else " (environ unreadable)"
                    print(f"    pid {c.pid} [{why}]{env_note}: {c.cmdline[:200]}")

            print(f"  round {round_no}: wall {wall:.1f} s, failures {len(failures)}, "
                  f"collisions {n_coll} (address in use {n_addr}, flaky {n_flaky}), "
                  f"strays {len(strays)}")
            totals["failures"] += len(failures)
            totals["addr"] += n_addr
            totals["flaky"] += n_flaky
            totals["collisions"] += n_coll
            totals["strays"] += len(strays)
            totals["results"] += len(results) * len(ids)
            sys.stdout.flush()
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: killing the aula processes this script started", file=sys.stderr)
        for p in running:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(args.settle)
        strays = [c for c in scan_processes(aula, tag, script_start_ticks) if c.tagged]
        fate = kill_strays(strays) if strays else {}
        for s in strays:
            print(f"  stray pid {s.pid}: {s.cmdline[:200]} -> {fate[s.pid]}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"\nkept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if interrupted:
        return 1

    ok = totals["collisions"] == 0 and totals["strays"] == 0 and not nonzero
    print("\n=== summary ===")
    print(f"rounds:                  {args.rounds}")
    print(f"processes:               {args.processes} at once per round")
    print(f"exercises per process:   {args.exercises}")
    print(f"wall time:               {total_wall:.1f} s of aula runs "
          f"({time.monotonic() - t_all:.1f} s in all)")
    print(f"failures:                {totals['failures']} of {totals['results']} "
          f"exercise verdicts not pass")
    print(f"collisions:              {totals['collisions']}")
    print(f"  address in use:        {totals['addr']}")
    print(f"  flaky:                 {totals['flaky']} (failed here, passed in "
          f"another process of the same round)")
    print(f"stray processes:         {totals['strays']} (killed)")
    print(f"aula exit statuses:      {', '.join(all_status)}")
    if ok:
        print("result: OK (exit 0): no collisions, no stray processes, every aula "
              "process exited 0")
    else:
        why = []
        if totals["collisions"]:
            why.append(f"{totals['collisions']} collision(s)")
        if totals["strays"]:
            why.append(f"{totals['strays']} stray process(es)")
        if nonzero:
            why.append(f"{len(nonzero)} aula process(es) did not exit 0 "
                       f"({'; '.join(nonzero)})")
        print(f"result: FAIL (exit 1): {', '.join(why)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
