"""Fixtures shared by the suites that need the whole system running as processes."""
from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest
import requests
from moto import mock_aws

from infra.emulator import free_port
from infra.provision import provision
from infra.stack import Stack

LOG_DIR = Path(__file__).resolve().parent.parent / ".run" / "logs"
# The reference bots the stack starts for its bot count (PUT /api/bots/count) work a job in half a second, fail none
# and beat every 2 s, instead of seed 004's 5 minutes, 15% and 30 s.
REFERENCE_BOTS = {"PROCESSING_DURATION": "0.5", "FAILURE_RATE": "0", "HEARTBEAT_INTERVAL": "2"}


@pytest.fixture(scope="session")
def live_stack():
    """Emulator, API (chalice local's server), runtime with 2 workers, and the page, on free ports."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / "stack.log", "w")
    # With AWS_ENDPOINT_URL set (say, to LocalStack) the stack uses it; otherwise it starts moto.
    stack = Stack(api_port=free_port(), frontend_port=free_port(), workers=2, log=log, env=REFERENCE_BOTS)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        log.close()


@pytest.fixture
def api(live_stack):
    """A session on the live API that leaves no run active behind it."""
    session = requests.Session()
    session.base_url = live_stack.api_url
    stop_active_run(session)
    yield session
    stop_active_run(session)


def stop_active_run(session) -> None:
    status = session.get(f"{session.base_url}/api/status", timeout=10).json()
    if status["state"] == "running":
        session.post(f"{session.base_url}/api/stop", timeout=10)


@pytest.fixture
def aws(live_stack):
    """boto3 clients pointed where the stack's processes point: its moto, or AWS_ENDPOINT_URL."""
    env = live_stack.env
    session = boto3.session.Session(region_name=env["AWS_DEFAULT_REGION"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    return {name: session.client(name, endpoint_url=live_stack.endpoint_url) for name in ("dynamodb", "sqs")}


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@pytest.fixture
def moto_aws(monkeypatch):
    """moto's in-process AWS with Pacer's tables and queues provisioned: boto3 clients made after it talk to
    moto. The contract suites use it as `request.getfixturevalue("moto_aws")` in a fixture's moto branch."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        provision()
        yield
