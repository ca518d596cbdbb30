"""Turning input into models, and pydantic's errors into one InvalidInput that names each field."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.core.errors import InvalidInput


class Request(BaseModel):
    # Strict: "10" is not 10, and true is not 1. Unknown fields are named back.
    model_config = ConfigDict(extra="forbid", strict=True)


MAX_CALLER_ID = 128

# A field whose limit is a setting (PACER_COMPUTE_MAX_DIGITS, say) says which in its JSON schema; the OpenAPI
# document (chalicelib/apidoc) puts the setting's value there, so the limit it documents is the one enforced.
SETTING_LIMITS = "x-pacer-setting-limits"


def setting_limits(**keywords: str) -> dict[str, Any]:
    """`json_schema_extra` for a field whose JSON Schema keywords (`maxLength`, `maximum`) are settings' values:
    `setting_limits(maxLength="compute_max_digits")`."""
    return {SETTING_LIMITS: keywords}


def check_caller(caller: str | None) -> str:
    caller = (caller or "").strip()
    if not caller:
        raise InvalidInput("X-Caller-ID: header is required", [{"field": "X-Caller-ID", "message": "missing"}])
    if len(caller) > MAX_CALLER_ID or not caller.isprintable() or "#" in caller:
        raise InvalidInput(f"X-Caller-ID: must be up to {MAX_CALLER_ID} printable characters without '#'",
                           [{"field": "X-Caller-ID", "message": "invalid"}])
    return caller


def field_errors(exc: ValidationError, union_tags: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """pydantic's errors as `{field, message}`, without the union tag pydantic puts first in a variant's paths."""
    fields = []
    for error in exc.errors():
        loc = list(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            fields.append({"field": "type", "message": f"must be one of: {', '.join(union_tags)}"})
            continue
        if loc and loc[0] in union_tags:
            loc = loc[1:]
        message = error["msg"].removeprefix("Value error, ")
        fields.append({"field": ".".join(map(str, loc)) or "body", "message": message})
    return fields


def invalid(fields: list[dict[str, str]]) -> InvalidInput:
    return InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields), fields)
