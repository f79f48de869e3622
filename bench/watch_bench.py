#!/usr/bin/env python3
"""Benchmark the interactive course: a saved change to its verdict on screen.

A student saves and waits.  The script runs `aula` (no subcommand, on a
terminal: `aula watch`) in a tmux session on a course of one TCP echo
exercise, and each round measures, alternating which goes first:

  aula   from the write of a changed server cell to the screen showing
         `✓ ID passes!` for the new code (the evcxr contexts are warm: the
         session has run the exercise before).
  rustc  the same server and client as plain programs: both compiled at
         once with `rustc -C opt-level=0 --edition 2021` (aula's default
         opt-level for cells), then run, server first, the client once the
         server has said it is bound; the whole of it.

It does so for two exercises, each in a course and an aula of its own: one
whose server accepts once and ends ("servers that end"), and one whose
server loops on `listener.incoming()` as lesson 7's do ("servers that
loop"), which aula stops after its client ends (its grace time) and the
plain baseline kills as soon as its client is done.

Every round writes new server code (a round tag in the string the server
answers with), so neither aula's result cache nor anything else can answer
from an earlier round.  Then it prints the medians and the ratio the
project targets.  Python 3.11, standard library, `tmux` and `rustc` on PATH.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Import common.py from this script's folder, wherever it is run from, and
# leave no __pycache__ behind in the checkout.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (the path above makes it importable)
    HOST, KIND_NAMES, KINDS, BenchError, busy_warning, compile_concurrently, free_port, kill_group,
    medians, parse_kinds, ratio, start, stop_server, verdict, wait_ready_line,
)

RUSTC_FLAGS = ["-C", "opt-level=0", "--edition", "2021"]
FIRST_VERDICT_TIMEOUT = 300.0  # seconds; the first run also starts the evcxr contexts
ROUND_TIMEOUT = 120.0  # seconds, one save-to-verdict or one rustc compile-and-run
POLL = 0.02  # seconds between two looks at the screen
# A pause before each measurement, so that what the previous one left behind
# (exiting processes, a redraw) is not charged to the next.  A student takes
# longer than this between two saves anyway.
SETTLE = 1.0
# Save to verdict against rustc: 2.5 for a server that ends (issue 9), 1.5
# for one that loops (issue 19: the grace time must not be what one waits for).
TARGETS = {"end": 2.5, "loop": 1.5}

# Printed by the shell in the pane if aula ends, so that an early exit shows
# up as an error (with aula's last words on the screen) rather than a timeout.
EXITED = "[aula exited with status"


# --------------------------------------------------------------------------
# Sources
#
# The server reads one line per connection and answers with the line and
# the round's tag.  One kind accepts one connection and ends by itself (so
# aula's grace time, how long a server may take to end after its last
# client, is never waited out); the other loops on `listener.incoming()`
# forever, as real servers do, and is stopped from outside.  The client is
# the same in every round; only the server and the expected output change,
# as when a student edits a solution.

MESSAGE = "hello from the client"


def tag(token: str, k: int) -> str:
    # Letters, digits and '-' only: safe in a Rust string literal and free of
    # the format's `[..]`, `[PORT]`, `[HOST]` and `...` patterns.
    return f"round-{token}-{k}"


ANSWER = """\
let mut line = String::new();
BufReader::new(&conn).read_line(&mut line).unwrap();
let line = line.trim_end();
println!("got: {line}");
let tag = "@TAG@";
(&conn).write_all(format!("{line} ({tag})\\n").as_bytes()).unwrap();
"""

SERVER_BODIES = {
    "end": (
        "let listener = TcpListener::bind((HOST, PORT)).unwrap();\n"
        "{ready}let (conn, _addr) = listener.accept().unwrap();\n"
        + ANSWER
    ),
    "loop": (
        "let listener = TcpListener::bind((HOST, PORT)).unwrap();\n"
        "{ready}for conn in listener.incoming() {\n"
        "    let conn = conn.unwrap();\n"
        + "".join(f"    {line}\n" for line in ANSWER.splitlines())
        + "}\n"
    ),
}

CLIENT_BODY = f"""\
let mut stream = TcpStream::connect((HOST, PORT)).unwrap();
stream.write_all(b"{MESSAGE}\\n").unwrap();
let mut answer = String::new();
BufReader::new(&stream).read_line(&mut answer).unwrap();
print!("Received {{answer}}");
"""

SERVER_USES = "use std::io::{BufRead, BufReader, Write};\nuse std::net::TcpListener;\n"
CLIENT_USES = "use std::io::{BufRead, BufReader, Write};\nuse std::net::TcpStream;\n"


@dataclass(frozen=True)
class Kind:
    """One of the two exercises: its server kind and the screen's marks."""

    name: str  # "end" or "loop"
    exercise: str

    @property
    def passed(self) -> str:
        return f"✓ {self.exercise} passes!"

    @property
    def failed(self) -> str:
        return f"✗ {self.exercise}:"

    @property
    def running(self) -> str:
        return f"running {self.exercise}…"

    def server_body(self, ready: str, t: str) -> str:
        return SERVER_BODIES[self.name].replace("{ready}", ready).replace("@TAG@", t)


EXERCISES = {"end": Kind("end", "echo-line"), "loop": Kind("loop", "echo-loop")}


def client_output(t: str) -> str:
    return f"Received {MESSAGE} ({t})\n"


def lesson_text(kind: Kind, t: str) -> str:
    return (
        "# Watch benchmark\n\n"
        "Generated by bench/watch_bench.py.\n\n"
        f"```rust,server,exercise={kind.exercise}\n{SERVER_USES}\n{kind.server_body('', t)}```\n\n"
        f"```output\ngot: {MESSAGE}\n```\n\n"
        f"```rust,client,exercise={kind.exercise}\n{CLIENT_USES}\n{CLIENT_BODY}```\n\n"
        f"```output\n{client_output(t)}```\n"
    )


def indent(body: str) -> str:
    return "".join(f"    {line}\n" if line.strip() else "\n" for line in body.splitlines())


def plain_program(uses: str, body: str, port: int) -> str:
    return (
        uses
        + f'\nconst HOST: &str = "{HOST}";\nconst PORT: u16 = {port};\n\n'
        + "fn main() {\n"
        + indent(body)
        + "}\n"
    )


# --------------------------------------------------------------------------
# Plain rustc


def baseline(kind: Kind, t: str, work: Path) -> float:
    """Compile the plain server and client at once, run them; the whole time.
    A looping server is killed as soon as its client is done."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_rs, client_rs = work / "server.rs", work / "client.rs"
    # The server says it is bound on stdout (line-buffered in Rust, pipe or not).
    server_rs.write_text(plain_program(SERVER_USES, kind.server_body('println!("listening");\n', t), port))
    client_rs.write_text(plain_program(CLIENT_USES, CLIENT_BODY, port))
    server_bin, client_bin = work / "server", work / "client"

    begin = time.perf_counter()
    deadline = time.monotonic() + ROUND_TIMEOUT
    compile_concurrently([(server_rs, server_bin), (client_rs, client_bin)], RUSTC_FLAGS, work, deadline)

    server = start([str(server_bin)], work)
    client = None
    try:
        s_first = wait_ready_line(server, deadline)
        client = start([str(client_bin)], work)
        try:
            c_out, c_err = client.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError(f"the plain programs took more than {ROUND_TIMEOUT:.0f} s")
        s_out, s_err = stop_server(server, kind.name == "loop", deadline)
        elapsed = time.perf_counter() - begin
    finally:
        for proc in (server, client):
            if proc is not None:
                kill_group(proc)

    s_out = s_first + s_out
    want_c, want_s = client_output(t), f"got: {MESSAGE}\n"
    if client.returncode != 0 or c_out.decode(errors="replace") != want_c:
        raise BenchError(f"plain client: exit {client.returncode}, stdout {c_out!r}, "
                         f"expected {want_c!r}\n{c_err.decode(errors='replace')}")
    # A looping server was killed: its status says nothing, its output does.
    server_ok = kind.name == "loop" or server.returncode == 0
    if not server_ok or s_out.decode(errors="replace") != want_s:
        raise BenchError(f"plain server: exit {server.returncode}, stdout {s_out!r}, "
                         f"expected {want_s!r}\n{s_err.decode(errors='replace')}")
    return elapsed


# --------------------------------------------------------------------------
# aula in tmux


class Tmux:
    """One tmux server of our own (its own socket), so that nothing of the
    user's tmux is touched and killing it ends everything we started there."""

    def __init__(self, name: str):
        self.base = ["tmux", "-L", name, "-f", "/dev/null"]
        self.session = name
        self.started = False
        self.socket: Path | None = None

    def start(self, shell_command: str) -> None:
        self.started = True
        res = subprocess.run(
            [*self.base, "new-session", "-d", "-s", self.session, "-x", "120", "-y", "50",
             shell_command],
            capture_output=True, timeout=30,
        )
        if res.returncode != 0:
            raise BenchError(f"tmux new-session failed: {res.stderr.decode(errors='replace')}")
        res = subprocess.run([*self.base, "display-message", "-p", "#{socket_path}"],
                             capture_output=True, timeout=10)
        if res.returncode == 0 and res.stdout.strip():
            self.socket = Path(res.stdout.decode().strip())

    def screen(self) -> str:
        res = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", self.session],
            capture_output=True, timeout=10,
        )
        if res.returncode != 0:
            raise BenchError(f"tmux capture-pane failed: {res.stderr.decode(errors='replace')}")
        return res.stdout.decode(errors="replace")

    def kill(self) -> None:
        if self.started:
            subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=30)
            self.started = False
        # A killed server may leave its socket file behind.
        if self.socket is not None:
            self.socket.unlink(missing_ok=True)


def wait_screen(tmux: Tmux, kind: Kind, want: str, timeout: float, what: str) -> float:
    """Poll the screen until it shows `want`; the time it was first seen.

    A failing verdict or aula's exit is an error at once, with the screen."""
    deadline = time.monotonic() + timeout
    while True:
        screen = tmux.screen()
        seen = time.perf_counter()
        if want in screen:
            return seen
        if EXITED in screen:
            raise BenchError(f"{what}: aula ended; the screen:\n{screen.rstrip()}")
        if kind.failed in screen:
            raise BenchError(f"{what}: the exercise did not pass; the screen:\n{screen.rstrip()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: `{want}` not on screen after {timeout:.0f} s; "
                             f"the screen:\n{screen.rstrip()}")
        time.sleep(POLL)


def save(lesson: Path, text: str) -> float:
    """Save the lesson as many editors do (a new file renamed over the old,
    so aula can never read it half-written); the time of the rename."""
    tmp = lesson.parent.parent / (lesson.name + ".saving")  # outside lessons/: no event
    tmp.write_text(text)
    start = time.perf_counter()
    os.replace(tmp, lesson)
    return start


def aula_round(tmux: Tmux, kind: Kind, lesson: Path, t: str, what: str) -> float:
    """Save a new server cell; seconds until its pass verdict is on screen."""
    if kind.passed not in tmux.screen():
        raise BenchError(f"{what}: the previous verdict is not on screen:\n{tmux.screen().rstrip()}")
    begin = save(lesson, lesson_text(kind, t))
    # The pass verdict of the previous round is still on screen until aula
    # has read the change; a pass seen after `running` is this round's.  The
    # new text cannot come from the cache, and compiling it takes far longer
    # than one poll, so `running` cannot be missed.
    wait_screen(tmux, kind, kind.running, ROUND_TIMEOUT, f"{what} (waiting for the run to start)")
    return wait_screen(tmux, kind, kind.passed, ROUND_TIMEOUT, what) - begin


def measure(kind: Kind, aula: Path, tmp: Path, token: str, rounds: int) -> dict[str, list[float]]:
    """Start aula on a course of this kind's exercise and measure its rounds
    (alternating aula and rustc); the counted times of each."""
    course = tmp / kind.name / "course"
    (course / "lessons").mkdir(parents=True)
    lesson = course / "lessons" / "01-bench.md"
    lesson.write_text(lesson_text(kind, tag(token, 0)))
    tmux = Tmux(f"aula-watch-bench-{os.getpid()}-{kind.name}")
    # The cache lives in the temp dir, neither reading nor filling the user's.
    # LC_ALL and LC_MESSAGES would win over LANG: the screen must be English.
    command = (
        f"cd {shlex.quote(str(course))} && "
        f"env -u LC_ALL -u LC_MESSAGES AULA_CACHE_DIR={shlex.quote(str(tmp / 'aula-cache'))} "
        f"LANG=C.UTF-8 {shlex.quote(str(aula))}; "
        f'echo "{EXITED} $?]"; sleep 3600'
    )
    times: dict[str, list[float]] = {"aula": [], "rustc": []}
    print(f"{KIND_NAMES[kind.name]} (exercise {kind.exercise})", flush=True)
    try:
        begin = time.perf_counter()
        tmux.start(command)
        first = wait_screen(tmux, kind, kind.passed, FIRST_VERDICT_TIMEOUT, "first run") - begin
        print(f"first verdict (cold start, contexts started)  {first:7.2f} s", flush=True)

        # Round 0 warms what a first save still pays for once (the rustc and
        # aula code paths and files in the page cache); it is not counted.
        for r in range(0, rounds + 1):
            t = tag(token, r + 1)
            label = f"round {r}"
            order = ("aula", "rustc") if r % 2 == 1 else ("rustc", "aula")
            for which in order:
                time.sleep(SETTLE)
                if which == "aula":
                    s = aula_round(tmux, kind, lesson, t, label)
                    name = "aula save->verdict"
                else:
                    s = baseline(kind, t, tmp / kind.name / "plain" / f"round{r}")
                    name = "rustc compile+run "
                if r:
                    times[which].append(s)
                note = "" if r else "  (warm-up, not counted)"
                print(f"{label}  {name} {s:7.2f} s{note}", flush=True)
    finally:
        tmux.kill()
    return times


# --------------------------------------------------------------------------
# Report


def report(results: dict[str, dict[str, list[float]]], rounds: int) -> None:
    med = {kind: medians(times) for kind, times in results.items()}
    kinds = list(results)
    print()
    print(f"Medians over {rounds} round(s), seconds (rustc = rustc {' '.join(RUSTC_FLAGS)}, "
          f"server+client compiled in parallel, then run; a looping server is killed "
          f"once its client is done)")
    print("                     " + "".join(f"{KIND_NAMES[k]:>20}" for k in kinds))
    print("  aula save->verdict " + "".join(f"{med[k]['aula']:20.2f}" for k in kinds))
    print("  rustc compile+run  " + "".join(f"{med[k]['rustc']:20.2f}" for k in kinds))
    print()
    print("Target")
    for k in kinds:
        r = ratio(med[k]["aula"], med[k]["rustc"])
        if r is None:
            print(f"  save to verdict, {KIND_NAMES[k]}  n/a (rustc took no time)")
            continue
        print(f"  save to verdict, {KIND_NAMES[k]:<17}  aula_save_to_verdict / rustc_compile_and_run "
              f"= {r:.2f}   target <= {TARGETS[k]}  {verdict(r, TARGETS[k])}")


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aula", type=Path, default=here.parent / "target" / "release" / "aula",
                    help="aula binary (default: ../target/release/aula from this script)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of measurements (default 5)")
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="servers to measure: end, loop or end,loop (default end,loop)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    args = ap.parse_args()

    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    try:
        kinds = parse_kinds(args.kinds)
    except ValueError as e:
        ap.error(str(e))
    aula = args.aula.resolve()
    if not os.access(aula, os.X_OK):
        ap.error(f"aula binary not found or not executable: {aula}")
    for tool in ("rustc", "tmux"):
        if shutil.which(tool) is None:
            ap.error(f"{tool} not found on PATH")

    load = os.getloadavg()
    cpus = os.cpu_count() or 1
    print(f"load average (1, 5, 15 min) at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {cpus} CPU(s)")
    if warning := busy_warning(load[0]):
        print(warning, file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="aula-watch-bench-"))
    # A token per run: even a kept cache folder could not know this code.
    token = secrets.token_hex(6)
    results: dict[str, dict[str, list[float]]] = {}
    failed = False
    try:
        for k in kinds:
            results[k] = measure(EXERCISES[k], aula, tmp, token, args.rounds)
    except BenchError as e:
        failed = True
        print(f"\nFAILED: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        failed = True
        print("\ninterrupted", file=sys.stderr)
    finally:
        if args.keep:
            print(f"\ntemp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        return 1

    report(results, args.rounds)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
