"""Schemathesis holds the live API to its own OpenAPI document (GET /api/openapi.json).

The API, the runtime's worker and the emulator run as processes (a stack of
tests/fuzz's own, so nothing the fuzzer sets, a paused dispatcher or a
caller's weight, reaches another test). Every operation is fuzzed with data
that fits the document and data that does not, admin ones with the token, and
each answer must be no 5xx, a documented status, the documented content type
and a body that fits the documented schema. Seeded: CI sees the same cases.
"""
from __future__ import annotations

from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import OPERATIONS, app
from chalicelib.apidoc.document import openapi_document
from chalicelib.settings import Settings
from tests.fuzz.conftest import ADMIN

pytestmark = pytest.mark.fuzz

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 80  # per operation (where a space is smaller, fewer); see test_the_fuzzer_ran_at_least_1000_cases
MIN_CASES = 1000

CASES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def live_schema(fuzz_stack):
    """The document as the live API serves it (its limits are the fuzz stack's settings)."""
    config = schemathesis.Config.from_dict({"headers": ADMIN})
    return schemathesis.openapi.from_url(f"{fuzz_stack.api_url}/api/openapi.json", config=config)


def operations_in_the_code() -> list[tuple[str, str]]:
    """Every (method, path) the document has, known before any stack runs: it is built from the code."""
    document = openapi_document(app.routes, OPERATIONS, Settings())
    return [(method.upper(), path) for path, methods in document["paths"].items() for method in methods]


@pytest.mark.parametrize("method, path", operations_in_the_code(), ids=lambda value: value)
def test_every_answer_is_documented_and_no_input_gets_a_5xx(method, path, live_schema, fuzz_stack):
    operation = live_schema[path][method]
    label = f"{method} {path}"
    modes = [GenerationMode.POSITIVE]
    if operation.body or any(True for _ in operation.iter_parameters()):
        modes.append(GenerationMode.NEGATIVE)  # an operation that takes nothing has nothing to get wrong
    base = fuzz_stack.api_url

    @given(case=st.one_of([operation.as_strategy(generation_mode=mode) for mode in modes]))
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def answers_as_documented(case):
        if label in ("PUT /api/run", "POST /api/stop"):
            # Something to change or stop: a slow run, so the 200 answers are reached too, not only 409.
            requests.post(f"{base}/api/run", json={"x": 1, "y": 10080}, timeout=10)
        try:
            case.call_and_validate(base_url=base, headers=ADMIN, checks=CHECKS, timeout=30)
        finally:
            CASES[label] += 1
            if label in ("POST /api/run", "PUT /api/run", "POST /api/stop"):
                requests.post(f"{base}/api/stop", timeout=10)  # no run goes on pacing jobs behind the next case

    answers_as_documented()


def test_the_fuzzer_ran_at_least_1000_cases_across_every_operation(fuzz_stack):
    operations = requests.get(f"{fuzz_stack.api_url}/api/openapi.json", timeout=10).json()["paths"]
    expected = {f"{method.upper()} {path}" for path, methods in operations.items() for method in methods}
    print(f"\nfuzz cases per operation: {dict(sorted(CASES.items()))}; total {sum(CASES.values())}")
    assert set(CASES) == expected, f"operations not fuzzed: {expected - set(CASES)}"
    assert sum(CASES.values()) >= MIN_CASES
