"""What the bench scripts share: free ports, process groups, plain-rustc
builds, a plain server's life (ready line, stop), medians and ratios.

The scripts run as `python3 bench/X.py`; each puts its own folder first on
`sys.path` so that `import common` finds this file from any working folder.
Python 3.11, standard library only.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"

# The two kinds of server an exercise can have.  Few lessons have servers
# that accept once and end; real ones (lesson 7's) loop on
# `listener.incoming()` until aula stops them after their clients end (its
# grace time), so the benchmarks measure both and report them apart.
KINDS = ("end", "loop")
KIND_NAMES = {"end": "servers that end", "loop": "servers that loop"}


class BenchError(Exception):
    """A measurement could not be made or its result was wrong."""


def parse_kinds(text: str) -> list[str]:
    """`end,loop` (or one of them) into the kinds in their fixed order;
    ValueError on anything else."""
    asked = {k.strip() for k in text.split(",") if k.strip()}
    if not asked or asked - set(KINDS):
        raise ValueError(f"kinds must be a comma-separated subset of {','.join(KINDS)}")
    return [k for k in KINDS if k in asked]


# --------------------------------------------------------------------------
# Processes


def free_port() -> int:
    """A TCP port nobody holds on HOST now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a process started by this script in a session of its own."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def start(cmd: list[str], cwd: Path | None = None) -> subprocess.Popen:
    """Start a program with its output piped, in a session of its own (so
    kill_group ends it and whatever it started)."""
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_ready_line(proc: subprocess.Popen, deadline: float) -> bytes:
    """Wait for a plain server's `listening` line on its stdout; return what
    came after that line in the same read (the caller's output begins there).

    The harness must not connect to learn that the port is bound: a server
    that accepts once would take the probe for its client."""
    fd = proc.stdout.fileno()
    got = b""
    while b"\n" not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError("plain server did not report bound in time")
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(timeout=10)
                err = proc.stderr.read().decode(errors="replace")
                raise BenchError(f"plain server exited before binding:\n{err}")
            got += chunk
    first, _, rest = got.partition(b"\n")
    if first != b"listening":
        raise BenchError(f"unexpected first line from plain server: {got!r}")
    return rest


def bound(port: int) -> bool:
    """Whether something listens on TCP `port` or holds UDP `port`, from the
    kernel's socket tables (no connection: that would be a client)."""
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


def stop_server(proc: subprocess.Popen, loops: bool, deadline: float) -> tuple[bytes, bytes]:
    """A plain server's stdout and stderr once its clients are done.

    A server that ends is waited for (it must end by itself); one that loops
    is killed at once, as a student stops it, never after a grace time.  What
    it printed before the kill is still in the pipe and is read all the same.
    """
    if loops:
        kill_group(proc)
        return proc.communicate()
    try:
        return proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise BenchError("plain server did not end after its client")


# --------------------------------------------------------------------------
# Plain rustc


def rustc_command(src: Path, out: Path, flags: list[str]) -> list[str]:
    return ["rustc", *flags, str(src), "-o", str(out)]


def compile_concurrently(builds: list[tuple[Path, Path]], flags: list[str], cwd: Path,
                         deadline: float) -> None:
    """Compile every (source, binary) at once, one rustc each, as aula
    compiles an exercise's server and client side by side."""
    procs = [start(rustc_command(src, out, flags), cwd) for src, out in builds]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            if proc.returncode != 0:
                raise BenchError(f"rustc failed ({shlex.join(proc.args)}):\n"
                                 f"{err.decode(errors='replace')}")
    except subprocess.TimeoutExpired:
        raise BenchError("rustc took too long")
    finally:
        for proc in procs:
            kill_group(proc)


def compile_one(src: Path, out: Path, flags: list[str], timeout: float) -> Path:
    """Compile one program; its binary."""
    compile_concurrently([(src, out)], flags, src.parent, time.monotonic() + timeout)
    return out


# --------------------------------------------------------------------------
# Figures


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(v) for name, v in times.items() if v}


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b took no time."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def verdict(x: float | None, target: float) -> str:
    if x is None:
        return "n/a"
    return "OK" if x <= target else "MISSED"


def fmt(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "n/a"
    return f"{x:.2f} {unit}".rstrip() if unit else f"{x:.2f}"


def busy_warning(load: float) -> str | None:
    """A warning when the 1-minute load says the figures will be noisy."""
    if load > 0.5 * (os.cpu_count() or 1):
        return "warning: the machine is busy; the figures will be noisy"
    return None
