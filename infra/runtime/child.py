"""What every runtime child process (worker, scheduler) shares: arguments, logging, signals, readiness."""
from __future__ import annotations

import argparse
import logging
import os

from infra.signals import StopSignals

# A child prints this line on stdout once it is serving; the supervisor
# swallows it and counts the child as ready.
READY_LINE = "infra.runtime: child ready"


def child_argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--project-dir", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument(
        "--function-timeout",
        type=float,
        default=None,
        help="seconds; defaults to the function's lambda_timeout in .chalice/config.json",
    )
    return parser


def configure_logging() -> None:
    """Plain lines on stderr; the supervisor prefixes each with the child's role and pid."""
    logging.basicConfig(
        level=os.environ.get("PACER_RUNTIME_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # botocore announces where it found credentials each time a process starts.
    logging.getLogger("botocore").setLevel(logging.WARNING)


def stop_requested_by_signals() -> StopSignals:
    """A flag set by SIGTERM or SIGINT, so the process can finish what it holds first.

    SIGINT counts too: Ctrl-C in a terminal reaches the whole process group,
    and a worker must not abandon its batch halfway because of it. The
    handlers only set the flag (infra/signals.py): one that logged or set a
    threading.Event could deadlock on a lock the main thread holds.
    """
    return StopSignals().install()


def announce_ready() -> None:
    print(READY_LINE, flush=True)
