"""AWS calls as adapters make them: botocore's errors as Pacer's, one conflict retry, one batch writer.

Every adapter wraps its boto3 client in `domain_client`, so no `ClientError`
leaves an adapter: a failed condition is a StaleWrite (with DynamoDB's
cancellation reasons, for the callers that read them), contention that a retry
may cure is a Contended, and anything else is a DependencyUnavailable naming
the call.
"""
from __future__ import annotations

import functools
import random
import time
from typing import Any, Callable, Iterator, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.codec import to_item
from chalicelib.core.errors import Contended, DependencyUnavailable, StaleWrite

MAX_TRANSACT_ITEMS = 100  # DynamoDB's limit on one TransactWriteItems
BATCH_WRITE_ITEMS = 25  # DynamoDB's limit on one BatchWriteItem
MAX_ATTEMPTS = 8
_RETRYABLE = ("TransactionConflictException", "ProvisionedThroughputExceededException", "ThrottlingException",
              "RequestLimitExceeded", "InternalServerError")
T = TypeVar("T")


def _codes(exc: ClientError) -> list[str]:
    return [reason.get("Code") or "None" for reason in exc.response.get("CancellationReasons", [])]


def domain_error(operation: str, exc: ClientError) -> DependencyUnavailable | StaleWrite:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "") or str(exc)
    codes = _codes(exc)
    if code == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in codes:
        return StaleWrite(message or "condition failed", codes, exc.response.get("Item"))
    if code in _RETRYABLE or "TransactionConflict" in codes or "ThrottlingError" in codes:
        return Contended(f"{operation}: {code}: {message}", codes)
    return DependencyUnavailable(f"{operation}: {code}: {message}")


class DomainClient:
    """A boto3 client whose calls raise Pacer's errors instead of botocore's."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except ClientError as exc:
                raise domain_error(name, exc) from exc
            except BotoCoreError as exc:
                raise DependencyUnavailable(f"{name}: {exc}") from exc

        return call


def domain_client(client: Any) -> DomainClient:
    return client if isinstance(client, DomainClient) else DomainClient(client)


def backoff(attempt: int) -> None:
    """Full jitter, from 10 ms, doubling, capped at half a second."""
    time.sleep(min(0.5, 0.01 * 2**attempt) * random.random())


def call_with_conflict_retry(operation: Callable[[], T], attempts: int = MAX_ATTEMPTS) -> T:
    """Run a DynamoDB write, retrying contention (transaction conflicts, throttling) with backoff.

    A failed condition (StaleWrite) is the caller's to handle, never retried here.
    """
    for attempt in range(attempts):
        try:
            return operation()
        except Contended:
            if attempt == attempts - 1:
                raise
            backoff(attempt)
    raise AssertionError("unreachable")


def batch_write(client: DomainClient, table: str, requests: list[dict[str, Any]]) -> None:
    """BatchWriteItem in pages of 25, sending unprocessed items again with backoff until all are written."""
    for offset in range(0, len(requests), BATCH_WRITE_ITEMS):
        pending: dict[str, Any] | None = {table: requests[offset : offset + BATCH_WRITE_ITEMS]}
        attempt = 0
        while pending:
            if attempt == MAX_ATTEMPTS:
                raise Contended(f"batch_write_item: {len(pending[table])} items left unprocessed on {table}")
            if attempt:
                backoff(attempt)
            pending = call_with_conflict_retry(lambda: client.batch_write_item(RequestItems=pending)).get(
                "UnprocessedItems") or None
            attempt += 1


def batch_put(client: DomainClient, table: str, items: list[dict[str, Any]]) -> None:
    """Put items (already encoded) in batches."""
    batch_write(client, table, [{"PutRequest": {"Item": item}} for item in items])


def batch_delete(client: DomainClient, table: str, keys: list[dict[str, Any]]) -> None:
    """Delete items by their (plain) keys in batches."""
    batch_write(client, table, [{"DeleteRequest": {"Key": to_item(key)}} for key in keys])


def query_pages(client: DomainClient, **request: Any) -> Iterator[list[dict[str, Any]]]:
    """A Query's pages of items (raw attribute values), one at a time, for as long as the caller asks."""
    page: dict[str, Any] = {}
    while True:
        response = client.query(**request, **page)
        yield response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}


def query_all(client: DomainClient, limit: int | None = None, **request: Any) -> list[dict[str, Any]]:
    """Every item a Query returns, page after page (raw attribute values), up to `limit` if given."""
    items: list[dict[str, Any]] = []
    if limit is not None:
        request["Limit"] = limit
    for page in query_pages(client, **request):
        items += page
        if limit is not None and len(items) >= limit:
            return items[:limit]
    return items
