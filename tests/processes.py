"""Finding a stack's OS processes through /proc, for drills that kill them; signalling processes under test."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def children_of(pid: int) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> set[int]:
    tree, found, frontier = children_of(pid), set(), [pid]
    while frontier:
        for child in tree.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def job_workers(stack) -> list[int]:
    """Live runtime worker processes serving the jobs queue."""
    supervisor = stack.services["runtime"].process.pid
    found = []
    for pid in descendants(supervisor):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"process_jobs" in argv and alive(pid):
            found.append(pid)
    return sorted(found)


def hangs_under_sigterm_bursts(argv: list[str], ready: str, trials: int, cwd: Path, timeout: float = 3.0,
                               env: dict[str, str] | None = None) -> int:
    """Start `argv` `trials` times; each time it prints `ready`, send its process group a burst of SIGTERMs
    (about 30 µs apart for a few ms), as when make forwards a SIGTERM the process already got. Count the
    runs that did not exit within `timeout`: a handler that takes a lock the main thread may hold (say,
    Event.set()) deadlocks in a good fraction of them."""
    hung = 0
    for trial in range(trials):
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
        try:
            for line in process.stdout:
                if ready in line:
                    break
            else:
                raise AssertionError(f"{argv} exited ({process.wait()}) without printing {ready!r}")
            time.sleep(0.02 + (trial % 7) * 0.013)
            for _ in range(100):
                os.killpg(process.pid, signal.SIGTERM)
                pause_until = time.perf_counter() + 30e-6
                while time.perf_counter() < pause_until:
                    pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                hung += 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            process.stdout.close()
    return hung
