"""One concurrent execution of an SQS event source mapping, as its own process.

    python -m infra.runtime.worker --project-dir DIR --stage STAGE --source NAME [--function-timeout SECONDS]

The worker long-polls the source's queue, hands batches to the handler as
Lambda-shaped events, and deletes what Lambda would delete. The supervisor
runs as many of these per source as the source's concurrency allows.
"""
from __future__ import annotations

import logging
import math
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import SQSEventConfig

from infra.runtime.child import announce_ready, child_argument_parser, configure_logging, stop_requested_by_signals
from infra.runtime.invoke import FunctionTimedOut, end_sandbox_after_timeout, invoke
from infra.runtime.project import Project, load_project, resolve_handler
from infra.runtime.sqs_batch import failed_message_ids, region_of, sqs_event
from infra.signals import StopSignals

log = logging.getLogger("infra.runtime.worker")

# Short enough that an idle worker notices SIGTERM within a second (a receive
# is not interrupted: messages it returned would stay invisible for the queue's
# visibility timeout); long enough that idle workers cost the emulator little.
LONG_POLL_SECONDS = 1
RECEIVE_MAX = 10  # SQS returns at most ten messages per ReceiveMessage
DELETE_BATCH_MAX = 10
RECEIVE_ERROR_PAUSE_SECONDS = 1.0


class SqsPoller:
    def __init__(self, project: Project, source: SQSEventConfig, sqs, stop: StopSignals, timeout_seconds: float):
        self.project = project
        self.source = source
        self.sqs = sqs
        self.stop = stop
        self.timeout_seconds = timeout_seconds
        self.handler = resolve_handler(source.handler_string)
        self.queue_url, self.queue_arn = queue_url_and_arn(sqs, source)

    def run(self) -> None:
        while not self.stop.is_set():
            batch = self.receive_batch()
            if batch:
                self.process(batch)

    def receive_batch(self) -> list[dict]:
        """Up to batch_size messages, gathered for the batching window if there is one."""
        batch = self._receive(self.source.batch_size, LONG_POLL_SECONDS)
        window = self.source.maximum_batching_window_in_seconds or 0
        if not batch or window <= 0:
            return batch
        window_closes = time.monotonic() + window
        while len(batch) < self.source.batch_size and not self.stop.is_set():
            remaining = window_closes - time.monotonic()
            if remaining <= 0:
                break
            wait = min(LONG_POLL_SECONDS, math.ceil(remaining))
            batch += self._receive(self.source.batch_size - len(batch), wait)
        return batch

    def _receive(self, wanted: int, wait_seconds: int) -> list[dict]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(RECEIVE_MAX, wanted),
                WaitTimeSeconds=wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("receive from %s failed: %s", self.queue_url, exc)
            self.stop.wait(RECEIVE_ERROR_PAUSE_SECONDS)
            return []
        return response.get("Messages", [])

    def process(self, batch: list[dict]) -> None:
        context = self.project.lambda_context(self.source.name, self.timeout_seconds, region_of(self.queue_arn))
        invocation = invoke(self.handler, sqs_event(batch, self.queue_arn), context, self.timeout_seconds)
        message_ids = [message["MessageId"] for message in batch]
        if invocation.timed_out:
            log.error(
                "%s timed out after %ss (request %s); its %d message(s) return after the visibility timeout",
                context.function_name, self.timeout_seconds, context.aws_request_id, len(batch),
            )
            raise FunctionTimedOut(context.function_name)
        if invocation.error:
            log.error(
                "%s failed (request %s); its %d message(s) return after the visibility timeout\n%s",
                context.function_name, context.aws_request_id, len(batch), invocation.error.rstrip(),
            )
            return
        kept = failed_message_ids(invocation.value, message_ids)
        if kept:
            log.info("%s reported %d of %d message(s) as failed", context.function_name, len(kept), len(batch))
        self.delete([message for message in batch if message["MessageId"] not in kept])

    def delete(self, messages: list[dict]) -> None:
        for start in range(0, len(messages), DELETE_BATCH_MAX):
            chunk = messages[start:start + DELETE_BATCH_MAX]
            # A message we fail to delete comes back later: at-least-once
            # delivery, which handlers must tolerate on AWS too.
            try:
                response = self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(chunk)],
                )
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not delete %d message(s) from %s: %s", len(chunk), self.queue_url, exc)
                continue
            for failure in response.get("Failed", []):
                log.warning("could not delete a message from %s: %s", self.queue_url, failure)


def queue_url_and_arn(sqs, source: SQSEventConfig) -> tuple[str, str]:
    if source.queue:
        url = sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
    else:
        *_, account, name = source.queue_arn.split(":")
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, attributes["QueueArn"]


def run_start_hook(hook: str | None, source_name: str) -> None:
    """Call the app's `hook(source_name)` (a `module.function` string), for what a worker process does as it
    starts: Pacer's job workers beat once, so they are listed before their first batch. Lambda has no such
    moment, which is why it is a hook of this runtime and not app code at import time. A hook that raises is
    logged, and the worker polls anyway."""
    if not hook:
        return
    try:
        resolve_handler(hook)(source_name)
    except Exception:
        log.exception("worker start hook %s failed; polling anyway", hook)


def main(argv: list[str] | None = None) -> None:
    parser = child_argument_parser(__doc__)
    parser.add_argument("--source", required=True, help="the name of an @app.on_sqs_message event source")
    parser.add_argument("--start-hook", default=None,
                        help="MODULE.FUNCTION, called with the source's name once the worker can poll")
    args = parser.parse_args(argv)
    configure_logging()
    stop = stop_requested_by_signals()
    project = load_project(args.project_dir, args.stage, function_name=args.source)
    if stop.is_set():  # retired (a scale-down) while it was starting: it holds nothing yet
        log.info("stopped before polling (%s)", stop.reason)
        return
    source = project.sqs_source(args.source)
    timeout = project.function_timeout(source.name, args.function_timeout)
    sqs = boto3.client("sqs")
    try:
        poller = SqsPoller(project, source, sqs, stop, timeout)
    except ClientError as exc:
        # Usually a queue not provisioned yet; the supervisor retries with backoff.
        log.error("cannot poll %s at %s: %s", source.queue or source.queue_arn, sqs.meta.endpoint_url, exc)
        sys.exit(1)
    log.info(
        "polling %s for %s (batch size %d, window %ss, timeout %ss)",
        poller.queue_url, project.function_name(source.name), source.batch_size,
        source.maximum_batching_window_in_seconds, timeout,
    )
    run_start_hook(args.start_hook, source.name)
    announce_ready()
    try:
        poller.run()
    except FunctionTimedOut:
        end_sandbox_after_timeout()
    log.info("stopped (%s)", stop.reason)


if __name__ == "__main__":
    main(sys.argv[1:])
