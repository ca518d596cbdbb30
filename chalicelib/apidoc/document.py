"""The OpenAPI 3.1 document: Chalice's route table, each route's Operation, and its models' JSON Schemas."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterator, Mapping

from pydantic import TypeAdapter

from chalicelib.apidoc.operations import ERRORS, Link, Operation, Operations, Shape
from chalicelib.core.errors import ErrorBody
from chalicelib.core.validation import MAX_CALLER_ID, SETTING_LIMITS
from chalicelib.settings import Settings
from chalicelib.typed.service import MAX_IDEMPOTENCY_KEY

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
ADMIN_SCHEME = "adminToken"
BOT_SCHEME = "botToken"
JSON = "application/json"

# A route's key in the schema table: (method, path, what), where `what` is "body", "query" or a status code.
SchemaKey = tuple[str, str, str | int]


def openapi_document(routes: Mapping[str, Mapping[str, Any]], operations: Operations,
                     settings: Settings) -> dict[str, Any]:
    """`routes` is Chalice's `app.routes` (path -> method -> RouteEntry). A route without an Operation is still
    listed, marked `x-pacer-undocumented`, so a test can name it."""
    documented = [(method, path, operation) for path, methods in routes.items() for method in methods
                  if (operation := operations.get(method, path)) is not None]
    schemas, components = _json_schemas(documented)
    operation_ids = _operation_ids(routes)
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in routes.items():
        for method, entry in methods.items():
            operation = operations.get(method, path)
            described = (_operation(method, path, entry, operation, schemas, components, settings) if operation
                         else _undocumented(method, path))
            paths.setdefault(path, {})[method.lower()] = {"operationId": operation_ids[(method, path)], **described}
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Pacer", "version": "1",
                 "description": (
                     "Paced runs, fair compute and typed jobs on one job pipeline. Bodies are JSON objects of at "
                     f"most {settings.max_body_bytes} bytes (413 over it). Every error answers "
                     "`{error, message, fields?}` with a 4xx naming the problem (503 when AWS fails); a rejected "
                     "request stores nothing. Times are ISO 8601 UTC strings with a `Z`. Admin endpoints need "
                     "`Authorization: Bearer <PACER_ADMIN_TOKEN>`.")},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {ADMIN_SCHEME: {
                           "type": "http", "scheme": "bearer",
                           "description": "the stage's PACER_ADMIN_TOKEN (`local-admin-token` on the local stage)"},
                           BOT_SCHEME: {
                           "type": "http", "scheme": "bearer",
                           "description": "the token POST /api/bots answered once for the bot the path names"}}},
    }
    _put_setting_limits(document, settings)
    return document


def _json_schemas(documented: list[tuple[str, str, Operation]]) -> tuple[dict[SchemaKey, Any], dict[str, Any]]:
    """Every model's JSON Schema in one pass, so models shared between routes are one component each."""
    inputs: list[tuple[SchemaKey, Any, TypeAdapter[Any]]] = [(("*", "*", "error"), "serialization",
                                                              TypeAdapter(ErrorBody))]
    for method, path, operation in documented:
        if operation.body is not None:
            inputs.append(((method, path, "body"), "validation", _adapter(operation.body)))
        if operation.query is not None:
            inputs.append(((method, path, "query"), "validation", _adapter(operation.query)))
        for status, shape in operation.answers.items():
            if shape is None:
                continue
            inputs.append(((method, path, status), "serialization", _adapter(shape)))
    by_key, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF_TEMPLATE)
    return {key: schema for (key, _mode), schema in by_key.items()}, definitions.get("$defs", {})


def _adapter(shape: Shape) -> TypeAdapter[Any]:
    return shape if isinstance(shape, TypeAdapter) else TypeAdapter(shape)


def _operation(method: str, path: str, entry: Any, operation: Operation, schemas: dict[SchemaKey, Any],
               components: dict[str, Any], settings: Settings) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
                   "description": operation.path_parameters.get(name, "")} for name in entry.view_args]
    if operation.query is not None:
        parameters += _query_parameters(schemas[(method, path, "query")], components)
    if operation.caller:
        parameters.append({
            "name": "X-Caller-ID", "in": "header", "required": operation.caller == "required",
            "description": "who submits: fair shares are per caller"
                           + ("" if operation.caller == "required" else " (`anonymous` if absent)"),
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CALLER_ID, "pattern": "^[^#]+$"}})
    if operation.idempotency_key:
        parameters.append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "the same key and body again answers 200 with the same job; another body, 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY}})
    answer: dict[str, Any] = {"summary": operation.summary, "tags": [operation.tag]}
    if operation.description:
        answer["description"] = operation.description
    if parameters:
        answer["parameters"] = parameters
    if operation.body is not None:
        answer["requestBody"] = {"required": True, "description": f"JSON, at most {settings.max_body_bytes} bytes",
                                 "content": {JSON: {"schema": schemas[(method, path, "body")]}}}
    answer["responses"] = {str(status): _response(method, path, status, operation, schemas)
                           for status in operation.statuses()}
    # Either token will do where both are named (a bot deregistering itself, or an admin deleting it).
    schemes = [scheme for scheme, named in ((ADMIN_SCHEME, operation.admin), (BOT_SCHEME, operation.bot)) if named]
    if schemes:
        answer["security"] = [{scheme: []} for scheme in schemes]
    return answer


def _response(method: str, path: str, status: int, operation: Operation,
              schemas: dict[SchemaKey, Any]) -> dict[str, Any]:
    if status in operation.answers and operation.answers[status] is None:
        return {"description": "No content"}
    if status in operation.answers:
        description = "OK" if status < 400 else ERRORS.get(status, "")
        answer: dict[str, Any] = {"description": description,
                                  "content": {operation.media_type: {"schema": schemas[(method, path, status)]}}}
        if status < 400 and operation.links:
            answer["links"] = {link.operation_id: _link(link) for link in operation.links}
        return answer
    response: dict[str, Any] = {"description": ERRORS[status],
                                "content": {JSON: {"schema": schemas[("*", "*", "error")]}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}
    return response


def _link(link: Link) -> dict[str, Any]:
    rendered: dict[str, Any] = {"operationId": link.operation_id}
    if link.parameters:
        rendered["parameters"] = dict(link.parameters)
    if link.description:
        rendered["description"] = link.description
    return rendered


def _query_parameters(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    """A query model's fields as query parameters. A query string has no null: an absent parameter is one."""
    model = components[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
    required = set(model.get("required", []))
    parameters = []
    for name, field in model["properties"].items():
        field = _without_null(field)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field}
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if len(options) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf" and (key, value) != ("default", None)}
    return {**options[0], **rest}


def _operation_ids(routes: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """Each handler's name; with the method where one handler serves several (operation ids must be unique)."""
    entries = [(method, path, entry.view_name) for path, methods in routes.items() for method, entry in methods.items()]
    shared = {name for name, count in Counter(name for _, _, name in entries).items() if count > 1}
    return {(method, path): f"{name}_{method.lower()}" if name in shared else name for method, path, name in entries}


def _undocumented(method: str, path: str) -> dict[str, Any]:
    return {"summary": f"{method} {path}", "x-pacer-undocumented": True,
            "responses": {"default": {"description": "undocumented: give this route an Operation in app.py"}}}


def _put_setting_limits(document: Any, settings: Settings) -> None:
    """Replace each `setting_limits` marker with the keywords it names, valued from this stage's settings."""
    for node in _objects(document):
        for keyword, setting in node.pop(SETTING_LIMITS, {}).items():
            node[keyword] = getattr(settings, setting)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in list(value.values()):
            yield from _objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from _objects(child)
