"""The datalake's ports: where objects are kept (S3), and the catalog that counts each object once."""
from __future__ import annotations

from typing import Iterator, Protocol

from chalicelib.datalake.models import DateStats, MinuteCount, ObjectFigures, Sample


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes, metadata: dict[str, str]) -> None:
        """Write the object whole; a second put of the same key replaces it (the same bytes, for a retried batch)."""

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`, in key order, after `start_after`: read a page at a time."""

    def lines(self, key: str) -> Iterator[bytes]:
        """The object's lines, streamed (each with its newline)."""

    def url(self, key: str, expires_s: int) -> str:
        """A URL that fetches the object without credentials until it expires (S3: presigned GET)."""


class Catalog(Protocol):
    def count_once(self, figures: ObjectFigures, now: float) -> bool:
        """Add the object's figures to its date's and minutes' counters unless this key was counted already.
        False: it was (a retried batch rewrote the same object)."""

    def dates(self) -> list[DateStats]: ...

    def minutes(self, since_minute: int) -> list[MinuteCount]: ...

    def origins(self) -> dict[str, dict[str, int]]:
        """Every result ever counted, by origin: done, failed, and the retries before them."""

    def samples(self, limit: int) -> list[Sample]:
        """The newest objects' samples, newest first."""
