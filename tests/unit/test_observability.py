"""Observability: a job's log lines carry its request's correlation id from submit to ledger, and the worker and
admission emit CloudWatch embedded-metric-format lines, per origin, counting each job once."""
import itertools
import json

import pytest

from chalicelib.core.jobs import JobEnvelope, JobSpec
from chalicelib.observability import logs
from chalicelib.worker.retry import RetryPolicy
from chalicelib.worker.runner import NumberRunner
from chalicelib.worker.worker import JobWorker, Record
from tests.fakes import MemoryContainer

T0 = 1_800_000_000.0
HEADERS = {"Content-Type": "application/json", "X-Caller-ID": "alice"}


@pytest.fixture
def c():
    return MemoryContainer()


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def log_lines(captured):
    return [line for line in json_lines(captured.err) if "level" in line]


def metric_lines(captured):
    """Each EMF line as {"origin": …, metric name: [values]}."""
    found = []
    for line in json_lines(captured.out):
        if "_aws" not in line:
            continue
        [directive] = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Pacer"
        values = {m["Name"]: line[m["Name"]] for m in directive["Metrics"]}
        found.append({"dimensions": directive["Dimensions"], "origin": line.get("origin"),
                      **{name: value if isinstance(value, list) else [value] for name, value in values.items()}})
    return found


def deliver(client, c, receive_count=1):
    """Every message on the jobs queue, through the process_jobs handler as Lambda would call it."""
    bodies = [message.body for message in c.jobs_queue.drain()]
    event = client.events.generate_sqs_event(message_bodies=bodies, queue_name="pacer-jobs")
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return client.lambda_.invoke("process_jobs", event).payload


def lines_about(lines, job_id):
    return [line for line in lines if job_id in line.get("job_ids", []) or line.get("job_id") == job_id]


def test_a_compute_jobs_lines_from_submit_through_admission_worker_and_ledger_carry_the_callers_correlation_id(
        client, c, capsys):
    response = client.http.post("/api/compute", body=json.dumps({"number": "600851475143"}),
                                headers={**HEADERS, "X-Correlation-ID": "order-42"})
    assert response.headers["X-Correlation-ID"] == "order-42"
    job_id = response.json_body["id"]
    deliver(client, c)
    lines = lines_about(log_lines(capsys.readouterr()), job_id)
    assert [line["message"] for line in lines] == [
        "compute requests stored", "jobs admitted", "jobs run", "outcomes recorded"]
    assert {line["correlation_id"] for line in lines} == {"order-42"}
    assert c.ledger.outcomes[job_id].correlation_id == "order-42"


def test_a_runs_jobs_carry_the_id_of_the_request_that_started_it_when_the_caller_sent_none(client, c, capsys):
    response = client.http.post("/api/run", body=json.dumps({"x": 60, "y": 1, "total": 1}), headers=HEADERS)
    correlation_id = response.headers["X-Correlation-ID"]
    assert correlation_id  # the request's own id
    [tick] = c.ticks_queue.drain()
    client.lambda_.invoke("pace_tick", client.events.generate_sqs_event(message_bodies=[tick.body],
                                                                      queue_name="pacer-ticks"))
    deliver(client, c)
    lines = log_lines(capsys.readouterr())
    [started] = [line for line in lines if line["message"] == "run started"]
    job_lines = lines_about(lines, f"{started['run_id']}:00000000")
    assert [line["message"] for line in job_lines] == ["jobs admitted", "jobs run", "outcomes recorded"]
    assert {line["correlation_id"] for line in [started, *job_lines]} == {correlation_id}


def test_a_typed_jobs_lines_carry_its_correlation_id_and_an_unusable_header_is_replaced_by_the_request_id(
        client, c, capsys):
    body = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}}
    response = client.http.post("/api/jobs", body=json.dumps(body),
                                headers={**HEADERS, "X-Correlation-ID": "has spaces " + "x" * 200})
    correlation_id = response.headers["X-Correlation-ID"]
    assert " " not in correlation_id and len(correlation_id) <= 128
    deliver(client, c)
    lines = lines_about(log_lines(capsys.readouterr()), response.json_body["id"])
    assert [line["message"] for line in lines] == [
        "typed job stored", "jobs admitted", "jobs run", "outcomes recorded"]
    assert {line["correlation_id"] for line in lines} == {correlation_id}


def test_a_message_written_before_correlation_ids_is_still_processed_and_its_lines_carry_none(client, c, capsys):
    old = '{"v": 1, "origin": "run", "run_id": "run-old", "jobs": [{"id": "run-old:0", "number": "12"}]}'
    assert JobEnvelope.model_validate_json(old).jobs[0].correlation_id is None
    event = client.events.generate_sqs_event(message_bodies=[old], queue_name="pacer-jobs")
    assert client.lambda_.invoke("process_jobs", event).payload == {"batchItemFailures": []}
    lines = lines_about(log_lines(capsys.readouterr()), "run-old:0")
    assert [line["message"] for line in lines] == ["jobs run", "outcomes recorded"]
    assert all("correlation_id" not in line for line in lines)


def test_a_redelivered_message_is_logged_as_a_duplicate_with_its_correlation_id_and_counted_once(
        client, c, capsys):
    client.http.post("/api/compute", body=json.dumps({"number": "91"}),
                     headers={**HEADERS, "X-Correlation-ID": "once"})
    [message] = c.jobs_queue.drain()
    for _ in range(2):
        c.jobs_queue.send([message])
        deliver(client, c)
    captured = capsys.readouterr()
    [duplicate] = [line for line in log_lines(captured) if line["message"] == "duplicate outcomes dropped"]
    assert duplicate["correlation_id"] == "once"
    processed = [m for m in metric_lines(captured) if "JobsProcessed" in m]
    assert [(m["origin"], m["JobsProcessed"]) for m in processed] == [("compute", [1.0])]


def test_admission_and_outcomes_are_metrics_per_origin_with_their_waits_and_processing_times(client, c, capsys):
    client.http.post("/api/compute/batch", body=json.dumps({"numbers": ["12", "15"]}), headers=HEADERS)
    body = {"type": "notification", "payload": {"user_id": "u1", "channel": "sms", "message": "Hi"}}
    client.http.post("/api/jobs", body=json.dumps(body), headers=HEADERS)
    deliver(client, c)
    metrics = metric_lines(capsys.readouterr())
    assert all(m["dimensions"] == [["origin", "service"]] for m in metrics)
    admitted = {m["origin"]: sum(m["JobsAdmitted"]) for m in metrics if "JobsAdmitted" in m}
    assert admitted == {"compute": 2, "typed": 1}
    settled = {m["origin"]: m for m in metrics if "JobsProcessed" in m}
    assert set(settled) == {"compute", "typed"}
    assert (settled["compute"]["JobsProcessed"], settled["compute"]["JobsFailed"]) == ([2.0], [0.0])
    assert settled["compute"]["JobRetries"] == [0.0]
    for figures in settled.values():  # one value per job
        assert len(figures["QueueWait"]) == len(figures["ProcessingTime"]) == figures["JobsProcessed"][0]
        assert all(value >= 0 for value in figures["QueueWait"] + figures["ProcessingTime"])


def worker(c, factor, max_attempts=3) -> JobWorker:
    numbers = NumberRunner(factor)
    return JobWorker(ledger=c.ledger, retries=c.jobs_queue, policy=RetryPolicy(max_attempts=max_attempts),
                     runners={"run": numbers, "compute": numbers}, worker_id="w1", max_receives=5)


def message(*specs: JobSpec, receive_count=1) -> Record:
    return Record(message_id="m1", body=JobEnvelope(group="run-1", jobs=list(specs)).model_dump_json(),
                  receive_count=receive_count)


def test_a_recorded_outcome_counts_the_attempts_before_it_as_retries_and_its_wait_from_submission(c, capsys):
    clock = itertools.chain([T0], itertools.repeat(T0 + 0.25))  # the message's start, then the attempt's end on
    spec = JobSpec(id="run-1:0", number="12", attempt=3, submitted_at=T0 - 2)
    worker(c, lambda n: [2, 2, 3]).process([message(spec)], lambda: next(clock))
    [figures] = metric_lines(capsys.readouterr())
    assert figures["origin"] == "run"
    assert (figures["JobsProcessed"], figures["JobRetries"]) == ([1.0], [2.0])
    assert (figures["QueueWait"], figures["ProcessingTime"]) == ([2.0], [0.25])


def test_a_failed_attempt_logs_its_retry_with_the_jobs_correlation_id(c, capsys):
    def broken(number):
        raise RuntimeError("boom")

    spec = JobSpec(id="run-1:0", number="12", correlation_id="retry-me")
    worker(c, broken).process([message(spec)], lambda: T0)
    [retried] = [line for line in log_lines(capsys.readouterr()) if line["message"] == "job attempt failed; retried"]
    assert (retried["correlation_id"], retried["job_id"], retried["reason"]) == ("retry-me", "run-1:0",
                                                                                  "RuntimeError: boom")


def test_a_message_failed_on_its_last_receive_is_counted_as_a_dead_letter_and_an_earlier_failure_is_not(c, capsys):
    worker(c, lambda n: [n]).process([Record("poison", "not json", receive_count=4)], lambda: T0)
    assert metric_lines(capsys.readouterr()) == []
    worker(c, lambda n: [n]).process([Record("poison", "not json", receive_count=5)], lambda: T0)
    captured = capsys.readouterr()
    [dead] = metric_lines(captured)
    assert (dead["dimensions"], dead["DeadLettered"]) == ([["service"]], [1.0])
    [line] = [line for line in log_lines(captured) if line["message"].startswith("message failed on its last receive")]
    assert (line["level"], line["message_id"], line["receive_count"]) == ("ERROR", "poison", 5)


def test_a_failed_message_waits_out_a_backoff_before_its_next_receive_and_none_after_its_last(c):
    class Ceilings(RetryPolicy):  # full jitter at its top: each backoff is its ceiling
        def delay_before(self, attempt, rng=lambda: 1.0):
            return super().delay_before(attempt, rng)

    # No runner for the message's origin: it fails on every receive (an unparseable one would get no backoff).
    failing = JobWorker(ledger=c.ledger, retries=c.jobs_queue, policy=Ceilings(max_attempts=3), runners={},
                        worker_id="w1", max_receives=5)
    body = JobEnvelope(group="g", jobs=[JobSpec(id="g:0", number="12")]).model_dump_json()
    for count in (1, 2, 3, 4, 5):
        failing.process([Record(f"r{count}", body, receipt_handle=f"h{count}", receive_count=count)], lambda: T0)
    # After the fifth and last receive SQS moves the message to the DLQ when it is next due: no backoff (was 16 s).
    assert [c.jobs_queue.delayed[f"h{n}"] for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 0]


def test_the_lines_are_json_on_stderr_with_the_service_and_the_logger_that_wrote_them(client, c, capsys):
    client.http.post("/api/compute", body=json.dumps({"number": "12"}), headers=HEADERS)
    [line] = [line for line in log_lines(capsys.readouterr()) if line["message"] == "compute requests stored"]
    assert (line["service"], line["name"], line["level"]) == ("pacer", "chalicelib.compute.service", "INFO")
    assert line["function_request_id"] and line["timestamp"].endswith("+00:00")


def test_a_usable_correlation_id_is_printable_ascii_without_spaces_of_at_most_128_characters():
    assert logs.correlation_id_for("abc-123:x/y", "req") == "abc-123:x/y"
    for unusable in ("", "a b", "x" * 129, "é", None):
        assert logs.correlation_id_for(unusable, "req") == "req"
