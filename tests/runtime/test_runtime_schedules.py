"""Schedules: expressions as EventBridge reads them, and a scheduler process that fires them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from chalice.app import Cron, Rate

from infra.runtime.schedules import CronSchedule, RateSchedule, ScheduleClock, parse_schedule
from tests.runtime.runtime_harness import eventually

pytestmark = pytest.mark.runtime

MONDAY_0900 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_a_rate_schedule_fires_repeatedly_with_distinct_event_ids(runtime):
    # PACER_RUNTIME_SCHEDULE_SCALE=0.01 makes rate(1 minute) fire every 0.6 s.
    def ticks():
        return [record["event"] for record in runtime.records("schedule") if record["name"] == "tick"]

    events = eventually(lambda: len(ticks()) >= 3 and ticks(), 15, runtime.explain("tick fired fewer than 3 times"))

    assert len({event["id"] for event in events}) == len(events)
    for event in events:
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"
        assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/runtime-fixture-local-tick"]
        assert event["detail"] == {}
        assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "expression, period",
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
        (Rate(10, unit=Rate.MINUTES), timedelta(minutes=10)),
        (Rate(1, unit=Rate.HOURS), timedelta(hours=1)),
    ],
)
def test_rate_expressions_become_their_period(expression, period):
    assert parse_schedule(expression) == RateSchedule(period)


@pytest.mark.parametrize(
    "expression, next_fire",
    [
        ("cron(0 12 * * ? *)", datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 23, 9, 15, tzinfo=timezone.utc)),
        # EventBridge numbers weekdays from Sunday = 1, so 3 is Tuesday.
        ("cron(30 8 ? * 3 *)", datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc)),
        ("cron(0 10 ? * MON-FRI *)", datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)),
        # 6L is the last Friday of the month.
        ("cron(0 9 ? * 6L *)", datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)),
        (Cron(0, 18, "?", "*", "SUN", "*"), datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc)),
    ],
)
def test_cron_expressions_fire_at_the_next_matching_utc_time(expression, next_fire):
    assert parse_schedule(expression).next_after(MONDAY_0900) == next_fire


def test_rates_fire_at_startup_and_crons_only_at_their_times():
    assert parse_schedule("rate(5 minutes)").fires_at_startup
    assert not parse_schedule("cron(0 12 * * ? *)").fires_at_startup


@pytest.mark.parametrize(
    "expression", ["rate(0 minutes)", "rate(5 seconds)", "cron(0 12 * * ?)", "cron(0 12 * * ? 2030)", "every day"]
)
def test_unsupported_expressions_are_refused_up_front(expression):
    with pytest.raises(ValueError):
        parse_schedule(expression)


def test_the_schedule_clock_runs_faster_by_the_inverse_of_its_scale():
    real_now = [100.0]
    clock = ScheduleClock(scale=0.01, real_seconds=lambda: real_now[0])
    start = clock.now()

    real_now[0] += 0.6

    assert clock.now() - start == timedelta(minutes=1)
    assert clock.real_seconds_until(start + timedelta(minutes=2)) == pytest.approx(0.6)


def test_cron_schedule_keeps_the_expression_croniter_reads():
    assert parse_schedule("cron(5 4 ? * 1 *)") == CronSchedule("5 4 * * 0")
