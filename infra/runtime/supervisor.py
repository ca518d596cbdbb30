"""The runtime's main process: it starts a worker per unit of SQS concurrency and one scheduler, and keeps them up.

    python -m infra.runtime --project-dir DIR --stage STAGE --workers N [--function-timeout SECONDS]

Each child is its own OS process, so a crash or a `kill -9` of one is a real
drill. A child that exits is started again after a short pause that grows
while it keeps crashing quickly. SIGINT or SIGTERM stops every child with
SIGTERM (a worker finishes the batch it holds), then SIGKILL after a grace
period, and the supervisor exits 0.

stdout carries one line, written once every child is serving:

    runtime ready: 2 worker(s) for pacer-jobs, 2 worker(s) for pacer-ticks, 1 scheduler for 1 schedule(s)

stderr carries the logs, each child's lines prefixed with its role and pid.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.process import child_process_kwargs, stop_together
from infra.runtime.child import READY_LINE
from infra.runtime.project import Project, load_project
from infra.runtime.schedules import parse_schedule
from infra.signals import StopSignals

log = logging.getLogger("infra.runtime.supervisor")
child_output = logging.getLogger("infra.runtime.children")

CONTROL_POLL_INTERVAL = 1.0  # how soon a concurrency change is followed
# Scaling up starts workers a few at a time: at most this many of a source's workers are starting (started,
# not yet serving) at once. Starting 98 Python processes in one go starved this loop for about 18 s, so a
# step back down, written 2 s later, waited until they had all started; a change must bite within 5 s.
MAX_STARTING_PER_SOURCE = 4
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 5.0
# A child that dies sooner than this after starting counts as crashing quickly.
QUICK_CRASH_SECONDS = 10.0
STOP_GRACE_SECONDS = 10.0
LOOP_INTERVAL = 0.1
WAITING_REPORT_INTERVAL = 15.0
# The directory holding the `infra` package, so children import this code
# wherever the supervisor was started from.
CODE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class ChildSpec:
    role: str  # e.g. "worker pacer-jobs#1" or "scheduler"
    argv: list[str]
    source: str | None = None  # the SQS event source a worker serves; None for the scheduler


@dataclass
class Child:
    """One slot the supervisor keeps filled; its process changes with each restart."""

    spec: ChildSpec
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    quick_crashes: int = 0
    ever_ready: bool = False
    retiring: bool = False  # asked to stop for a scale-down: not restarted
    output_pump: threading.Thread | None = field(default=None, repr=False)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def child_specs(project: Project, workers: int, function_timeout: float | None,
                worker_start_hook: str | None = None, checkpoint_table: str | None = None) -> list[ChildSpec]:
    common = ["--project-dir", project.project_dir, "--stage", project.stage]
    if function_timeout is not None:
        common += ["--function-timeout", str(function_timeout)]
    worker_common = common + (["--start-hook", worker_start_hook] if worker_start_hook else [])
    specs = []
    for source in project.sqs_sources():
        for index in range(1, worker_count(source.maximum_concurrency, workers) + 1):
            specs.append(worker_spec(source, index, worker_common))
    for source in project.dynamodb_sources():
        # One reader per stream: it hands each shard's batches over in order (see docs/RUNTIME.md).
        specs.append(ChildSpec(role=f"stream {stream_label(source)}", argv=[
            sys.executable, "-m", "infra.runtime.streams", *common, "--source", source.name,
            *(["--checkpoint-table", checkpoint_table] if checkpoint_table else [])]))
    if project.schedule_sources():
        specs.append(ChildSpec(role="scheduler", argv=[sys.executable, "-m", "infra.runtime.scheduler", *common]))
    return specs


def worker_spec(source, index: int, common: list[str]) -> ChildSpec:
    return ChildSpec(
        role=f"worker {queue_label(source)}#{index}",
        argv=[sys.executable, "-m", "infra.runtime.worker", *common, "--source", source.name],
        source=source.name,
    )


def worker_count(maximum_concurrency: int | None, workers: int) -> int:
    return min(workers, maximum_concurrency or workers)


def queue_label(source) -> str:
    return source.queue or source.queue_arn.rsplit(":", 1)[-1]


def stream_label(source) -> str:
    """A stream source's table: `arn:…:table/NAME/stream/LABEL` -> NAME."""
    from infra.runtime.stream_batch import table_of

    return table_of(source.stream_arn)


def readiness_line(project: Project, workers: int) -> str:
    parts = [
        f"{worker_count(source.maximum_concurrency, workers)} worker(s) for {queue_label(source)}"
        for source in project.sqs_sources()
    ]
    parts += [f"1 stream reader for {stream_label(source)}" for source in project.dynamodb_sources()]
    if schedules := project.schedule_sources():
        parts.append(f"1 scheduler for {len(schedules)} schedule(s)")
    return "runtime ready: " + (", ".join(parts) or "no SQS, stream or schedule event sources to run")


class Supervisor:
    def __init__(self, specs: list[ChildSpec], ready_message: str, child_env: dict[str, str],
                 control: "ConcurrencyControl | None" = None, stopping: StopSignals | None = None):
        self.children = [Child(spec) for spec in specs]
        self.ready_message = ready_message
        self.child_env = child_env
        self.control = control
        self.desired: dict[str, int] = {}  # per SQS source, as last read from the control table
        # SIGTERM and SIGINT set it (main() installs it); the loop below does the stopping.
        self.stopping = stopping or StopSignals()
        self.announced = False
        self.next_waiting_report = time.monotonic() + WAITING_REPORT_INTERVAL
        self.next_control_poll = 0.0

    def run(self) -> None:
        for child in self.children:
            self._start(child)
        while not self.stopping.is_set():
            self._restart_exited_children()
            self._follow_desired_concurrency()
            self._start_workers_toward_desired()
            self._announce_once_all_ready()
            self.stopping.wait(LOOP_INTERVAL)
        log.info("%s received", self.stopping.reason)
        self._stop_children()

    def _follow_desired_concurrency(self) -> None:
        if self.control is None or time.monotonic() < self.next_control_poll:
            return
        self.next_control_poll = time.monotonic() + CONTROL_POLL_INTERVAL
        for source, desired in self.control.desired().items():
            self.scale(source, desired)

    def scale(self, source: str, desired: int) -> None:
        """Aim for `desired` workers serving `source`: retire the newest above it at once, and start the
        missing ones a few at a time (`_start_workers_toward_desired`, on every turn of the loop), so that
        the next change is read, and followed, while they start.

        A retired worker gets SIGTERM and finishes the batch it holds, so
        scaling down loses no message.
        """
        serving = self._serving(source)
        if not serving or desired < 1:
            return
        if self.desired.get(source) != desired:
            log.info("scaling %s from %d to %d worker(s)", source, len(serving), desired)
        self.desired[source] = desired
        for child in serving[desired:]:
            child.retiring = True
            if child.is_running():
                child.process.send_signal(signal.SIGTERM)

    def _start_workers_toward_desired(self) -> None:
        for source, desired in self.desired.items():
            serving = self._serving(source)
            if not serving:
                continue
            starting = sum(1 for child in serving if child.is_running() and not child.ever_ready)
            template = serving[0].spec
            label = template.role.rsplit("#", 1)[0]
            for index in range(len(serving) + 1, desired + 1):
                if starting >= MAX_STARTING_PER_SOURCE:
                    break
                child = Child(ChildSpec(role=f"{label}#{index}", argv=template.argv, source=source))
                self.children.append(child)
                self._start(child)
                starting += 1

    def _serving(self, source: str) -> list[Child]:
        return [child for child in self.children if child.spec.source == source and not child.retiring]

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.child_env,
            **child_process_kwargs(),
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.output_pump = threading.Thread(
            target=self._pump_output, args=(child, child.process), name=f"output {child.spec.role}", daemon=True
        )
        child.output_pump.start()
        log.info("started %s as pid %d", child.spec.role, child.process.pid)

    def _pump_output(self, child: Child, process: subprocess.Popen) -> None:
        prefix = f"[{child.spec.role} pid={process.pid}]"
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line == READY_LINE:
                child.ever_ready = True
            else:
                child_output.info("%s %s", prefix, line)

    def _restart_exited_children(self) -> None:
        now = time.monotonic()
        for child in list(self.children):
            if child.retiring:
                if not child.is_running():
                    log.info("%s retired", child.spec.role)
                    self.children.remove(child)
                continue
            if child.restart_at is None and not child.is_running():
                child.restart_at = now + self._restart_delay(child, now)
            elif child.restart_at is not None and now >= child.restart_at:
                self._start(child)

    def _restart_delay(self, child: Child, now: float) -> float:
        lived = now - child.started_at
        child.quick_crashes = child.quick_crashes + 1 if lived < QUICK_CRASH_SECONDS else 0
        delay = min(MAX_RESTART_DELAY, FIRST_RESTART_DELAY * 2 ** max(0, child.quick_crashes - 1))
        log.warning(
            "%s (pid %d) exited with %s after %.1fs; restarting in %.1fs",
            child.spec.role, child.process.pid, describe_exit(child.process.returncode), lived, delay,
        )
        return delay

    def _announce_once_all_ready(self) -> None:
        if self.announced:
            return
        waiting = [child.spec.role for child in self.children if not child.ever_ready]
        if not waiting:
            print(self.ready_message, flush=True)
            self.announced = True
        elif time.monotonic() >= self.next_waiting_report:
            # Whoever waits for the readiness line deserves to know why it is late.
            log.warning("still waiting for %s to start serving", ", ".join(waiting))
            self.next_waiting_report = time.monotonic() + WAITING_REPORT_INTERVAL

    def _stop_children(self) -> None:
        running = [child for child in self.children if child.is_running()]
        log.info("stopping %d child process(es)", len(running))

        def kill(role: str, process: subprocess.Popen) -> None:
            log.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", role, process.pid, STOP_GRACE_SECONDS)
            process.kill()

        stop_together([(child.spec.role, child.process) for child in running], STOP_GRACE_SECONDS, kill)
        for child in self.children:
            if child.output_pump is not None:
                child.output_pump.join(timeout=1.0)
        log.info("all children stopped")


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"code {returncode}"


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # so each child's lines reach the log as they are written
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [CODE_ROOT, env.get("PYTHONPATH")]))
    return env


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.runtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project-dir", default=".", help="the Chalice project (holds app.py and .chalice/)")
    parser.add_argument("--stage", default="dev", help="the chalice stage whose configuration applies")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes per SQS event source, capped by its maximum_concurrency")
    parser.add_argument("--function-timeout", type=float, default=None,
                        help="seconds; defaults to each function's lambda_timeout in .chalice/config.json, else 60")
    parser.add_argument("--control-table", default=os.environ.get("PACER_RUNTIME_CONTROL_TABLE"),
                        help="a DynamoDB table (pk, sk) holding live concurrency per SQS source; see docs/RUNTIME.md")
    parser.add_argument("--checkpoint-table", default=os.environ.get("PACER_RUNTIME_CHECKPOINT_TABLE"),
                        help="a DynamoDB table (pk, sk) for DynamoDB stream checkpoints; defaults to --control-table; "
                             "without either, checkpoints live in memory")
    parser.add_argument("--worker-start-hook", default=os.environ.get("PACER_RUNTIME_WORKER_START_HOOK"),
                        help="MODULE.FUNCTION of the app, called with the source's name in each worker process "
                             "once it can poll, before it says it is ready; see docs/RUNTIME.md")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    logging.basicConfig(
        level=os.environ.get("PACER_RUNTIME_LOG_LEVEL", "INFO").upper(),
        format=f"[supervisor pid={os.getpid()}] %(asctime)s %(levelname)s %(message)s",
    )
    _configure_child_output()
    # Taken before the app is loaded: loading writes the stage's variables
    # into os.environ, and each child applies its own function's variables.
    env = child_environment()
    project = load_project(args.project_dir, args.stage)
    for source in project.unsupported_sources():
        log.warning("ignoring event source %s (%s): this runtime runs SQS, DynamoDB stream and schedule sources only",
                    source.name, type(source).__name__)
    for source in project.schedule_sources():
        parse_schedule(source.schedule_expression)  # a bad expression stops us here, not in a restart loop
    control = ConcurrencyControl(args.control_table) if args.control_table else None
    # The handlers only set a flag: one that did more (Event.set) could deadlock on a lock the main thread holds.
    stopping = StopSignals().install()
    checkpoint_table = args.checkpoint_table or args.control_table
    supervisor = Supervisor(child_specs(project, args.workers, args.function_timeout, args.worker_start_hook,
                                        checkpoint_table),
                            readiness_line(project, args.workers), env, control, stopping)
    supervisor.run()


def _configure_child_output() -> None:
    # Children's lines already carry their own timestamp and level.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    child_output.addHandler(handler)
    child_output.propagate = False
    child_output.setLevel(logging.INFO)


class ConcurrencyControl:
    """Desired worker counts per SQS source, read live from a DynamoDB table.

    The local stand-in for an event source mapping's MaximumConcurrency: the
    item `pk = "RUNTIME#concurrency"`, `sk = <event source name>` with a
    number attribute `maximum_concurrency`. Absent items change nothing.
    """

    PARTITION = "RUNTIME#concurrency"

    def __init__(self, table: str):
        import boto3

        self.table = table
        self.dynamodb = boto3.client("dynamodb")

    def desired(self) -> dict[str, int]:
        try:
            items = self.dynamodb.query(
                TableName=self.table, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": self.PARTITION}},
            )["Items"]
        except Exception as exc:  # the emulator restarting must not stop the supervisor
            log.warning("could not read concurrency from %s: %s", self.table, exc)
            return {}
        return {item["sk"]["S"]: int(item["maximum_concurrency"]["N"]) for item in items
                if "maximum_concurrency" in item}
