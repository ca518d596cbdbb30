"""Every `@app.schedule` of a Chalice app, fired from one process.

    python -m infra.runtime.scheduler --project-dir DIR --stage STAGE [--function-timeout SECONDS]

Schedules fire one at a time. A handler that raises is logged and its
schedule goes on; one that runs past its function timeout ends this process,
as Lambda ends the sandbox, and the supervisor starts a new one. A handler
that overruns its next firing skips it instead of firing twice in a row.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import boto3

from infra.runtime.child import announce_ready, child_argument_parser, configure_logging, stop_requested_by_signals
from infra.runtime.invoke import FunctionTimedOut, end_sandbox_after_timeout, invoke
from infra.runtime.project import Project, load_project, resolve_handler
from infra.runtime.schedules import Schedule, ScheduleClock, parse_schedule, schedule_scale, scheduled_event
from infra.signals import StopSignals

log = logging.getLogger("infra.runtime.scheduler")


@dataclass
class ScheduledFunction:
    name: str
    schedule: Schedule
    handler: Callable[[Any, Any], Any]
    timeout_seconds: float
    next_fire: datetime


class Scheduler:
    def __init__(self, project: Project, clock: ScheduleClock, stop: StopSignals, region: str,
                 timeout_override: float | None = None):
        self.project = project
        self.clock = clock
        self.stop = stop
        self.region = region
        now = clock.now()
        self.functions = [
            ScheduledFunction(
                name=source.name,
                schedule=(schedule := parse_schedule(source.schedule_expression)),
                handler=resolve_handler(source.handler_string),
                timeout_seconds=project.function_timeout(source.name, timeout_override),
                next_fire=now if schedule.fires_at_startup else schedule.next_after(now),
            )
            for source in project.schedule_sources()
        ]

    def run(self) -> None:
        while self.functions and not self.stop.is_set():
            due = min(self.functions, key=lambda function: function.next_fire)
            if self.stop.wait(self.clock.real_seconds_until(due.next_fire)):
                break
            self.fire(due)

    def fire(self, function: ScheduledFunction) -> None:
        fired_at = function.next_fire
        rule_name = self.project.function_name(function.name)
        context = self.project.lambda_context(function.name, function.timeout_seconds, self.region)
        event = scheduled_event(rule_name, self.region, fired_at)
        invocation = invoke(function.handler, event, context, function.timeout_seconds)
        if invocation.timed_out:
            log.error("%s timed out after %ss (request %s)", rule_name, function.timeout_seconds,
                      context.aws_request_id)
            raise FunctionTimedOut(rule_name)
        if invocation.error:
            log.error("%s failed (request %s)\n%s", rule_name, context.aws_request_id, invocation.error.rstrip())
        function.next_fire = self._next_fire_after(function, fired_at)

    def _next_fire_after(self, function: ScheduledFunction, fired_at: datetime) -> datetime:
        upcoming = function.schedule.next_after(fired_at)
        now = self.clock.now()
        if upcoming <= now:
            log.warning("%s overran its next firing; skipping to the one after", function.name)
            upcoming = function.schedule.next_after(now)
        return upcoming


def main(argv: list[str] | None = None) -> None:
    args = child_argument_parser(__doc__).parse_args(argv)
    configure_logging()
    stop = stop_requested_by_signals()
    project = load_project(args.project_dir, args.stage)
    region = boto3.session.Session().region_name or "us-east-1"
    scheduler = Scheduler(project, ScheduleClock(schedule_scale(os.environ)), stop, region, args.function_timeout)
    for function in scheduler.functions:
        log.info("%s: %s", project.function_name(function.name), function.schedule)
    announce_ready()
    try:
        scheduler.run()
    except FunctionTimedOut:
        end_sandbox_after_timeout()
    log.info("stopped (%s)", stop.reason)


if __name__ == "__main__":
    main(sys.argv[1:])
