"""What the fuzzer (tests/fuzz) found answering 5xx or off its document, each pinned by a test that fails without
its fix. Bad input gets a 4xx naming the field, and nothing is stored. (What needs the live server is in
tests/fuzz/test_fuzz_findings.py.)"""
import json

import pytest

from tests.fakes import MemoryContainer

ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}


@pytest.fixture
def c():
    return MemoryContainer()


@pytest.mark.parametrize("weight", [5e-324, 1e-131, 0.0009])
def test_a_weight_too_small_to_store_gets_400_naming_it_and_stores_nothing(client, c, weight):
    # Found as PUT /api/callers/0 {"weight": 5e-324}: 500, DynamoDB's numbers underflowed.
    response = client.http.put("/api/callers/alice", headers=ADMIN, body=json.dumps({"weight": weight}))
    assert response.status_code == 400 and response.json_body["fields"][0]["field"] == "weight"
    assert c.compute.counts == {} and c.typed_jobs.counts == {}


def test_the_lightest_documented_weight_is_accepted(client, c):
    response = client.http.put("/api/callers/alice", headers=ADMIN, body=json.dumps({"weight": 0.001}))
    assert response.status_code == 200 and response.json_body == {"caller": "alice", "weight": 0.001}
