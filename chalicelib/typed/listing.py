"""Listing typed jobs: the query's parameters, one DynamoDB Query on one GSI (`plan_list`), and cursors.

The index is chosen by the status or type filter (else the constant "all"
partition) and the sort; the other filters are key conditions where the index
allows and FilterExpressions otherwise. The `next` token is the last returned
job's index keys, base64url JSON, checked against the query it continues.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from chalicelib.core.times import iso_key
from chalicelib.core.validation import field_errors, invalid
from chalicelib.resources import TYPED_JOB_INDEX_PARTITIONS, TYPED_JOB_INDEX_SORTS, typed_job_index_name
from chalicelib.typed.executors import Registry
from chalicelib.typed.keys import created_key, priority_key
from chalicelib.typed.models import TypedJob, TypedJobStatus

JOB_ID = re.compile(r"^j-[0-9a-f]{16}$")

MAX_TOKEN = 2000


class ListQuery(BaseModel):
    """`GET /api/jobs` query parameters. Lax: query strings are strings, so "3" is the priority 3."""

    model_config = ConfigDict(extra="forbid")

    status: TypedJobStatus | None = None
    type: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    created_from: AwareDatetime | None = None
    created_to: AwareDatetime | None = None
    q: str | None = Field(default=None, max_length=200)
    sort: Literal["created", "priority"] = "created"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=25, ge=1, le=100)
    next: str | None = Field(default=None, max_length=MAX_TOKEN)

    @model_validator(mode="after")
    def _range_ordered(self) -> "ListQuery":
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from must not be after created_to")
        return self


def parse_list_query(params: dict[str, str], registry: Registry) -> ListQuery:
    # An empty parameter (`?status=`, as a form sends it) means no filter.
    try:
        query = ListQuery.model_validate({name: value for name, value in params.items() if value != ""})
    except ValidationError as exc:
        fields = field_errors(exc)
        for field in fields:  # a model-level error names the first of the two fields it compares
            if field["field"] == "body":
                field["field"] = "created_from"
        raise invalid(fields) from exc
    if query.type is not None and query.type not in registry:
        raise invalid([{"field": "type", "message": f"must be one of: {', '.join(registry.names)}"}])
    return query


@dataclass(frozen=True)
class ListPlan:
    """One DynamoDB Query: which index, its key condition, and what is left to filter."""

    index: str
    hash_attribute: str
    hash_value: str
    range_attribute: str
    forward: bool
    range_between: tuple[str, str] | None = None  # key condition, inclusive
    range_prefix: str | None = None  # key condition: begins_with
    type: str | None = None  # the rest are FilterExpressions: read, then dropped
    priority: int | None = None
    created_between: tuple[str, str] | None = None
    q: str | None = None

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.type, self.priority, self.created_between, self.q))

    def matches(self, attributes: dict[str, Any]) -> bool:
        """Whether a job (its item's attributes) is in this listing: what the Query returns, for the in-memory twin."""
        def between(value: str, bounds: tuple[str, str] | None) -> bool:
            return bounds is None or bounds[0] <= value <= bounds[1]

        return (attributes.get(self.hash_attribute) == self.hash_value
                and between(attributes[self.range_attribute], self.range_between)
                and (self.range_prefix is None or attributes[self.range_attribute].startswith(self.range_prefix))
                and (self.type is None or attributes["type"] == self.type)
                and (self.priority is None or int(attributes["priority"]) == self.priority)
                and between(attributes["created_key"], self.created_between)
                and (self.q is None or self.q in attributes["search"]))


# The span of times a key spells in its fixed width, so in order. Every job is created well inside it, so clamping a
# bound into it changes no listing (a created_to before the epoch keeps only jobs created at the epoch itself: none).
FIRST_KEY_TIME = 0.0
LAST_KEY_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def key_time(moment: datetime) -> str:
    return iso_key(min(max(moment.timestamp(), FIRST_KEY_TIME), LAST_KEY_TIME))


def plan_list(query: ListQuery) -> ListPlan:
    value: str  # a status, a type or "job": the index partition's hash key
    if query.status is not None:
        partition, value = "status", query.status
    elif query.type is not None:
        partition, value = "type", query.type
    else:
        partition, value = "all", "job"
    created = None
    if query.created_from or query.created_to:
        # DynamoDB refuses an empty bound, and a BETWEEN whose low is above its high: an open end is the first or
        # last key, and both ends are keys (clamped to the span keys can spell) whatever times were asked for.
        low = key_time(query.created_from) if query.created_from else iso_key(FIRST_KEY_TIME)
        high = key_time(query.created_to) + "~" if query.created_to else "~"  # '~' sorts after "#<id>" and digits
        created = (low, high)
    by_created = query.sort == "created"
    return ListPlan(
        index=typed_job_index_name(partition, query.sort),
        hash_attribute=TYPED_JOB_INDEX_PARTITIONS[partition],
        hash_value=value,
        range_attribute=TYPED_JOB_INDEX_SORTS[query.sort],
        forward=query.order == "asc",
        range_between=created if by_created else None,
        range_prefix=f"{query.priority}#" if query.priority is not None and not by_created else None,
        type=query.type if partition == "status" else None,
        priority=query.priority if by_created else None,
        created_between=None if by_created else created,
        q=query.q.lower() if query.q else None,
    )


def index_keys(plan: ListPlan, job: TypedJob) -> dict[str, str]:
    """The job's position in the plan's index: DynamoDB's ExclusiveStartKey for the next page."""
    hash_value = {"status": job.status, "type": job.type, "kind": "job"}[plan.hash_attribute]
    sort_value = (created_key(job.id, job.created_at) if plan.range_attribute == "created_key"
                  else priority_key(job.id, job.priority, job.created_at))
    return {"id": job.id, plan.hash_attribute: hash_value, plan.range_attribute: sort_value}


def encode_token(plan: ListPlan, key: dict[str, str]) -> str:
    raw = json.dumps({"v": 1, "i": plan.index, "k": key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(plan: ListPlan, token: str) -> dict[str, str]:
    """The start key a `next` token carries, if it is one this query could have made; else 400."""
    bad = invalid([{"field": "next", "message": "is not a token this listing gave out (change no filter or sort "
                                                "while paging)"}])
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(decoded, dict) or decoded.get("v") != 1 or decoded.get("i") != plan.index:
        raise bad
    key = decoded.get("k")
    expected = {"id", plan.hash_attribute, plan.range_attribute}
    if not isinstance(key, dict) or set(key) != expected or not all(isinstance(v, str) for v in key.values()):
        raise bad
    # The start must lie in this query's partition, and be a key this index can hold (DynamoDB refuses others).
    if (key[plan.hash_attribute] != plan.hash_value or not JOB_ID.match(key["id"])
            or not key[plan.range_attribute].endswith("#" + key["id"]) or len(key[plan.range_attribute]) > 100):
        raise bad
    return key
