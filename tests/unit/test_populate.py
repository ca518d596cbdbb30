"""Seed 004's steady supply (POST /api/jobs/populate and the populate schedule) and the per-type default target,
through the HTTP adapter and the service over the in-memory twins."""
import json

import pytest

from chalicelib.typed import service as typed
from chalicelib.typed.models import PopulateJobs
from tests.fakes import MemoryContainer

ADMIN = {"Authorization": "Bearer secret"}
EMAIL = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}}


@pytest.fixture
def c():
    return MemoryContainer(bot_job_types=frozenset({"report"}))


def call(client, method, path, body=None, headers=None):
    response = getattr(client.http, method)(path, headers={"Content-Type": "application/json", **(headers or {})},
                                            body=json.dumps(body) if body is not None else b"")
    return response.status_code, response.json_body


def stored(c):
    return list(c.typed_jobs.jobs.values())


def defaults(c, **changes):
    settings = c.settings
    return typed.PopulateDefaults(**{"count": settings.populate_batch_size, "type": settings.populate_type,
                                     "bot_job_types": settings.bot_job_types,
                                     "max_attempts": settings.max_attempts, **changes})


# ---- the per-type default target ----

def test_a_job_of_a_bot_job_type_runs_on_bots_when_its_submit_names_no_target(client, c):
    status, job = call(client, "post", "/api/jobs", {
        "type": "report", "payload": {"report_type": "sales", "format": "csv",
                                      "date_range": {"from": "2026-11-01", "to": "2026-11-30"}}})
    assert status == 201 and job["target"] == "bot"
    assert c.jobs_queue.sent == [] and [x.caller for x in c.bots.callers()] == ["anonymous"]


def test_other_types_default_to_lambda_and_a_named_target_overrides_the_default(client, c):
    assert call(client, "post", "/api/jobs", EMAIL)[1]["target"] == "lambda"
    report = {"type": "report", "target": "lambda", "payload": {
        "report_type": "sales", "format": "csv", "date_range": {"from": "2026-11-01", "to": "2026-11-30"}}}
    assert call(client, "post", "/api/jobs", report)[1]["target"] == "lambda"
    assert call(client, "post", "/api/jobs", {**EMAIL, "target": "bot"})[1]["target"] == "bot"


def test_an_idempotent_retry_without_a_target_matches_the_job_stored_with_its_default(client, c):
    headers = {"Idempotency-Key": "k1"}
    first = call(client, "post", "/api/jobs", EMAIL, headers)
    again = call(client, "post", "/api/jobs", {**EMAIL, "target": "lambda"}, headers)
    assert (first[0], again[0]) == (201, 200) and again[1]["id"] == first[1]["id"]
    assert call(client, "post", "/api/jobs", {**EMAIL, "target": "bot"}, headers)[0] == 409


def test_the_stage_names_its_bot_job_types_as_json_in_an_environment_variable(monkeypatch):
    from chalicelib.settings import Settings
    monkeypatch.setenv("PACER_BOT_JOB_TYPES", '["report", "email"]')
    assert Settings().bot_job_types == {"report", "email"}


# ---- POST /api/jobs/populate ----

def test_populate_without_a_body_makes_the_stages_batch_of_each_type_in_turn(client, c):
    status, made = call(client, "post", "/api/jobs/populate", headers=ADMIN)
    assert status == 201 and len(made["jobs"]) == 5
    assert [job["type"] for job in made["jobs"]] == ["email", "notification", "report", "email", "notification"]
    assert {job["caller"] for job in made["jobs"]} == {"populate"}
    assert len(stored(c)) == 5 and all(job.status == "pending" for job in stored(c))
    # The report follows its type's default (bots); the others run on Lambda and were admitted.
    assert {job["type"]: job["target"] for job in made["jobs"]} == {
        "email": "lambda", "notification": "lambda", "report": "bot"}
    assert sum(len(json.loads(m.body)["jobs"]) for m in c.jobs_queue.sent) == 4
    assert "populated" in made["jobs"][0]["payload"]["subject"] and "1 of 5" in made["jobs"][0]["payload"]["subject"]


def test_populate_takes_count_type_target_and_the_caller_header(client, c):
    status, made = call(client, "post", "/api/jobs/populate", {"count": 3, "type": "email", "target": "bot"},
                        {**ADMIN, "X-Caller-ID": "seed004"})
    assert status == 201 and [(j["type"], j["target"], j["caller"]) for j in made["jobs"]] == [
        ("email", "bot", "seed004")] * 3
    assert c.jobs_queue.sent == [] and c.bots.callers()[0].backlog == 3


@pytest.mark.parametrize("body, field", [
    ({"count": 0}, "count"), ({"count": 101}, "count"), ({"count": "5"}, "count"), ({"type": "fax"}, "type"),
    ({"target": "gpu"}, "target"), ({"colour": "red"}, "colour"), ({"priority": 9}, "priority"),
])
def test_bad_populate_input_is_a_400_naming_the_field_and_stores_nothing(client, c, body, field):
    status, error = call(client, "post", "/api/jobs/populate", body, ADMIN)
    assert status == 400 and field in [f["field"] for f in error["fields"]], error
    assert stored(c) == [] and c.jobs_queue.sent == []


def test_populate_is_an_admin_endpoint(client, c):
    assert call(client, "post", "/api/jobs/populate")[0] == 401
    assert call(client, "post", "/api/jobs/populate", headers={"Authorization": "Bearer wrong"})[0] == 403
    assert stored(c) == []


# ---- the populate schedule ----

def test_the_schedule_makes_one_batch_per_interval_however_often_it_fires(c):
    made = [typed.populate_when_due(c.typed_jobs, c.registry, c.admission, 600, defaults(c), now)
            for now in (1000.0, 1000.5, 1060.0, 1540.0, 1570.0, 1600.0)]
    # 1000 takes the first turn; the next is due 570 s later (30 s early for the minute's jitter): 1570.
    assert [len(batch) for batch in made] == [5, 0, 0, 0, 5, 0]
    assert len(stored(c)) == 10


def test_the_schedule_does_nothing_unless_the_stage_sets_an_interval(c):
    assert typed.populate_when_due(c.typed_jobs, c.registry, c.admission, None, defaults(c), 1000.0) == []
    assert stored(c) == [] and c.typed_jobs.populate_next_at is None


def test_the_scheduled_function_uses_the_stages_settings(client):
    from chalicelib.container import reset_container
    seed004 = MemoryContainer(populate_interval_s=600, populate_batch_size=2, populate_type="notification")
    reset_container(seed004)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=["arn:aws:events:us-east-1:123456789012:rule/populate"])
    for _ in range(2):  # a duplicate fire makes no second batch
        client.lambda_.invoke("populate_jobs", event)
    assert [(job.type, job.caller) for job in stored(seed004)] == [("notification", "populate")] * 2


def test_an_unknown_populate_type_on_the_stage_is_refused_naming_the_setting(c):
    with pytest.raises(Exception) as refused:
        typed.populate(c.typed_jobs, c.registry, c.admission, PopulateJobs(), None, defaults(c, type="fax"), 1.0)
    assert "PACER_POPULATE_TYPE" in str(refused.value.fields) and stored(c) == []
