"""Child processes that die with their parent, so Ctrl-C or a kill leaves no orphans, and that can be stopped."""
from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from typing import Callable, Sequence

_PR_SET_PDEATHSIG = 1


def _prepare_child() -> None:
    # An ignored signal stays ignored across exec. Started from a script's background job or nohup, we would
    # pass SIGINT's SIG_IGN on to every child, and one that relies on the default (KeyboardInterrupt) could
    # then not be stopped with it. Handled signals revert to the default at exec by themselves.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_process_kwargs() -> dict:
    """Popen keyword arguments for a child that starts with SIGINT and SIGTERM at their defaults and receives
    SIGTERM when its parent dies."""
    return {"preexec_fn": _prepare_child}


def stop_together(processes: Sequence[tuple[str, subprocess.Popen]], grace: float,
                  kill: Callable[[str, subprocess.Popen], None]) -> None:
    """SIGTERM to every one still running at once (each handles it), one shared grace period, then `kill` (which
    also says why) for any still running: stopping takes the slowest one's time, not the sum."""
    running = [(name, process) for name, process in processes if process.poll() is None]
    for _, process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill(name, process)
            process.wait()
