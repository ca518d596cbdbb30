"""Times as Pacer writes them: the API's ISO 8601 strings, and sortable keys for storage."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


# A time always gives a string, so callers holding one need no cast; None gives None.
@overload
def iso(moment: float, timespec: str = ...) -> str: ...
@overload
def iso(moment: float | None, timespec: str = ...) -> str | None: ...
def iso(moment: float | None, timespec: str = "milliseconds") -> str | None:
    """The API's times: ISO 8601 UTC with a `Z`, to the millisecond unless `timespec` says otherwise."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_key(moment: float) -> str:
    """A sortable fixed-width UTC time with microseconds, for keys: 2026-11-23T12:00:00.123456Z."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compact_stamp(moment: float) -> str:
    """A UTC time for ids: 20261123T120000."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y%m%dT%H%M%S")
