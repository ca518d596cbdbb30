"""The boto3 clients adapters are given. Typed as Any: boto3's request shapes are checked by moto and the
contract suite against a live endpoint, not by stubs Lambda does not ship."""
from __future__ import annotations

from typing import Any

DynamoDBClient = Any
SQSClient = Any
