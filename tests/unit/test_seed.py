"""`make seed`'s plan and command line (infra/seed.py), without a stack; tests/integration/test_seed.py runs it."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from chalicelib.typed.executors import REGISTRY
from infra.seed import BATCHES, TYPES, main, plan_numbers, plan_typed

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_the_planned_typed_jobs_are_every_type_and_priority_valid_bodies_with_some_scheduled_and_some_failing():
    jobs = plan_typed(random.Random(3), 50, scheduled=5, failing=3, now=NOW)
    assert len(jobs) == 50
    assert {job.body["type"] for job in jobs} == set(TYPES) == set(REGISTRY.names)
    assert {job.body["priority"] for job in jobs} == {1, 2, 3, 4, 5}
    scheduled = [job for job in jobs if "scheduled_for" in job.body]
    assert len(scheduled) == 5 and all(job.body["scheduled_for"] > "2026-11-23T09:59" for job in scheduled)
    failing = [job for job in jobs if job.fails]
    assert len(failing) == 3 and not any("scheduled_for" in job.body for job in failing)
    assert all("#fail" in str(job.body["payload"]) for job in failing)
    assert not any("#fail" in str(job.body["payload"]) for job in jobs if not job.fails)
    adapter = REGISTRY.new_job_adapter()
    for job in jobs:  # what the API validates each body with
        adapter.validate_python(job.body)


def test_the_planned_numbers_give_each_caller_its_batch_and_share_some_numbers():
    batches = plan_numbers(random.Random(3))
    assert {caller: len(numbers) for caller, numbers in batches.items()} == BATCHES
    assert all(n.isdigit() and 6 <= len(n) <= 18 for numbers in batches.values() for n in numbers)
    assert batches["carol"][0] in batches["alice"] and batches["bob"][0] in batches["alice"]


def test_the_same_seed_plans_the_same_contents():
    first = plan_typed(random.Random(7), 20, 2, 2, NOW)
    second = plan_typed(random.Random(7), 20, 2, 2, NOW)
    assert [job.body for job in first] == [job.body for job in second]


@pytest.mark.parametrize("argv, says", [
    (["--api", "localhost:8000"], "is not an http(s) URL"),
    (["--typed", "0"], "0 is not between 1 and 1000"),
    (["--typed", "ten"], "'ten' is not a whole number"),
    (["--typed", "4", "--scheduled", "3", "--failing", "2"], "more than --typed 4"),
])
def test_bad_arguments_stop_with_usage_status_2_and_say_what_is_wrong(argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_an_api_that_is_not_there_is_named_with_exit_status_1(capsys):
    from infra.emulator import free_port
    assert main(["--api", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "could not reach the API" in capsys.readouterr().err
