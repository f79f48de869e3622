#!/usr/bin/env python3
"""Benchmark `aula grade` against grading the same halves with plain rustc.

The reference has three exercises: a TCP server to write (`upper`), a UDP
client to write (`ping`), and both sides of a second TCP exercise (`sum`).
N submissions are correct and distinct (each graded cell carries its own
number, so nothing compiled for one can serve another).

Each round measures, alternating:

  aula      `aula grade REF SUBS --out DIR -j J`: every check of every
            submission (4 checks each), sandbox included.
  rustc     the same student halves as plain programs, `rustc -C
            opt-level=0` (aula's level for cells), each compiled then run
            against the reference's halves, which are compiled once before
            the round's clock starts, as aula does.

It prints the medians, the ratio aula / rustc with the target (2.0), the
submissions per minute, and aula's peak RSS (of the aula process, from
wait4). Python 3.11, standard library only.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
TARGET = 2.0
RUN_TIMEOUT = 30.0

PLAIN = """\
fn upper(s: &str) -> String {
    s.trim_end().to_uppercase()
}
"""

# (exercise, role, code with {N} for the student's number, expected output)
UPPER_SERVER = """\
use std::io::{BufRead, BufReader, Write};
let listener = std::net::TcpListener::bind((HOST, PORT))?;
let (stream, _) = listener.accept()?;
let _student = {N};
let mut line = String::new();
BufReader::new(&stream).read_line(&mut line)?;
writeln!(&stream, "{}", upper(&line))?;
println!("served");
"""
UPPER_CLIENT = """\
use std::io::{BufRead, BufReader, Write};
let mut stream = std::net::TcpStream::connect((HOST, PORT))?;
stream.write_all(b"ola\\n")?;
let mut reply = String::new();
BufReader::new(&stream).read_line(&mut reply)?;
print!("{reply}");
"""
PING_SERVER = """\
let socket = std::net::UdpSocket::bind((HOST, PORT))?;
let mut buf = [0u8; 64];
let (n, from) = socket.recv_from(&mut buf)?;
socket.send_to(&buf[..n], from)?;
println!("got {}", String::from_utf8_lossy(&buf[..n]));
"""
PING_CLIENT = """\
let socket = std::net::UdpSocket::bind((HOST, 0))?;
let _student = {N};
socket.send_to(b"ping", (HOST, PORT))?;
let mut buf = [0u8; 64];
let n = socket.recv(&mut buf)?;
println!("echo {}", String::from_utf8_lossy(&buf[..n]));
"""
SUM_SERVER = """\
use std::io::{BufRead, BufReader, Write};
let listener = std::net::TcpListener::bind((HOST, PORT))?;
let (stream, _) = listener.accept()?;
let _student = {N};
let mut line = String::new();
BufReader::new(&stream).read_line(&mut line)?;
let total: i64 = line.split_whitespace().map(|w| w.parse::<i64>().unwrap_or(0)).sum();
writeln!(&stream, "{total}")?;
println!("summed");
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

EXERCISES = [
    # id, server, server output, server graded, client, client output, client graded
    ("upper", UPPER_SERVER, "served", True, UPPER_CLIENT, "OLA", False),
    ("ping", PING_SERVER, "got ping", False, PING_CLIENT, "echo ping", True),
    ("sum", SUM_SERVER, "summed", True, SUM_CLIENT, "sum 42", True),
]


def solution(code: str, n: int | None) -> str:
    body = code.replace("{N}", str(n if n is not None else 0))
    if n is None:
        return "// BEGIN SOLUTION\n" + body + "// END SOLUTION\n"
    return body


def lesson(n: int | None) -> str:
    """The reference (n None) or submission n."""
    out = ["# Grading benchmark\n\n```rust\n" + PLAIN + "```\n"]
    for ex, server, s_out, s_graded, client, c_out, c_graded in EXERCISES:
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
    subprocess.run(
        ["rustc", "--edition", "2021", "-C", "opt-level=0", "-o", str(path), str(src)],
        check=True,
        capture_output=True,
    )
    return path


def bound(port: int) -> bool:
    hexport = f"{port:04X}"
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if local.endswith(":" + hexport) and (table.startswith("udp") or state == "0A"):
                return True
    return False


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def exchange(server: Path, client: Path, expect: tuple[str, str]) -> None:
    port = free_port()
    srv = subprocess.Popen([str(server), str(port)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not bound(port):
        if time.monotonic() > deadline or srv.poll() is not None:
            srv.kill()
            raise RuntimeError("server did not bind")
        time.sleep(0.002)
    out = subprocess.run([str(client), str(port)], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    s_out, _ = srv.communicate(timeout=RUN_TIMEOUT)
    if (s_out.strip(), out.stdout.strip()) != expect:
        raise RuntimeError(f"wrong outputs: {s_out!r} {out.stdout!r}")


def rustc_round(n: int, work: Path, refs: dict[tuple[str, str], Path]) -> float:
    """Each student half compiled, then run against the reference's."""
    start = time.monotonic()
    for k in range(1, n + 1):
        for ex, server, s_out, s_graded, client, c_out, c_graded in EXERCISES:
            if s_graded:
                mine = compile_program(server.replace("{N}", str(k)), work / f"s{k}-{ex}-server")
                exchange(mine, refs[(ex, "client")], (s_out, c_out))
            if c_graded:
                mine = compile_program(client.replace("{N}", str(k)), work / f"s{k}-{ex}-client")
                exchange(refs[(ex, "server")], mine, (s_out, c_out))
    return time.monotonic() - start


def aula_round(aula: str, ref: Path, subs: Path, out: Path, jobs: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        [aula, "grade", str(ref), str(subs), "--out", str(out), "-j", str(jobs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    if status != 0:
        raise RuntimeError(f"aula grade exited {status}: {proc.stderr.read()}")
    rows = (out / "grades.csv").read_text().splitlines()[1:]
    if len(rows) != len(list(subs.iterdir())) or any(",graded,3,3," not in r + "," for r in rows):
        raise RuntimeError("not every submission got full marks:\n" + "\n".join(rows))
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--aula", default="target/release/aula")
    p.add_argument("--submissions", type=int, default=40)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=1)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="aula-grade-bench-") as tmp:
        work = Path(tmp)
        ref = work / "ref.md"
        ref.write_text(lesson(None))
        subs = work / "subs"
        subs.mkdir()
        for k in range(1, args.submissions + 1):
            (subs / f"s{k:03}.md").write_text(lesson(k))
        refs = {}
        for ex, server, _, s_graded, client, _, c_graded in EXERCISES:
            if s_graded:
                refs[(ex, "client")] = compile_program(client.replace("{N}", "0"), work / f"ref-{ex}-client")
            if c_graded:
                refs[(ex, "server")] = compile_program(server.replace("{N}", "0"), work / f"ref-{ex}-server")
        aula_times, rustc_times, peaks = [], [], []
        for r in range(args.rounds):
            t, peak = aula_round(args.aula, ref, subs, work / "out", args.jobs)
            aula_times.append(t)
            peaks.append(peak)
            rustc_times.append(rustc_round(args.submissions, work, refs))
            print(f"round {r + 1}: aula {t:.1f} s, rustc {rustc_times[-1]:.1f} s, peak {peak / 1e9:.2f} GB", flush=True)
        a, b = statistics.median(aula_times), statistics.median(rustc_times)
        n = args.submissions
        print(f"\n{n} submissions x 4 checks, -j {args.jobs}, medians of {args.rounds} rounds")
        print(f"aula grade   {a:7.1f} s   {60 * n / a:5.1f} submissions/min   peak RSS {max(peaks) / 1e9:.2f} GB (target <= 2)")
        print(f"plain rustc  {b:7.1f} s   {60 * n / b:5.1f} submissions/min")
        print(f"ratio        {a / b:7.2f}x  (target <= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
