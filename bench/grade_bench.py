#!/usr/bin/env python3
"""Benchmark `aula grade` against grading the same halves with plain rustc.

The reference has three exercises: a TCP server to write (`upper`), a UDP
client to write (`ping`), and both sides of a second TCP exercise (`sum`).
N submissions are correct and distinct (each graded cell carries its own
number, so nothing compiled for one can serve another).  There are two such
references, measured apart: one whose servers accept once and end ("servers
that end"), and one whose servers loop forever, as lesson 7's do ("servers
that loop"), which aula stops after their clients end (its grace time).

Each round measures, alternating which goes first:

  aula      `aula grade REF SUBS --out DIR -j J` for each J of --jobs:
            every check of every submission (4 checks each), sandbox
            included.
  rustc     the same student halves as plain programs, `rustc -C
            opt-level=0` (aula's level for cells), each compiled then run
            against the reference's halves, which are compiled once before
            the round's clock starts, as aula does; one half at a time.
  rustc x2  the same, two halves at a time (a pool of two workers), as two
            cores allow.

A plain server that loops is killed as soon as its client is done: the
baseline never waits a grace time.  It prints the medians, the ratios with
their target (2.0), the submissions per minute, and aula's peak RSS (of the
aula process, from wait4).  Python 3.11, standard library only.  See
bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Import common.py from this script's folder, wherever it is run from, and
# leave no __pycache__ behind in the checkout.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (the path above makes it importable)
    KIND_NAMES, KINDS, BenchError, bound, compile_one, free_port, kill_group, parse_kinds,
    start, stop_server,
)

TARGET = 2.0
RUN_TIMEOUT = 30.0
RUSTC_FLAGS = ["--edition", "2021", "-C", "opt-level=0"]
POOL = 2  # halves at a time in the two-core baseline

PLAIN = """\
fn upper(s: &str) -> String {
    s.trim_end().to_uppercase()
}
"""


def tcp_server(kind: str, compute: str, reply: str, said: str) -> str:
    """A TCP server cell that reads a line per connection, says `said` and
    answers `reply` (a format string's arguments, after `compute`'s lines).
    It accepts once and ends, or loops on `incoming()` as real servers do.
    It prints before it answers: the baseline kills a looping server as
    soon as its client has the answer, and the line must be out by then."""
    serve = ("let _student = {N};\nlet mut line = String::new();\n"
             "BufReader::new(&stream).read_line(&mut line)?;\n"
             + compute + f'println!("{said}");\nwriteln!(&stream, {reply})?;\n')
    head = ("use std::io::{BufRead, BufReader, Write};\n"
            "let listener = std::net::TcpListener::bind((HOST, PORT))?;\n")
    if kind == "end":
        return head + "let (stream, _) = listener.accept()?;\n" + serve
    return (head + "for stream in listener.incoming() {\n    let stream = stream?;\n"
            + "".join(f"    {line}\n" for line in serve.splitlines()) + "}\n")


SUM_LINE = "let total: i64 = line.split_whitespace().map(|w| w.parse::<i64>().unwrap_or(0)).sum();\n"
UPPER_SERVER = {k: tcp_server(k, "", '"{}", upper(&line)', "served") for k in KINDS}
SUM_SERVER = {k: tcp_server(k, SUM_LINE, '"{total}"', "summed") for k in KINDS}

UPPER_CLIENT = """\
use std::io::{BufRead, BufReader, Write};
let mut stream = std::net::TcpStream::connect((HOST, PORT))?;
stream.write_all(b"ola\\n")?;
let mut reply = String::new();
BufReader::new(&stream).read_line(&mut reply)?;
print!("{reply}");
"""
PING_SERVER = {
    "end": """\
let socket = std::net::UdpSocket::bind((HOST, PORT))?;
let mut buf = [0u8; 64];
let (n, from) = socket.recv_from(&mut buf)?;
socket.send_to(&buf[..n], from)?;
println!("got {}", String::from_utf8_lossy(&buf[..n]));
""",
    # A UDP server that loops prints before it answers, as the TCP ones do.
    "loop": """\
let socket = std::net::UdpSocket::bind((HOST, PORT))?;
let mut buf = [0u8; 64];
loop {
    let (n, from) = socket.recv_from(&mut buf)?;
    println!("got {}", String::from_utf8_lossy(&buf[..n]));
    socket.send_to(&buf[..n], from)?;
}
""",
}
PING_CLIENT = """\
let socket = std::net::UdpSocket::bind((HOST, 0))?;
let _student = {N};
socket.send_to(b"ping", (HOST, PORT))?;
let mut buf = [0u8; 64];
let n = socket.recv(&mut buf)?;
println!("echo {}", String::from_utf8_lossy(&buf[..n]));
"""
SUM_CLIENT = """\
use std::io::{BufRead, BufReader, Write};
let mut stream = std::net::TcpStream::connect((HOST, PORT))?;
let _student = {N};
stream.write_all(b"1 2 39\\n")?;
let mut reply = String::new();
BufReader::new(&stream).read_line(&mut reply)?;
println!("sum {}", reply.trim());
"""

EXERCISES = {
    # id, server, server output, server graded, client, client output, client graded
    k: [
        ("upper", UPPER_SERVER[k], "served", True, UPPER_CLIENT, "OLA", False),
        ("ping", PING_SERVER[k], "got ping", False, PING_CLIENT, "echo ping", True),
        ("sum", SUM_SERVER[k], "summed", True, SUM_CLIENT, "sum 42", True),
    ]
    for k in KINDS
}


def solution(code: str, n: int | None) -> str:
    body = code.replace("{N}", str(n if n is not None else 0))
    if n is None:
        return "// BEGIN SOLUTION\n" + body + "// END SOLUTION\n"
    return body


def lesson(kind: str, n: int | None) -> str:
    """The reference (n None) or submission n."""
    out = ["# Grading benchmark\n\n```rust\n" + PLAIN + "```\n"]
    for ex, server, s_out, s_graded, client, c_out, c_graded in EXERCISES[kind]:
        s = solution(server, n) if s_graded else server.replace("{N}", "0")
        c = solution(client, n) if c_graded else client.replace("{N}", "0")
        out.append(f"\n```rust,server,exercise={ex}\n{s}```\n\n```output\n{s_out}\n```\n")
        out.append(f"\n```rust,client,exercise={ex}\n{c}```\n\n```output\n{c_out}\n```\n")
    return "".join(out)


def program(code: str) -> str:
    return (
        "#![allow(warnings)]\nfn main() {\n"
        'let HOST: &str = "127.0.0.1";\n'
        "let PORT: u16 = std::env::args().nth(1).unwrap().parse().unwrap();\n"
        + PLAIN
        + "let r: Result<(), Box<dyn std::error::Error>> = (|| {\n"
        + code
        + "\n; Ok(()) })();\nr.unwrap();\n}\n"
    )


def compile_program(code: str, path: Path) -> Path:
    src = path.with_suffix(".rs")
    src.write_text(program(code))
    return compile_one(src, path, RUSTC_FLAGS, RUN_TIMEOUT)


# --------------------------------------------------------------------------
# Plain rustc


def exchange(server: Path, client: Path, expect: tuple[str, str], loops: bool) -> None:
    """Run a server, then its client once the port is bound, and check both
    outputs; a looping server is killed as soon as the client is done."""
    port = free_port()
    srv = start([str(server), str(port)])
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not bound(port):
            if time.monotonic() > deadline or srv.poll() is not None:
                raise BenchError("server did not bind")
            time.sleep(0.002)
        out = subprocess.run([str(client), str(port)], capture_output=True, text=True, timeout=RUN_TIMEOUT)
        s_out, _ = stop_server(srv, loops, time.monotonic() + RUN_TIMEOUT)
    finally:
        kill_group(srv)
    if (s_out.decode(errors="replace").strip(), out.stdout.strip()) != expect:
        raise BenchError(f"wrong outputs: {s_out!r} {out.stdout!r}")


def halves(kind: str, n: int) -> list[tuple[int, str, str, str, tuple[str, str]]]:
    """Every student half of n submissions: (student, exercise, role, code,
    expected outputs), in the order a submission lists them."""
    out = []
    for k in range(1, n + 1):
        for ex, server, s_out, s_graded, client, c_out, c_graded in EXERCISES[kind]:
            if s_graded:
                out.append((k, ex, "server", server.replace("{N}", str(k)), (s_out, c_out)))
            if c_graded:
                out.append((k, ex, "client", client.replace("{N}", str(k)), (s_out, c_out)))
    return out


def grade_half(half, work: Path, refs: dict[tuple[str, str], Path], loops: bool) -> None:
    """Compile one student half, then run it against the reference's other half."""
    k, ex, role, code, expect = half
    mine = compile_program(code, work / f"s{k}-{ex}-{role}")
    if role == "server":
        exchange(mine, refs[(ex, "client")], expect, loops)
    else:
        exchange(refs[(ex, "server")], mine, expect, loops)


def rustc_round(kind: str, n: int, work: Path, refs: dict[tuple[str, str], Path], workers: int) -> float:
    """Each student half compiled, then run against the reference's;
    `workers` halves at a time."""
    todo = halves(kind, n)
    loops = kind == "loop"
    start_time = time.monotonic()
    if workers == 1:
        for half in todo:
            grade_half(half, work, refs, loops)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # list() so that the first failure is raised here.
            list(pool.map(lambda half: grade_half(half, work, refs, loops), todo))
    return time.monotonic() - start_time


def compile_references(kind: str, work: Path) -> dict[tuple[str, str], Path]:
    """The reference's halves the students' halves run against, keyed by the
    exercise and the role of the half they are partners of."""
    refs = {}
    for ex, server, _, s_graded, client, _, c_graded in EXERCISES[kind]:
        if s_graded:
            refs[(ex, "client")] = compile_program(client.replace("{N}", "0"), work / f"ref-{ex}-client")
        if c_graded:
            refs[(ex, "server")] = compile_program(server.replace("{N}", "0"), work / f"ref-{ex}-server")
    return refs


# --------------------------------------------------------------------------
# aula


def aula_round(aula: str, ref: Path, subs: Path, out: Path, jobs: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    start_time = time.monotonic()
    proc = subprocess.Popen(
        [aula, "grade", str(ref), str(subs), "--out", str(out), "-j", str(jobs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start_time
    if status != 0:
        raise RuntimeError(f"aula grade exited {status}: {proc.stderr.read()}")
    rows = (out / "grades.csv").read_text().splitlines()[1:]
    if len(rows) != len(list(subs.iterdir())) or any(",graded,3,3," not in r + "," for r in rows):
        raise RuntimeError("not every submission got full marks:\n" + "\n".join(rows))
    return elapsed, usage.ru_maxrss * 1024


# --------------------------------------------------------------------------
# Report


def prepare(kind: str, work: Path, n: int) -> tuple[Path, Path, dict[tuple[str, str], Path]]:
    """Write the reference and n submissions of this kind; compile the
    reference's halves.  (reference, submissions folder, compiled halves)"""
    base = work / kind
    base.mkdir()
    ref = base / "ref.md"
    ref.write_text(lesson(kind, None))
    subs = base / "subs"
    subs.mkdir()
    for k in range(1, n + 1):
        (subs / f"s{k:03}.md").write_text(lesson(kind, k))
    return ref, subs, compile_references(kind, base)


def one_round(aula: str, kind: str, r: int, n: int, jobs: list[int], prepared, work: Path) -> dict[str, float]:
    """One round of one kind: aula at each -j, rustc one and two halves at a
    time; aula first on odd rounds, the baselines first on even ones."""
    ref, subs, refs = prepared
    base = work / kind
    t: dict[str, float] = {}

    def run_aula() -> None:
        for j in jobs:
            t[f"aula -j {j}"], t[f"peak -j {j}"] = aula_round(aula, ref, subs, base / "out", j)

    def run_rustc() -> None:
        t["rustc"] = rustc_round(kind, n, base, refs, 1)
        t["rustc x2"] = rustc_round(kind, n, base, refs, POOL)

    for step in ((run_aula, run_rustc) if r % 2 == 1 else (run_rustc, run_aula)):
        step()
    j0 = jobs[0]
    extra = "".join(f", aula -j {j} {t[f'aula -j {j}']:.1f} s" for j in jobs[1:])
    print(f"round {r} ({KIND_NAMES[kind]}): aula {t[f'aula -j {j0}']:.1f} s, rustc {t['rustc']:.1f} s, "
          f"peak {t[f'peak -j {j0}'] / 1e9:.2f} GB, rustc {POOL} at a time {t['rustc x2']:.1f} s{extra}",
          flush=True)
    return t


def report(kind: str, times: dict[str, list[float]], n: int, jobs: list[int], rounds: int) -> None:
    med = {name: statistics.median(v) for name, v in times.items()}
    b, b2 = med["rustc"], med["rustc x2"]
    j0 = jobs[0]
    a = med[f"aula -j {j0}"]
    peak = max(times[f"peak -j {j0}"])
    print(f"\n{KIND_NAMES[kind]}")
    # The first four lines are the ones earlier versions printed.
    print(f"{n} submissions x 4 checks, -j {j0}, medians of {rounds} rounds")
    print(f"aula grade   {a:7.1f} s   {60 * n / a:5.1f} submissions/min   peak RSS {peak / 1e9:.2f} GB (target <= 2)")
    print(f"plain rustc  {b:7.1f} s   {60 * n / b:5.1f} submissions/min")
    print(f"ratio        {a / b:7.2f}x  (target <= {TARGET}x)")
    for j in jobs[1:]:
        aj = med[f"aula -j {j}"]
        print(f"aula grade -j {j}   {aj:7.1f} s   {60 * n / aj:5.1f} submissions/min   "
              f"peak RSS {max(times[f'peak -j {j}']) / 1e9:.2f} GB")
    print(f"plain rustc, {POOL} at a time  {b2:7.1f} s   {60 * n / b2:5.1f} submissions/min")
    for j in jobs:
        aj = med[f"aula -j {j}"]
        print(f"ratio, aula -j {j} / rustc {POOL} at a time  {aj / b2:7.2f}x  (target <= {TARGET}x)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--aula", default="target/release/aula")
    p.add_argument("--submissions", type=int, default=40)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--jobs", default="1",
                   help="aula grade -j; a comma-separated list (e.g. 1,2) runs aula at each (default 1)")
    p.add_argument("--kinds", default=",".join(KINDS),
                   help="servers to measure: end, loop or end,loop (default end,loop)")
    args = p.parse_args()
    try:
        jobs = [int(j) for j in args.jobs.split(",") if j.strip()]
        kinds = parse_kinds(args.kinds)
    except ValueError as e:
        p.error(str(e))
    if not jobs or min(jobs) < 1:
        p.error("--jobs must be positive integers")

    with tempfile.TemporaryDirectory(prefix="aula-grade-bench-") as tmp:
        work = Path(tmp)
        prepared = {kind: prepare(kind, work, args.submissions) for kind in kinds}
        times = {kind: {} for kind in kinds}
        for r in range(1, args.rounds + 1):
            for kind in kinds:
                for name, t in one_round(args.aula, kind, r, args.submissions, jobs, prepared[kind], work).items():
                    times[kind].setdefault(name, []).append(t)
        for kind in kinds:
            report(kind, times[kind], args.submissions, jobs, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
