"""The datalake's objects on S3."""
from __future__ import annotations

from typing import Any, Iterator

from chalicelib.aws.retry import domain_client
from chalicelib.datalake.store import ObjectStore


class S3ObjectStore(ObjectStore):
    def __init__(self, client: Any, bucket: str):
        self._raw = client
        self._s3 = domain_client(client)
        self._bucket = bucket

    def put(self, key: str, body: bytes, metadata: dict[str, str]) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                            Metadata=metadata)

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": 1000}
        if start_after:
            request["StartAfter"] = start_after
        while True:
            page = self._s3.list_objects_v2(**request)
            for found in page.get("Contents", []):
                yield str(found["Key"]), int(found["Size"])
            if not page.get("IsTruncated"):
                return
            request.pop("StartAfter", None)
            request["ContinuationToken"] = page["NextContinuationToken"]

    def lines(self, key: str) -> Iterator[bytes]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        try:
            yield from body.iter_lines(keepends=True)
        finally:
            body.close()

    def url(self, key: str, expires_s: int) -> str:
        return str(self._raw.generate_presigned_url("get_object", Params={"Bucket": self._bucket, "Key": key},
                                                    ExpiresIn=expires_s))
