"""The fuzz suites' own stack: what the fuzzer sets (a paused dispatcher, a caller's weight, the worker count)
stays in it, and it stops when tests/fuzz is done."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra.emulator import free_port
from infra.stack import Stack

LOG = Path(__file__).resolve().parents[2] / ".run" / "logs" / "fuzz-stack.log"
ADMIN = {"Authorization": "Bearer local-admin-token"}  # the local stage's PACER_ADMIN_TOKEN
# The documented ceiling of PUT /api/workers is the stage's, so the fuzzer asks for 3 worker processes at most,
# not 100 on a 2-core machine; the rest keep the work it submits small.
STACK_SETTINGS = {
    "PACER_MAX_WORKER_CONCURRENCY": "3",
    "PACER_MAX_BOTS": "2",  # PUT /api/bots/count starts reference bots in this stack: 2 at most
    "PACER_MAX_IN_FLIGHT": "50",  # a run's jobs waiting in SQS
    "PACER_COMPUTE_BUDGET_S": "0.5",  # a fuzzed 200-digit number fails fast instead of holding a worker 10 s
    "PACER_EXECUTOR_LATENCY_S": "0",
}


@pytest.fixture(scope="package")
def fuzz_stack():
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("w") as log:
        stack = Stack(api_port=free_port(), frontend_port=free_port(), workers=1, log=log, env=STACK_SETTINGS)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
