"""Shared pieces of the benchmarks: a fresh stack per benchmark and a few statistics."""
from __future__ import annotations

import contextlib
import time
from datetime import datetime
from pathlib import Path

import boto3
import requests

from infra.emulator import free_port
from infra.stack import Stack

OUT = Path(__file__).resolve().parent / "out"


@contextlib.contextmanager
def fresh_stack(workers: int, name: str, env: dict | None = None):
    OUT.mkdir(exist_ok=True)
    with open(OUT / f"{name}.log", "w") as log:
        stack = Stack(api_port=free_port(), frontend_port=free_port(), workers=workers, log=log, env=env)
        try:
            yield stack.start()
        finally:
            stack.stop()


def dynamodb(stack: Stack):
    return boto3.client("dynamodb", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def status(stack: Stack) -> dict:
    return requests.get(f"{stack.api_url}/api/status", timeout=10).json()


def wait_for(stack: Stack, predicate, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(stack)
        if predicate(current):
            return current
        time.sleep(0.2)
    raise TimeoutError(f"gave up after {timeout}s; last status {current}")


def seconds_between(start_iso: str, end_iso: str) -> float:
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end_iso) - parse(start_iso)).total_seconds()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
