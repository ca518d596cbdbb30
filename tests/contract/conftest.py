"""The moto side of the contract tests: an in-process AWS with Pacer's tables and queues provisioned."""
import pytest
from moto import mock_aws

from infra.provision import provision


@pytest.fixture
def moto_aws(monkeypatch):
    """Use as `request.getfixturevalue("moto_aws")` in a fixture's moto branch; boto3 clients made after it
    talk to moto."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        provision()
        yield
