"""Child processes that die with their parent, so Ctrl-C or a kill leaves no orphans."""
from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_process_kwargs() -> dict:
    """Popen keyword arguments for a child that receives SIGTERM when its parent dies."""
    return {"preexec_fn": _die_with_parent}
