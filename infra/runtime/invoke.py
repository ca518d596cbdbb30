"""Call a handler the way Lambda does: with a deadline, and with its result marshalled to JSON."""
from __future__ import annotations

import json
import logging
import os
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

# A worker or scheduler exits with this code after a function timeout: Lambda
# throws away a sandbox whose function it had to stop, and so do we.
EXIT_FUNCTION_TIMED_OUT = 3


class FunctionTimedOut(Exception):
    """A handler ran past its function timeout; its process must end."""


def end_sandbox_after_timeout() -> NoReturn:
    logging.shutdown()
    # os._exit, not sys.exit: the timed-out handler's thread is still running
    # and would keep the interpreter alive.
    os._exit(EXIT_FUNCTION_TIMED_OUT)


@dataclass(frozen=True)
class Invocation:
    value: Any = None
    error: str | None = None  # the traceback, when the handler raised or returned non-JSON
    timed_out: bool = False

    @property
    def succeeded(self) -> bool:
        return self.error is None and not self.timed_out


def invoke(handler: Callable[[Any, Any], Any], event: dict, context: Any, timeout_seconds: float) -> Invocation:
    """Run `handler(event, context)` and wait for it at most `timeout_seconds`.

    The handler runs in a daemon thread so that the caller can stop waiting;
    a thread cannot be killed, so after a timeout the caller must end the
    process, as Lambda ends the sandbox.
    """
    outcome: dict[str, Invocation] = {}

    def run() -> None:
        try:
            value = handler(event, context)
            # Lambda serialises the response; a value it cannot serialise
            # is an invocation error (Runtime.MarshalError), not a success.
            json.dumps(value)
        except BaseException:  # SystemExit in a handler is an error too, not our exit
            outcome["result"] = Invocation(error=traceback.format_exc())
        else:
            outcome["result"] = Invocation(value=value)

    thread = threading.Thread(target=run, name=f"invocation-{context.aws_request_id}", daemon=True)
    thread.start()
    thread.join(timeout_seconds)
    if thread.is_alive():
        return Invocation(timed_out=True)
    return outcome["result"]
