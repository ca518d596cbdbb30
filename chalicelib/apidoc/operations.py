"""What a route says about itself for the OpenAPI document: its body, query and answers, as the models it uses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

# A JSON body's shape: a model, or a TypeAdapter for what is not one (a union of models, a plain mapping).
Shape = type[BaseModel] | TypeAdapter[Any]
NO_CONTENT = None  # an answer without a body (204)

# What each error status means, wherever it is answered. The body is always core.errors.ErrorBody.
ERRORS = {
    400: "Bad input: the message and `fields` name each problem. Nothing was stored.",
    401: "No `Authorization` header: an admin endpoint needs the admin token, a bot's endpoint the bot's token.",
    403: "The token is wrong (a bot's token acts only for that bot), or admin endpoints are disabled on this stage.",
    404: "No such resource.",
    409: "Valid, but the current state forbids it (the message says which).",
    413: "The body is over the stage's `PACER_MAX_BODY_BYTES`. Nothing was stored.",
    503: "An AWS dependency failed or refused for now; a retry later may succeed.",
}


@dataclass(frozen=True)
class Link:
    """A follow-up call that takes a value from this operation's answer: an OpenAPI link on each success answer.

    `parameters` maps the target's parameter names (prefixed `path.`, `query.` or `header.` where a name is in
    more than one place) to runtime expressions, e.g. `{"job_id": "$response.body#/id"}`; none if the call
    takes nothing but follows on (POST /api/run, then GET /api/status). tests/unit/test_openapi.py holds each
    to an operationId and parameters that exist, and tests/fuzz follows them statefully.
    """

    operation_id: str  # the target's handler name in app.py, as the document names it
    parameters: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One route's method: what it takes and what it answers.

    Every operation may answer 503; one with a body also 400 and 413; one with a query model or a validated
    header also 400; an admin one also 401 and 403; a bot's also 401, 403 and 404. `errors` lists the others it may answer (404, 409).
    """

    summary: str
    tag: str
    answers: dict[int, Shape | None]  # success statuses and their bodies (None: no body)
    body: Shape | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    admin: bool = False
    bot: bool = False  # a bot's own endpoint: `Authorization: Bearer <bot token>`, the bot named in the path
    caller: Literal["required", "optional"] | None = None  # the X-Caller-ID header
    idempotency_key: bool = False  # the Idempotency-Key header
    description: str = ""
    path_parameters: dict[str, str] = field(default_factory=dict)  # name -> description
    media_type: str = "application/json"  # the success answers' (errors are always JSON)
    links: tuple[Link, ...] = ()  # on every success answer, each named by its target's operationId

    def __post_init__(self) -> None:
        targets = [link.operation_id for link in self.links]
        if len(set(targets)) != len(targets):
            raise ValueError(f"two links to one operation: {targets} (a link is named by its target)")

    def statuses(self) -> list[int]:
        errors = set(self.errors) | {503}
        if self.body is not None:
            errors |= {400, 413}
        if self.query is not None or self.caller or self.idempotency_key:
            errors.add(400)
        if self.admin:
            errors |= {401, 403}
        if self.bot:
            errors |= {401, 403, 404}
        return sorted(set(self.answers) | errors)


class Operations:
    """Each route's Operation, by (method, path), as app.py's `api` decorator records them."""

    def __init__(self) -> None:
        self._by_route: dict[tuple[str, str], Operation] = {}

    def add(self, path: str, methods: list[str], operation: Operation) -> None:
        for method in methods:
            self._by_route[(method.upper(), path)] = operation

    def get(self, method: str, path: str) -> Operation | None:
        return self._by_route.get((method.upper(), path))
