"""Structured logs: JSON lines from Powertools for AWS Lambda's Logger, and the correlation id that follows a job.

Every line of the app's logger (Chalice's `app.log`, named `pacer`) and of each
`chalicelib` module's standard logger is one JSON object on stderr, on Lambda
and locally alike, so there is one code path. Lines carry the keys in force
for the thread that logs them (Powertools' thread-safe keys, a ContextVar):
`function_request_id` for the invocation, and `correlation_id`.

A **correlation id** names the request a job came from: an incoming
`X-Correlation-ID` header when it is a usable id, else the API request's own
id. The request's lines carry it, each job it creates keeps it (`JobSpec` and
`JobOutcome`, and the stored run, compute request or typed job in between), and
admission's, the worker's and the ledger's lines about a job carry it again
(`log_jobs`), so one search finds a job's whole path.
"""
from __future__ import annotations

import functools
import logging
import re
import sys
import uuid
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

SERVICE = "pacer"  # Chalice's app name: app.log is the logger of that name
CORRELATION_HEADER = "X-Correlation-ID"
# What an incoming id may be: printable ASCII without spaces, as long as a uuid with room. Anything else is not
# refused (it is a tracing aid, as AWS treats a malformed trace header): the request's own id is used instead.
USABLE_CORRELATION_ID = re.compile(r"[\x21-\x7e]{1,128}")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time, as logging's last-resort handler does (pytest swaps it per
    test; Lambda and the local runtime never do)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


@functools.cache
def logger() -> Logger:
    """Pacer's Logger, configured on first use (not at import): JSON lines on stderr for `pacer` and `chalicelib`,
    at POWERTOOLS_LOG_LEVEL (INFO by default)."""
    powertools = Logger(service=SERVICE, logger_handler=_StderrHandler(), utc=True, use_rfc3339=True)
    logging.getLogger("chalicelib")  # registered, so that Powertools copies its handler and level to it
    copy_config_to_registered_loggers(source_logger=powertools, include={"chalicelib"})
    return powertools


def current_correlation_id() -> str | None:
    """The correlation id of what this thread is doing: a new job keeps it."""
    value = logger().thread_safe_get_current_keys().get("correlation_id")
    return str(value) if value is not None else None


def correlation_id_for(header: str | None, request_id: str | None) -> str:
    """An HTTP request's correlation id: the caller's `X-Correlation-ID` if usable, else the request's id."""
    if header is not None and USABLE_CORRELATION_ID.fullmatch(header):
        return header
    return request_id or uuid.uuid4().hex


@contextmanager
def _keys(**keys: str | None) -> Iterator[None]:
    """Thread-safe keys for the lines logged inside, the previous ones back after (a None key is left out)."""
    log = logger()
    previous = {name: log.thread_safe_get_current_keys().get(name) for name in keys}
    log.thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        log.thread_safe_append_keys(**previous)


def invocation(request_id: str | None, correlation_id: str | None = None) -> Any:
    """Around one Lambda invocation (app.py's middleware): its request id, and an HTTP request's correlation id."""
    return _keys(function_request_id=request_id, correlation_id=correlation_id)


def correlated(correlation_id: str | None) -> Any:
    """The lines logged inside carry `correlation_id` (a job's), then the previous one again."""
    return _keys(correlation_id=correlation_id)


def log_jobs(log: logging.Logger, message: str, jobs: Iterable[tuple[str | None, str]], level: int = logging.INFO,
             **fields: Any) -> None:
    """One line per correlation id among `jobs` ((correlation id, job id) pairs) naming its jobs, so each line
    carries the id of the requests its jobs came from."""
    if not log.isEnabledFor(level):
        return
    by_correlation: dict[str | None, list[str]] = {}
    for correlation_id, job_id in jobs:
        by_correlation.setdefault(correlation_id, []).append(job_id)
    for correlation_id, job_ids in by_correlation.items():
        with correlated(correlation_id):
            log.log(level, message, extra={**fields, "job_ids": job_ids}, stacklevel=2)  # the line that called log_jobs
