"""GET /api/openapi.json: generated from app.routes and the models, complete, and a valid OpenAPI 3.1 document."""
import json

import pytest
from chalice.app import Chalice
from openapi_spec_validator import validate
from pydantic import BaseModel, TypeAdapter

from app import OPERATIONS, app
from chalicelib.apidoc.document import openapi_document
from chalicelib.apidoc.operations import Link, Operation, Operations
from chalicelib.settings import Settings
from tests.fakes import MemoryContainer

ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}


@pytest.fixture
def c():
    return MemoryContainer(compute_max_digits=50, max_worker_concurrency=4, max_bots=2, max_body_bytes=4096)


@pytest.fixture
def document(client):
    response = client.http.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json_body


def test_every_route_in_app_routes_is_in_the_document_with_each_of_its_methods(document):
    for path, methods in app.routes.items():
        assert path in document["paths"], f"{path} is not in the OpenAPI document"
        assert set(document["paths"][path]) == {m.lower() for m in methods}, path


def test_every_route_says_what_it_takes_and_answers(document):
    undocumented = [f"{method.upper()} {path}" for path, methods in document["paths"].items()
                    for method, operation in methods.items() if operation.get("x-pacer-undocumented")]
    assert undocumented == [], f"give these routes a doc=Operation(...) in app.py: {undocumented}"


def test_the_document_is_a_valid_openapi_3_1_document(document):
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises, naming the fault, if it is not


def test_errors_share_one_shape_and_every_operation_may_answer_503(document):
    error = {"$ref": "#/components/schemas/ErrorBody"}
    assert set(document["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "message"}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert "503" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400 and path != "/api/health":
                    assert response["content"]["application/json"]["schema"] == error, (method, path, status)


def test_admin_operations_need_the_bearer_token_and_document_401_and_403(document):
    admin = {(m, p) for p, methods in document["paths"].items() for m, op in methods.items()
             if {"adminToken": []} in op.get("security", [])}
    assert admin == {("put", "/api/workers"), ("get", "/api/dlq"), ("post", "/api/dlq/redrive"),
                     ("put", "/api/callers/{caller}"), ("put", "/api/jobs/dispatch"),
                     ("post", "/api/jobs/{job_id}/retry"), ("put", "/api/jobs/limits"), ("delete", "/api/bots/{bot_id}"),
                     ("post", "/api/jobs/populate"), ("put", "/api/bots/count")}
    assert document["components"]["securitySchemes"]["adminToken"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["adminToken"]
        ["description"]}
    for method, path in admin:
        assert {"401", "403"} <= set(document["paths"][path][method]["responses"])


def test_a_bots_own_operations_need_its_token_and_document_401_403_and_404(document):
    bot = {(m, p) for p, methods in document["paths"].items() for m, op in methods.items()
           if {"botToken": []} in op.get("security", [])}
    assert bot == {("post", "/api/bots/{bot_id}/heartbeat"), ("post", "/api/bots/{bot_id}/claim"),
                   ("post", "/api/bots/{bot_id}/jobs/{job_id}/extend"),
                   ("post", "/api/bots/{bot_id}/jobs/{job_id}/complete"),
                   ("post", "/api/bots/{bot_id}/jobs/{job_id}/fail"),
                   ("delete", "/api/bots/{bot_id}")}  # a bot deregistering itself (or the admin deleting it)
    for method, path in bot:
        assert {"401", "403", "404"} <= set(document["paths"][path][method]["responses"])
    assert document["paths"]["/api/bots/{bot_id}/claim"]["post"]["responses"]["204"] == {"description": "No content"}


def test_the_headers_are_documented_where_they_are_read(document):
    def headers(method, path):
        return {p["name"]: p["required"] for p in document["paths"][path][method].get("parameters", [])
                if p["in"] == "header"}

    assert headers("post", "/api/compute") == {"X-Caller-ID": True}
    assert headers("post", "/api/compute/batch") == {"X-Caller-ID": True}
    assert headers("post", "/api/jobs") == {"X-Caller-ID": False, "Idempotency-Key": False}


def test_the_limits_the_stage_enforces_are_the_ones_documented(document):
    schemas = document["components"]["schemas"]
    assert schemas["ComputeSubmit"]["properties"]["number"]["maxLength"] == 50
    assert schemas["ComputeBatchSubmit"]["properties"]["numbers"]["items"]["maxLength"] == 50
    assert schemas["ComputeBatchSubmit"]["properties"]["numbers"]["maxItems"] == 100
    assert schemas["SetConcurrency"]["properties"]["concurrency"]["maximum"] == 4
    assert (schemas["SetBotCount"]["properties"]["count"]["minimum"],
            schemas["SetBotCount"]["properties"]["count"]["maximum"]) == (0, 2)
    assert schemas["StartRun"]["properties"]["x"]["maximum"] == 1_000_000
    assert "4096 bytes" in document["paths"]["/api/run"]["post"]["requestBody"]["description"]
    assert "x-pacer-setting-limits" not in json.dumps(document)
    limits = {p["name"]: p["schema"] for p in document["paths"]["/api/jobs"]["get"]["parameters"]}
    assert (limits["limit"]["minimum"], limits["limit"]["maximum"]) == (1, 100)


def test_a_concurrency_over_the_stages_ceiling_gets_400_and_changes_nothing(client, c):
    response = client.http.put("/api/workers", headers=ADMIN, body=json.dumps({"concurrency": 5}))
    assert response.status_code == 400 and response.json_body["fields"][0]["field"] == "concurrency"
    assert "at most 4" in response.json_body["message"]
    assert c.fleet.desired == {}


def test_a_route_added_without_an_operation_is_listed_as_undocumented():
    scratch = Chalice(app_name="scratch")

    class Pong(BaseModel):
        pong: bool

    @scratch.route("/ping", methods=["GET"])
    def ping():
        return {"pong": True}

    @scratch.route("/secret", methods=["GET", "POST"])
    def secret():
        return {}

    operations = Operations()
    operations.add("/ping", ["GET"], Operation("Ping", "misc", {200: Pong}))
    document = openapi_document(scratch.routes, operations, Settings())
    assert not document["paths"]["/ping"]["get"].get("x-pacer-undocumented")
    assert document["paths"]["/ping"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Pong"}
    assert {m for m, op in document["paths"]["/secret"].items() if op.get("x-pacer-undocumented")} == {"get", "post"}
    validate(document)


def test_app_py_documents_its_routes_through_the_api_decorator():
    assert OPERATIONS.get("POST", "/api/run") is not None and OPERATIONS.get("PATCH", "/api/run") is None


def _links(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                for name, link in response.get("links", {}).items():
                    yield method, path, operation, status, response, name, link


def _resolve(document, schema, pointer):
    """The schema of the value at a JSON pointer into a body of `schema` (through $refs, properties, items)."""
    for token in [t for t in pointer.split("/") if t]:
        while "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        options = [o for o in schema.get("anyOf", []) if o != {"type": "null"}]
        schema = options[0] if len(options) == 1 and "$ref" in options[0] else schema
        while "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if token.isdigit():
            assert "items" in schema, f"{pointer}: {token} indexes a non-array"
            schema = schema["items"]
        else:
            assert token in schema.get("properties", {}), f"{pointer}: no property {token}"
            schema = schema["properties"][token]
    return schema


def test_every_link_names_an_operation_its_parameters_and_values_the_source_answers(document):
    by_id = {op["operationId"]: op for methods in document["paths"].values() for op in methods.values()}
    links = list(_links(document))
    assert len(links) >= 10
    for method, path, operation, status, response, name, link in links:
        where = f"{method.upper()} {path} {status} -> {name}"
        assert 200 <= int(status) < 300, where
        target = by_id.get(link["operationId"])
        assert target is not None, f"{where}: no operationId {link['operationId']}"
        taken = {(p["in"], p["name"]) for p in target.get("parameters", [])}
        given = set()
        for parameter, expression in link.get("parameters", {}).items():
            location, _, name_ = parameter.rpartition(".")
            matches = {(i, n) for i, n in taken if n == name_ and location in ("", i)}
            assert len(matches) == 1, f"{where}: {link['operationId']} takes no parameter {parameter}"
            given |= matches
            if expression.startswith("$response.body#"):
                schema = response["content"]["application/json"]["schema"]
                assert _resolve(document, schema, expression.split("#", 1)[1]), where
            elif expression.startswith("$request.path."):
                assert expression.rsplit(".", 1)[1] in path, where
            else:
                assert expression.startswith("$response.header."), f"{where}: {expression}"
        needed = {(p["in"], p["name"]) for p in target.get("parameters", []) if p["in"] == "path"}
        assert needed <= given, f"{where}: the link leaves path parameters unset: {needed - given}"


def test_the_follow_ups_are_linked_with_the_id_the_answer_gives(document):
    def links(method, path, status):
        return {name: link.get("parameters", {}) for name, link in
                document["paths"][path][method]["responses"][status]["links"].items()}

    the_job = {"job_id": "$response.body#/id"}
    for status in ("201", "200"):
        assert links("post", "/api/jobs", status) == {"get_job": the_job, "cancel_job": the_job, "retry_job": the_job}
    assert links("post", "/api/compute", "202") == {"get_compute": {"request_id": "$response.body#/id"}}
    assert set(links("post", "/api/run", "201")) == {"status", "change_rate", "stop_run"}
    assert "links" not in document["paths"]["/api/jobs"]["post"]["responses"]["409"]


def test_a_link_is_named_by_its_target_so_two_to_one_operation_are_refused():
    with pytest.raises(ValueError, match="two links to one operation"):
        Operation("Ping", "misc", {200: TypeAdapter(dict)}, links=(Link("get_job"), Link("get_job")))
