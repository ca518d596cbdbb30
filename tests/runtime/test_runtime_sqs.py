"""The runtime's SQS workers behave like a Lambda event source mapping with ReportBatchItemFailures."""
from __future__ import annotations

import hashlib

import pytest

from tests.runtime.runtime_harness import MAX_RECEIVE_COUNT, eventually, is_alive

pytestmark = pytest.mark.runtime

# Long enough for a visibility timeout (2-3 s) to pass twice on a busy machine.
REDELIVERY_TIMEOUT = 20.0


def receive_counts(runtime, tag) -> list[str]:
    return [item["attributes"]["ApproximateReceiveCount"] for item in runtime.deliveries(tag)]


def test_records_carry_real_sqs_fields_and_no_invocation_exceeds_the_batch_size(runtime, tag):
    bodies = [{"tag": tag, "index": index} for index in range(7)]
    sent_ids = runtime.queues.send("jobs", *bodies)

    eventually(lambda: len(runtime.deliveries(tag)) >= 7, 10, runtime.explain("not all 7 messages were handled"))

    deliveries = runtime.deliveries(tag)
    assert sorted(item["messageId"] for item in deliveries) == sorted(sent_ids)
    jobs_arn = runtime.queues.arn("jobs")
    for item in deliveries:
        assert item["eventSource"] == "aws:sqs"
        assert item["eventSourceARN"] == jobs_arn
        assert item["awsRegion"] == "us-east-1"
        assert item["attributes"]["ApproximateReceiveCount"] == "1"
        assert item["attributes"]["SentTimestamp"].isdigit()
        assert item["receiptHandle"]
        assert item["md5OfBody"] == hashlib.md5(item["body"].encode()).hexdigest()
    # @app.on_sqs_message(batch_size=3)
    assert max(len(invocation["records"]) for invocation in runtime.invocations_with(tag)) <= 3


def test_handlers_get_the_stage_environment_and_a_lambda_context(runtime, tag):
    runtime.queues.send("jobs", {"tag": tag})

    [invocation] = eventually(lambda: runtime.invocations_with(tag), 10, runtime.explain("the message was not handled"))

    assert invocation["stage_marker"] == "local stage"  # the stage's value beats the top-level one
    assert invocation["function_marker"] == "jobs only"  # lambda_functions.jobs in the local stage
    assert invocation["function_name"] == "runtime-fixture-local-jobs"
    assert 0 < invocation["remaining_ms"] <= 20_000  # lambda_timeout is 20 s
    assert invocation["request_id"]


def test_a_batching_window_gathers_separately_sent_messages_into_one_full_batch(runtime, tag):
    # Messages that other tests left for redelivery would take places in the batches.
    eventually(lambda: runtime.queues.messages_in_queue("batched") == 0, 30, "the batched queue never drained")
    for index in range(6):
        runtime.queues.send("batched", {"tag": tag, "index": index})

    eventually(lambda: len(runtime.deliveries(tag)) >= 6, 10, runtime.explain("not all 6 messages were handled"))

    # batch_size=4 with a 1 s window: the first four wait for each other, the
    # last two go when the window closes.
    sizes = [len(invocation["records"]) for invocation in runtime.invocations_with(tag)]
    assert sizes == [4, 2]


def test_a_handler_that_raises_leaves_its_whole_batch_for_redelivery(runtime, tag):
    sent_ids = runtime.queues.send("batched", {"tag": tag}, {"tag": tag, "raise": True}, {"tag": tag})

    eventually(
        lambda: receive_counts(runtime, tag).count("2") >= 3,
        REDELIVERY_TIMEOUT,
        runtime.explain("the failed batch did not come back"),
    )

    first = runtime.invocations_with(tag)[0]
    assert sorted(item["messageId"] for item in first["records"] if item["messageId"] in sent_ids) == sorted(sent_ids)
    redelivered = [
        item["messageId"] for item in runtime.deliveries(tag) if item["attributes"]["ApproximateReceiveCount"] == "2"
    ]
    assert sorted(redelivered) == sorted(sent_ids)


def test_a_partial_batch_response_deletes_all_but_the_failed_messages(runtime, tag):
    kept_id, failed_id, other_kept_id = runtime.queues.send(
        "batched", {"tag": tag}, {"tag": tag, "fail": True}, {"tag": tag}
    )

    eventually(
        lambda: "2" in receive_counts(runtime, tag),
        REDELIVERY_TIMEOUT,
        runtime.explain("the failed message did not come back"),
    )

    # The others shared its visibility timeout, so had they been kept they
    # would be back by now too.
    seen = [item["messageId"] for item in runtime.deliveries(tag)]
    assert seen.count(failed_id) == 2
    assert seen.count(kept_id) == 1
    assert seen.count(other_kept_id) == 1


def test_an_unknown_item_identifier_fails_the_whole_batch(runtime, tag):
    sent_ids = runtime.queues.send("batched", {"tag": tag}, {"tag": tag, "unknown_failure": True})

    eventually(
        lambda: receive_counts(runtime, tag).count("2") >= 2,
        REDELIVERY_TIMEOUT,
        runtime.explain("the batch with an unknown itemIdentifier was not redelivered"),
    )

    seen = [item["messageId"] for item in runtime.deliveries(tag)]
    assert all(seen.count(message_id) == 2 for message_id in sent_ids)


def test_a_message_that_keeps_failing_lands_in_the_dead_letter_queue(runtime, tag):
    runtime.queues.send("jobs", {"tag": tag, "raise": True})

    def in_dead_letter_queue():
        return any(body.get("tag") == tag for body in runtime.queues.dead_letter_bodies())

    eventually(in_dead_letter_queue, REDELIVERY_TIMEOUT, runtime.explain("the message never reached the DLQ"))

    assert receive_counts(runtime, tag) == [str(count) for count in range(1, MAX_RECEIVE_COUNT + 1)]


def test_a_handler_that_runs_past_its_timeout_ends_its_worker_and_the_message_returns(runtime, tag):
    [message_id] = runtime.queues.send("slow", {"tag": tag, "sleep": 30})  # slow's lambda_timeout is 2 s
    [first] = eventually(lambda: runtime.invocations_with(tag), 10, runtime.explain("the slow message was not handled"))

    eventually(lambda: not is_alive(first["pid"]), 10, runtime.explain("the timed-out worker lived on"))
    eventually(
        lambda: "2" in receive_counts(runtime, tag),
        REDELIVERY_TIMEOUT,
        runtime.explain("the timed-out message did not come back"),
    )
    # After its second timeout the message goes to the DLQ, and the
    # supervisor has both slow workers back.
    eventually(
        lambda: len(runtime.children("--source slow")) == 2,
        REDELIVERY_TIMEOUT,
        runtime.explain("the supervisor did not restore the slow workers"),
    )

    assert not [record for record in runtime.records("finished") if record["message_id"] == message_id]
