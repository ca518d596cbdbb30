"""Python values to DynamoDB attribute values and back."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_decimals(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats (at any depth: a timeline's times) go in by their repr."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _to_decimals(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_to_decimals(v) for v in value]
    return value


def _from_decimals(value: Any) -> Any:
    """Back to plain numbers, so untyped data (a job's payload or result) dumps to JSON as it came in."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_decimals(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_from_decimals(v) for v in value]
    return value


def to_attr(value: Any) -> dict[str, Any]:
    attribute: dict[str, Any] = _serializer.serialize(_to_decimals(value))
    return attribute


def to_item(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: to_attr(value) for key, value in data.items()}


def from_item(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {key: _from_decimals(_deserializer.deserialize(value)) for key, value in item.items()}
