"""The HTTP adapter: status codes, error bodies, and that rejected requests store nothing."""
import json
import time

import pytest
from chalice.test import Client

from app import app
from chalicelib.container import reset_container
from chalicelib.core.jobs import JobOutcome
from tests.fakes import MemoryContainer


@pytest.fixture
def c():
    return MemoryContainer()


def call(client, method, path, body=None, raw=None):
    payload = raw if raw is not None else (json.dumps(body) if body is not None else "")
    response = getattr(client.http, method)(path, headers={"Content-Type": "application/json"}, body=payload)
    return response.status_code, response.json_body


def test_post_run_starts_a_run_and_answers_201_with_its_status(client, c):
    code, body = call(client, "post", "/api/run", {"x": 600, "y": 0.5, "total": 10})
    assert code == 201
    assert (body["state"], body["x"], body["y"], body["total"], body["configured_per_min"]) == ("running", 600, 0.5, 10, 1200.0)
    assert c.runs.current() is not None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"y": 1}, "x"),
        ({"x": 0, "y": 1}, "x"),
        ({"x": 10, "y": 0}, "y"),
        ({"x": 10, "y": -1.5}, "y"),
        ({"x": "10", "y": 1}, "x"),
        ({"x": 1.5, "y": 1}, "x"),
        ({"x": True, "y": 1}, "x"),
        ({"x": 10, "y": 1, "total": 0}, "total"),
        ({"x": 10, "y": 1, "rate": 3}, "rate"),
    ],
)
def test_a_bad_run_body_gets_400_naming_the_field_and_stores_nothing(client, c, body, field):
    code, answer = call(client, "post", "/api/run", body)
    assert code == 400
    assert answer["error"] == "validation_error"
    assert field in [f["field"] for f in answer["fields"]] and field in answer["message"]
    assert c.runs.current() is None and c.ticks_queue.sent == []


def test_a_body_that_is_not_json_gets_400_saying_so(client, c):
    code, answer = call(client, "post", "/api/run", raw="{x: 1")
    assert code == 400 and "not valid JSON" in answer["message"]
    assert c.runs.current() is None


def test_a_body_that_is_not_an_object_gets_400(client, c):
    code, answer = call(client, "post", "/api/run", raw="[1, 2]")
    assert code == 400 and "JSON object" in answer["message"]


def test_an_oversized_body_gets_413_and_stores_nothing(client, c):
    code, answer = call(client, "post", "/api/run", raw=json.dumps({"x": 1, "y": 1, "pad": "a" * 40_000}))
    assert code == 413 and "limit" in answer["message"]
    assert c.runs.current() is None


def test_starting_a_second_run_while_one_is_active_gets_409(client):
    call(client, "post", "/api/run", {"x": 600, "y": 1})
    code, answer = call(client, "post", "/api/run", {"x": 600, "y": 1})
    assert code == 409 and answer["error"] == "conflict" and "stop it first" in answer["message"]


def test_put_run_changes_the_rate_of_the_running_run(client, c):
    call(client, "post", "/api/run", {"x": 60, "y": 1})
    code, body = call(client, "put", "/api/run", {"x": 120, "y": 2})
    assert code == 200 and (body["x"], body["y"]) == (120, 2.0)
    assert c.runs.current().x == 120


def test_put_run_with_no_run_gets_409_and_a_bad_rate_gets_400(client, c):
    assert call(client, "put", "/api/run", {"x": 60, "y": 1})[0] == 409
    call(client, "post", "/api/run", {"x": 60, "y": 1})
    code, answer = call(client, "put", "/api/run", {"x": 60, "y": 1, "total": 5})
    assert code == 400 and answer["fields"][0]["field"] == "total"
    assert c.runs.current().x == 60


# A y below 0.001 minutes underflowed DynamoDB's numbers (500) or left their range (503), or stored a rate of 1e131.
TOO_FAST = [{"x": 1, "y": 5e-324}, {"x": 1, "y": 1e-131}, {"x": 1_000_000, "y": 1e-125}, {"x": 1, "y": 0.000999}]


@pytest.mark.parametrize("body", TOO_FAST)
def test_a_y_below_a_thousandth_of_a_minute_gets_400_naming_y_and_its_bound_and_starts_nothing(client, c, body):
    code, answer = call(client, "post", "/api/run", body)
    assert code == 400 and [f["field"] for f in answer["fields"]] == ["y"] and "0.001" in answer["message"], answer
    assert c.runs.current() is None and c.ticks_queue.sent == []
    assert call(client, "get", "/api/status")[1]["state"] == "idle"


@pytest.mark.parametrize("body", TOO_FAST)
def test_a_y_below_a_thousandth_of_a_minute_gets_400_naming_y_and_leaves_the_rate_unchanged(client, c, body):
    call(client, "post", "/api/run", {"x": 60, "y": 1})
    before = c.runs.current()
    code, answer = call(client, "put", "/api/run", body)
    assert code == 400 and [f["field"] for f in answer["fields"]] == ["y"] and "0.001" in answer["message"], answer
    assert c.runs.current() == before


def test_the_fastest_rate_allowed_is_a_million_jobs_per_thousandth_of_a_minute(client, c):
    code, body = call(client, "post", "/api/run", {"x": 1_000_000, "y": 0.001})
    assert code == 201 and body["configured_per_min"] == 1e9
    assert call(client, "put", "/api/run", {"x": 1_000_000, "y": 0.001})[0] == 200


def test_stop_halts_the_run_and_a_second_stop_gets_409(client):
    call(client, "post", "/api/run", {"x": 60, "y": 1})
    code, body = call(client, "post", "/api/stop")
    assert code == 200 and body["state"] == "stopped" and body["stopped_at"]
    assert call(client, "post", "/api/stop")[0] == 409


def test_a_page_of_jobs_is_shared_by_pollers_until_a_write_through_the_api_drops_it():
    cached = MemoryContainer(read_cache_s=3600)
    reset_container(cached)
    email = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}}
    try:
        with Client(app) as client:
            first = call(client, "post", "/api/jobs", email)[1]
            assert [j["id"] for j in call(client, "get", "/api/jobs?status=pending")[1]["jobs"]] == [first["id"]]
            # Changed behind the API's back (as a worker would): the page within its interval is the cached one.
            cached.typed_jobs.cancel(cached.typed_jobs.get(first["id"]), time.time())
            assert [j["status"] for j in call(client, "get", "/api/jobs?status=pending")[1]["jobs"]] == ["pending"]
            assert call(client, "get", "/api/jobs?status=cancelled")[1]["jobs"][0]["id"] == first["id"]  # own key
            second = call(client, "post", "/api/jobs", email)[1]  # a write through the API: every page is read again
            assert [j["id"] for j in call(client, "get", "/api/jobs?status=pending")[1]["jobs"]] == [second["id"]]
    finally:
        reset_container()


def test_a_refused_stop_drops_the_cached_status_so_the_next_read_is_fresh(c):
    cached = MemoryContainer(read_cache_s=3600)
    reset_container(cached)
    try:
        with Client(app) as client:
            call(client, "post", "/api/run", {"x": 600, "y": 1, "total": 1})
            assert call(client, "get", "/api/status")[1]["state"] == "running"  # now cached
            run = cached.runs.current()
            cached.ledger.record([JobOutcome(job_id=f"{run.run_id}:0", run_id=run.run_id, outcome="done",
                                             attempt=1, worker="w", finished_at=run.started_at + 1)], run.started_at + 1)
            code, answer = call(client, "post", "/api/stop")
            assert code == 409 and "completed" in answer["message"]
            assert call(client, "get", "/api/status")[1]["state"] == "completed"
    finally:
        reset_container()


def test_status_before_any_run_is_idle(client):
    code, body = call(client, "get", "/api/status")
    assert code == 200 and body["state"] == "idle" and body["enqueued"] == 0


def test_health_reports_its_checks(client):
    code, body = call(client, "get", "/api/health")
    assert code == 200 and body["status"] == "ok"


def admin(client, method, path, token="secret", body=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = getattr(client.http, method)(path, headers=headers, body=json.dumps(body) if body is not None else "")
    return response.status_code, response.json_body


def test_admin_endpoints_answer_401_without_a_token_and_403_with_a_wrong_one(client, c):
    for method, path in (("put", "/api/workers"), ("get", "/api/dlq"), ("post", "/api/dlq/redrive")):
        code, body = admin(client, method, path, token=None, body={"concurrency": 3})
        assert code == 401 and "Authorization" in body["message"]
        code, body = admin(client, method, path, token="guess", body={"concurrency": 3})
        assert code == 403 and body["error"] == "forbidden"
    assert c.fleet.desired == {}


def test_admin_endpoints_refuse_everyone_when_no_token_is_configured(client, c):
    c.settings.admin_token = ""
    code, body = admin(client, "put", "/api/workers", token=None, body={"concurrency": 3})
    assert code == 401 and "Authorization" in body["message"]
    for token in ("", "anything", "secret"):  # "" sends "Bearer ": a header, but an empty token
        code, body = admin(client, "put", "/api/workers", token=token, body={"concurrency": 3})
        assert code == 403 and body["error"] == "forbidden" and "PACER_ADMIN_TOKEN" in body["message"], (token, body)
    assert c.fleet.desired == {}


def test_an_admin_sets_the_worker_concurrency_and_anyone_can_see_it(client, c):
    code, body = admin(client, "put", "/api/workers", body={"concurrency": 3})
    assert code == 200 and body["concurrency"] == 3
    assert c.fleet.desired == {"process_jobs": 3}
    assert call(client, "get", "/api/workers")[1]["concurrency"] == 3


def test_a_bad_concurrency_gets_400_and_changes_nothing(client, c):
    for bad in (0, 101, "4", 2.5):
        code, body = admin(client, "put", "/api/workers", body={"concurrency": bad})
        assert code == 400 and body["fields"][0]["field"] == "concurrency"
    assert c.fleet.desired == {}


def test_an_admin_sets_the_bot_count_and_anyone_can_read_it(client, c):
    assert call(client, "get", "/api/bots/count") == (200, {"count": None})
    code, body = admin(client, "put", "/api/bots/count", body={"count": 2})
    assert (code, body) == (200, {"count": 2})
    assert c.fleet.desired_bots == 2 and c.fleet.desired == {}
    assert call(client, "get", "/api/bots/count") == (200, {"count": 2})
    assert call(client, "get", "/api/bots")[0] == 200  # the list is still the list, not the count


def test_a_bot_count_without_the_admin_token_or_with_bad_input_is_refused_and_stores_nothing(client, c):
    assert admin(client, "put", "/api/bots/count", token=None, body={"count": 2})[0] == 401
    assert admin(client, "put", "/api/bots/count", token="guess", body={"count": 2})[0] == 403
    for bad in (-1, c.settings.max_bots + 1, "2", 1.5, None, True):
        code, body = admin(client, "put", "/api/bots/count", body={"count": bad})
        assert code == 400 and body["fields"][0]["field"] == "count", (bad, body)
    code, body = admin(client, "put", "/api/bots/count", body={"count": 1, "bots": 2})
    assert code == 400 and "bots" in body["message"]
    assert c.fleet.desired_bots is None


def test_the_dlq_lists_messages_with_their_reason_and_redrives_them(client, c):
    from chalicelib.core.jobs import OutboundMessage
    c.jobs_dlq.send([OutboundMessage(body="not json"), OutboundMessage(body="also not")])
    c.failure_log.record([("m0", 5, "unparseable message: Invalid JSON")], now=0)
    code, body = admin(client, "get", "/api/dlq?limit=5")
    assert code == 200 and body["count"] == 2
    assert body["messages"][0]["reason"] == "unparseable message: Invalid JSON"
    code, body = admin(client, "post", "/api/dlq/redrive")
    assert (code, body) == (200, {"moved": 2, "remaining": 0})
    assert [m.body for m in c.jobs_queue.sent] == ["not json", "also not"]


def test_a_bad_dlq_limit_gets_400(client):
    assert admin(client, "get", "/api/dlq?limit=0")[0] == 400
    assert admin(client, "get", "/api/dlq?limit=abc")[0] == 400


def test_every_route_allows_the_headers_the_pages_send_in_its_preflight():
    # (The real preflight is driven by the browser tests; chalice's test client cannot send an OPTIONS.)
    from app import app
    for path, methods in app.routes.items():
        for method, route in methods.items():
            allowed = route.cors.get_access_control_headers()["Access-Control-Allow-Headers"].lower().split(",")
            assert {"idempotency-key", "x-caller-id", "content-type", "authorization"} <= set(allowed), (method, path)
