"""Fixtures that run the local runtime as a real process against the emulator.

The emulator is whatever AWS_ENDPOINT_URL names (`make test-localstack` sets it);
without it the suite starts a moto server of its own.

Each runtime gets queues of its own (the fixture app reads a queue prefix from
its environment) and a file its handlers append records to; tests tell their
messages apart by a tag in the body.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import boto3
import pytest

from infra.emulator import start_emulator
from infra.process import child_process_kwargs
from tests.runtime.runtime_harness import (
    FIXTURE_APP,
    READY_TIMEOUT,
    REPO_ROOT,
    SCHEDULE_SCALE,
    CHECKPOINT_TABLE,
    RunningRuntime,
    create_fixture_queues,
    create_fixture_table,
    ensure_table,
    eventually,
)


EMULATOR_DEFAULTS = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                     "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def aws_env() -> dict[str, str]:
    """Where the runtimes' AWS is: AWS_ENDPOINT_URL if it is set (LocalStack, say), else a moto server of our own."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield {"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
               **{name: os.environ.get(name, default) for name, default in EMULATOR_DEFAULTS.items()}}
        return
    emulator = start_emulator()
    yield {"AWS_ENDPOINT_URL": emulator.endpoint_url, **EMULATOR_DEFAULTS}
    emulator.stop()


def client(aws_env, service):
    return boto3.client(service, endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=aws_env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def sqs(aws_env):
    return client(aws_env, "sqs")


@pytest.fixture(scope="session")
def dynamodb(aws_env):
    return client(aws_env, "dynamodb")


@pytest.fixture(scope="session")
def launch_runtime(aws_env, sqs, dynamodb, tmp_path_factory):
    """Start `python -m infra.runtime` on the fixture app with fresh queues and a fresh stream table; wait for
    its readiness line. Stream checkpoints go to one shared table (`--checkpoint-table`).

    With `control_table`, the runtime follows the live concurrency stored there (`--control-table`); with
    `worker_start_hook`, each worker calls it as it starts (`--worker-start-hook`); with `prefix`, it reuses
    the queues and table of an earlier runtime (a restart)."""
    launched: list[RunningRuntime] = []
    ensure_table(dynamodb, CHECKPOINT_TABLE, {"pk": "HASH", "sk": "RANGE"})

    def launch(workers: int = 2, control_table: str | None = None,
               worker_start_hook: str | None = None, prefix: str | None = None) -> RunningRuntime:
        prefix = prefix or f"rt-{uuid.uuid4().hex[:10]}"
        queues = create_fixture_queues(sqs, prefix)
        table = create_fixture_table(dynamodb, prefix)
        directory = tmp_path_factory.mktemp(prefix)
        runtime_env = {
            **os.environ,
            **aws_env,
            "RUNTIME_FIXTURE_QUEUE_PREFIX": prefix,
            "RUNTIME_FIXTURE_RECORDS": str(directory / "records.jsonl"),
            "PACER_RUNTIME_SCHEDULE_SCALE": SCHEDULE_SCALE,
        }
        stdout_path, stderr_path = directory / "stdout.txt", directory / "stderr.txt"
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra.runtime", "--project-dir", str(FIXTURE_APP),
                 "--stage", "local", "--workers", str(workers), "--checkpoint-table", CHECKPOINT_TABLE,
                 *(["--control-table", control_table] if control_table else []),
                 *(["--worker-start-hook", worker_start_hook] if worker_start_hook else [])],
                cwd=REPO_ROOT, env=runtime_env, stdout=stdout, stderr=stderr, **child_process_kwargs(),
            )
        runtime = RunningRuntime(process, queues, directory / "records.jsonl", stdout_path, stderr_path,
                                 dynamodb, table)
        launched.append(runtime)
        eventually(
            lambda: "runtime ready:" in runtime.ready_line() or process.poll() is not None,
            READY_TIMEOUT,
            runtime.explain("the runtime never printed its readiness line"),
        )
        assert process.poll() is None, runtime.explain(f"the runtime exited with {process.returncode}")()
        return runtime

    yield launch
    for runtime in launched:
        try:
            runtime.stop()
        except subprocess.TimeoutExpired:
            runtime.process.kill()


@pytest.fixture(scope="session")
def runtime(launch_runtime) -> RunningRuntime:
    """One runtime that the tests which don't stop or break it share."""
    return launch_runtime(workers=2)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex
