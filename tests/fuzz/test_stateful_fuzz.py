"""Schemathesis follows the document's links: sequences of calls where each takes a value from an earlier answer
(POST /api/jobs, then GET, DELETE or retry that job; POST /api/compute, then GET its request; POST /api/run, then
PUT /api/run and POST /api/stop), so the calls that need a real id reach the states behind it, not only 404.

The same fuzz stack, the same checks and the admin token as tests/fuzz/test_openapi_fuzz.py; only the links the
document declares (no inferred ones: the links are the contract this holds). Bounded: SCENARIOS scenarios of
at most MAX_STEPS calls each, about 45 s on the fuzz stack (60 took 50 s on 2 shared cores). Seeded, but which
values a step takes from an earlier answer is schemathesis' own (unseeded) pick, so the calls vary a little.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
import schemathesis.specs.openapi.stateful as openapi_stateful
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition

from tests.fuzz.conftest import ADMIN
from tests.fuzz.test_openapi_fuzz import CHECKS

pytestmark = pytest.mark.fuzz

SCENARIOS = 50
MAX_STEPS = 6
MIN_LINKED_CALLS = 25  # calls made with a value a link took from an earlier answer (61-105 seen at 50-60 scenarios)


def scenarios_may_start_at_any_post_and_any_listing(operation: Any, node: Any, produced_anywhere: Any) -> bool:
    """Schemathesis's own guess of where a scenario may start, without its dependency analysis: that takes the
    X-Caller-ID header for the id of an "XCaller" resource no operation makes, so it never started a scenario at
    POST /api/jobs or POST /api/compute, the very calls whose links lead on (a caller is any name, made by nobody).
    """
    return operation.method == "post" or (operation.method == "get" and not operation.path_parameters)


def test_linked_sequences_of_calls_get_no_5xx_and_only_documented_answers(fuzz_stack, monkeypatch):
    base = fuzz_stack.api_url
    config = schemathesis.Config.from_dict({
        "headers": ADMIN,
        "phases": {"stateful": {"max-steps": MAX_STEPS, "inference": {"algorithms": []}}},
    })
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json", config=config)
    monkeypatch.setattr(openapi_stateful, "is_likely_root_transition", scenarios_may_start_at_any_post_and_any_listing)
    calls: Counter[str] = Counter()
    linked: Counter[str] = Counter()
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base, "headers": ADMIN, "timeout": 30}

        def step(self, input: Any) -> Any:
            if input.transition is not None and input.is_applied:
                linked[input.case.operation.label] += 1
            return super().step(input)

        def after_call(self, response: Any, case: Any) -> None:
            calls[case.operation.label] += 1
            statuses[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except Exception as exc:
                failures.append(f"{case.operation.label} -> {response.status_code}: {exc}")
                raise

        def teardown(self) -> None:
            requests.post(f"{base}/api/stop", timeout=10)  # no run a scenario started paces jobs behind the next

    try:
        Machine.run(settings=settings(max_examples=SCENARIOS, stateful_step_count=MAX_STEPS, derandomize=True,
                                      database=None, deadline=None, suppress_health_check=list(HealthCheck),
                                      phases=[Phase.generate]))
    except FlakyStrategyDefinition:
        # Hypothesis walked a prefix of calls it had made before and the live stack answered differently (a job
        # a worker admitted meanwhile cannot be cancelled; a repeated Idempotency-Key answers 200, not 201), so
        # other rules were open: the run ends there. That says nothing of the API: every call made so far was
        # checked, and a failed check is recorded before hypothesis can replay (and perhaps lose) it.
        print("\nstateful: ended early at a replayed prefix whose answers had changed")
    finally:
        print(f"\nstateful: {sum(calls.values())} calls across {len(calls)} operations, "
              f"{sum(linked.values())} through links {dict(sorted(linked.items()))}; "
              f"statuses {dict(sorted(statuses.items()))}")
    assert not failures, failures
    assert sum(linked.values()) >= MIN_LINKED_CALLS
