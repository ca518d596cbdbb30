"""GET /api/health through the REAL container (chalicelib.container.Container) over moto's in-process AWS,
so the 503 path is proved against real probes, not a fake container's health()."""
import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.container import Container, reset_container
from chalicelib.resources import JOBS_DLQ, JOBS_QUEUE, RESULTS_TABLE, STATE_TABLE, TICKS_QUEUE, TYPED_JOBS_TABLE
from chalicelib.settings import Settings

CHECKS = ("jobs_queue", "state_table", "results_table", "typed_jobs_table")


@pytest.fixture
def client(moto_aws):
    settings = Settings(state_table=STATE_TABLE.name, results_table=RESULTS_TABLE.name,
                        typed_jobs_table=TYPED_JOBS_TABLE.name, jobs_queue=JOBS_QUEUE.name,
                        jobs_dlq=JOBS_DLQ.name, ticks_queue=TICKS_QUEUE.name)
    reset_container(Container(settings))
    try:
        with Client(app) as client:
            yield client
    finally:
        reset_container()


def get_health(client):
    response = client.http.get("/api/health")
    return response.status_code, response.json_body


def test_health_answers_200_ok_with_every_check_ok_when_the_queue_and_all_tables_exist(client):
    code, body = get_health(client)
    assert code == 200 and body["status"] == "ok", body
    assert set(body["checks"]) == set(CHECKS)
    for check in CHECKS:
        assert body["checks"][check]["ok"] is True, (check, body)
    for table in ("state_table", "results_table", "typed_jobs_table"):
        assert body["checks"][table]["detail"] == "ACTIVE"


def test_health_answers_503_unhealthy_naming_the_typed_jobs_table_when_it_is_missing_and_the_rest_stay_ok(client):
    boto3.client("dynamodb").delete_table(TableName=TYPED_JOBS_TABLE.name)
    code, body = get_health(client)
    assert code == 503 and body["status"] == "unhealthy", body
    typed = body["checks"]["typed_jobs_table"]
    assert typed["ok"] is False
    # The probe's own error, e.g. "ResourceNotFoundException: ... DescribeTable operation: Requested resource
    # not found: Table: pacer-tasks not found"
    assert typed["detail"].startswith("ResourceNotFoundException: "), typed
    assert f"Table: {TYPED_JOBS_TABLE.name} not found" in typed["detail"], typed
    for check in ("jobs_queue", "state_table", "results_table"):
        assert body["checks"][check]["ok"] is True, (check, body)
