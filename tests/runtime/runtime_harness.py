"""Helpers for tests that run the local runtime as a real process: queues, records, processes."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_APP = Path(__file__).resolve().parent / "fixture_app"
# Short, so redelivery tests wait seconds, not minutes. The slow queue's
# outlasts its function timeout (2 s), so a running batch is not delivered twice.
VISIBILITY_TIMEOUTS = {"jobs": 2, "batched": 2, "slow": 3}
MAX_RECEIVE_COUNT = 2
# rate(1 minute) fires every 0.6 s.
SCHEDULE_SCALE = "0.01"
READY_TIMEOUT = 30.0


def eventually(check: Callable[[], Any], timeout: float, describe: Callable[[], str] | str) -> Any:
    """Poll `check` until it returns something truthy; fail with `describe` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(describe() if callable(describe) else describe)
        time.sleep(0.05)


def child_processes(parent_pid: int) -> dict[int, str]:
    """Live (non-zombie) children of a process, with their command lines."""
    children = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
            cmdline = (stat_file.parent / "cmdline").read_bytes()
        except OSError:
            continue  # it exited while we looked
        # The command name in parentheses may hold spaces; the fields after it do not.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent_pid and state != "Z":
            children[int(stat_file.parent.name)] = cmdline.replace(b"\0", b" ").decode()
    return children


def is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class FixtureQueues:
    sqs: Any
    prefix: str
    urls: dict[str, str] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.urls[name]

    def arn(self, name: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=self.urls[name], AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def send(self, name: str, *bodies: dict) -> list[str]:
        """Send the bodies in one SendMessageBatch; return their message ids in order."""
        response = self.sqs.send_message_batch(
            QueueUrl=self.urls[name],
            Entries=[{"Id": str(index), "MessageBody": json.dumps(body)} for index, body in enumerate(bodies)],
        )
        assert not response.get("Failed"), response
        ids = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        return [ids[str(index)] for index in range(len(bodies))]

    def messages_in_queue(self, name: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.urls[name],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letter_bodies(self) -> list[dict]:
        # VisibilityTimeout=0 leaves the messages there for the next look.
        response = self.sqs.receive_message(
            QueueUrl=self.urls["dlq"], MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        return [json.loads(message["Body"]) for message in response.get("Messages", [])]


CHECKPOINT_TABLE = "runtime-fixture-checkpoints"


def ensure_table(dynamodb, name: str, keys: dict[str, str], stream: bool = False) -> None:
    """Create a table of string keys ({"pk": "HASH", "sk": "RANGE"}) unless it exists; wait until it is ACTIVE."""
    request = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": key, "KeyType": kind} for key, kind in keys.items()],
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"} for key in keys],
    }
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    try:
        dynamodb.create_table(**request)
    except dynamodb.exceptions.ResourceInUseException:
        pass
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})


def create_fixture_table(dynamodb, prefix: str) -> str:
    """The fixture app's stream source: `<prefix>-changes`, keyed by `id`, its stream on."""
    name = f"{prefix}-changes"
    ensure_table(dynamodb, name, {"id": "HASH"}, stream=True)
    return name


def create_fixture_queues(sqs, prefix: str) -> FixtureQueues:
    queues = FixtureQueues(sqs, prefix)
    queues.urls["dlq"] = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = queues.arn("dlq")
    for name, visibility in VISIBILITY_TIMEOUTS.items():
        queues.urls[name] = sqs.create_queue(
            QueueName=f"{prefix}-{name}",
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
            },
        )["QueueUrl"]
    return queues


@dataclass
class RunningRuntime:
    process: subprocess.Popen
    queues: FixtureQueues
    records_path: Path
    stdout_path: Path
    stderr_path: Path
    dynamodb: Any = None
    table: str = ""

    def put_items(self, *items: dict) -> None:
        """Write items to the fixture's stream table, one PutItem each, in order: {"id": "a", "sleep": 1}."""
        for item in items:
            self.dynamodb.put_item(TableName=self.table, Item={
                name: {"N": str(value)} if isinstance(value, (int, float)) else {"S": str(value)}
                for name, value in item.items()})

    def stream_invocations(self) -> list[dict]:
        return self.records("stream")

    def stream_batches(self, tag: str) -> list[list[str]]:
        """The ids of this tag's items in each stream invocation that held any, in order (ids are `<tag>-…`)."""
        batches = []
        for invocation in self.stream_invocations():
            ids = [r["dynamodb"]["Keys"]["id"]["S"] for r in invocation["records"]]
            mine = [i for i in ids if i.startswith(tag)]
            if mine:
                batches.append(mine)
        return batches

    def ready_line(self) -> str:
        return self.stdout_path.read_text().strip()

    def records(self, kind: str | None = None) -> list[dict]:
        if not self.records_path.exists():
            return []
        text = self.records_path.read_text()
        # A handler may be appending right now: only newline-terminated lines are whole.
        complete = text[: text.rfind("\n") + 1]
        records = [json.loads(line) for line in complete.splitlines() if line.strip()]
        return [record for record in records if kind is None or record["kind"] == kind]

    def invocations_with(self, tag: str) -> list[dict]:
        """The SQS invocations that carried at least one message with this tag."""
        return [
            invocation
            for invocation in self.records("sqs")
            if any(json.loads(item["body"]).get("tag") == tag for item in invocation["records"])
        ]

    def deliveries(self, tag: str) -> list[dict]:
        """Every record with this tag that a handler was given, in order."""
        return [
            item
            for invocation in self.records("sqs")
            for item in invocation["records"]
            if json.loads(item["body"]).get("tag") == tag
        ]

    def children(self, role: str = "") -> dict[int, str]:
        return {pid: cmd for pid, cmd in child_processes(self.process.pid).items() if role in cmd}

    def log(self) -> str:
        return self.stderr_path.read_text()

    def explain(self, what: str) -> Callable[[], str]:
        return lambda: f"{what}\n--- runtime log (tail) ---\n{self.log()[-6000:]}"

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)
