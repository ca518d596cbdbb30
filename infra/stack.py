"""The whole local system as OS processes: emulator, provisioning, API, runtime, page, reference bots.

`make up` runs it in the foreground (`python -m infra.stack`); the
integration and browser tests start one on free ports.

The reference bots (`python -m infra.bot`) follow the desired bot count in
the fleet's store (`PUT /api/bots/count`), as the runtime's workers follow
the desired concurrency: the stack writes `--bots` there as it starts, then
reads it every second and starts or stops bot processes to match.
"""
from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from chalicelib.fleet.dynamo import DynamoFleetStore
from chalicelib.resources import STATE_TABLE
from infra.emulator import Emulator, PortInUse, ensure_port_free, start_emulator, wait_for_http
from infra.process import child_process_kwargs, stop_together
from infra.signals import StopRequested, StopSignals

ROOT = Path(__file__).resolve().parent.parent
# Longer than the runtime's own grace for a worker's batch (infra/runtime/supervisor.py STOP_GRACE_SECONDS).
STOP_GRACE_SECONDS = 15.0
BOT_COUNT_POLL_S = 1.0  # how soon a change of the desired bot count is followed
EMULATOR_DEFAULTS = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, needle: str, timeout: float, cancelled: Callable[[], bool] = lambda: False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n" + "".join(self.lines[-30:]))
            if cancelled():
                raise StopRequested()
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not print {needle!r} within {timeout}s:\n" + "".join(self.lines[-30:]))


class Stack:
    def __init__(self, api_port: int, frontend_port: int, workers: int = 2, log: IO[str] | None = None,
                 env: dict[str, str] | None = None, stop: StopSignals | None = None, bots: int = 0):
        self.stop_signals = stop  # set by SIGTERM or SIGINT: starting gives up at the next wait
        self.api_port = api_port
        self.frontend_port = frontend_port
        self.workers = workers
        self.bots = bots  # reference bots (infra/bot.py) to start with; then the fleet's desired bot count rules
        self.log = log or sys.stdout
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.emulator: Emulator | None = None
        self.services: dict[str, Service] = {}
        self._services_lock = threading.Lock()  # the bot follower adds and removes services beside the main thread
        self.reference_bots: list[str] = []  # the bots kept at the desired count, oldest first
        self._bot_numbers = itertools.count(1)
        self._bots_stopping = threading.Event()
        self._bot_follower: threading.Thread | None = None
        self._retiring: list[threading.Thread] = []

    def stop_requested(self) -> bool:
        return self.stop_signals is not None and self.stop_signals.is_set()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def frontend_url(self) -> str:
        return f"http://127.0.0.1:{self.frontend_port}/?api={self.api_url}"

    @property
    def endpoint_url(self) -> str:
        return self.env["AWS_ENDPOINT_URL"]

    def check_ports(self, emulator_port: int | None = None) -> None:
        """Raise PortInUse, naming the port, if one this stack would listen on is taken: readiness would
        otherwise take an answer from whatever holds it, and this stack would use another stack's services."""
        ensure_port_free(self.api_port, "API")
        ensure_port_free(self.frontend_port, "web page")
        if emulator_port and not self.env.get("AWS_ENDPOINT_URL"):
            ensure_port_free(emulator_port, "emulator")

    def start(self, emulator_port: int | None = None) -> "Stack":
        self.check_ports(emulator_port)
        if not self.env.get("AWS_ENDPOINT_URL"):
            self.emulator = start_emulator(emulator_port, cancelled=self.stop_requested)
            self.env.update({"AWS_ENDPOINT_URL": self.emulator.endpoint_url, **EMULATOR_DEFAULTS})
        for name, value in EMULATOR_DEFAULTS.items():
            self.env.setdefault(name, value)
        self._run_to_completion("provision", [sys.executable, "-m", "infra.provision"])
        self.start_api()
        self.start_runtime()
        self.start_reference_bots()
        self._start("frontend", [sys.executable, "-m", "infra.serve_frontend", "--port", str(self.frontend_port),
                                 "--dir", str(ROOT / "frontend")])
        wait_for_http(f"http://127.0.0.1:{self.frontend_port}/", timeout=30, cancelled=self.stop_requested,
                      process=self.services["frontend"].process)
        return self

    def start_api(self) -> None:
        service = self._start("api", [sys.executable, "-m", "infra.serve_api", "--project-dir", str(ROOT),
                                      "--stage", "local", "--port", str(self.api_port)])
        wait_for_http(f"{self.api_url}/api/health", timeout=60, cancelled=self.stop_requested, process=service.process)

    def start_runtime(self) -> None:
        service = self._start("runtime", [sys.executable, "-m", "infra.runtime", "--project-dir", str(ROOT),
                                          "--stage", "local", "--workers", str(self.workers),
                                          "--control-table", STATE_TABLE.name,
                                          # each job worker beats as it starts, so it is listed at once
                                          "--worker-start-hook", "app.worker_started"])
        service.wait_for_line("runtime ready", timeout=60, cancelled=self.stop_requested)

    def start_bot(self, name: str, *options: str) -> Service:
        """A reference bot (infra/bot.py) against this stack's API; its options override seed 004's defaults."""
        service = self._start(name, self._bot_command(name, *options))
        service.wait_for_line("registered as", timeout=60, cancelled=self.stop_requested)
        return service

    def fleet_store(self) -> DynamoFleetStore:
        """The fleet's store as this stack's processes see it: its emulator, or AWS_ENDPOINT_URL."""
        import boto3

        session = boto3.session.Session(region_name=self.env["AWS_DEFAULT_REGION"],
                                        aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        return DynamoFleetStore(session.client("dynamodb", endpoint_url=self.endpoint_url), STATE_TABLE.name)

    def start_reference_bots(self) -> None:
        """Store `--bots` as the desired count, start that many, then follow the count from a thread of its own.

        The follower thread starts every later bot and lives as long as the stack: a child's parent-death signal
        (infra/process.py) fires when the thread that started it ends, not the process."""
        store = self.fleet_store()
        store.set_bot_count(self.bots, time.time())
        self.scale_bots(self.bots)
        self._bot_follower = threading.Thread(target=self._follow_bot_count, args=(store,), name="bot count",
                                              daemon=True)
        self._bot_follower.start()

    def _follow_bot_count(self, store: DynamoFleetStore) -> None:
        while not self._bots_stopping.wait(BOT_COUNT_POLL_S):
            try:
                desired = store.bot_count()
                if desired is not None:
                    self.scale_bots(desired)
            except StopRequested:
                return
            except Exception as exc:  # the emulator restarting, a bot that would not register: try again
                self._say("stack", f"could not follow the bot count: {exc}")

    def scale_bots(self, desired: int) -> None:
        """Start the missing reference bots (all at once, then wait for each to register), or stop the newest above
        `desired`: SIGTERM, and a job it holds goes back to its backlog when its lease runs out."""
        if desired != len(self.reference_bots):
            self._say("stack", f"bots: {len(self.reference_bots)} -> {desired}")
        starting = []
        while len(self.reference_bots) < desired:
            name = f"bot-{next(self._bot_numbers)}"
            self.reference_bots.append(name)
            starting.append(self._start(name, self._bot_command(name)))
        for service in starting:
            service.wait_for_line("registered as", timeout=60, cancelled=self._bots_cancelled)
        for name in reversed(self.reference_bots[desired:]):
            self.reference_bots.remove(name)
            with self._services_lock:
                service = self.services.pop(name)
            retiring = threading.Thread(target=self._stop_services, args=([service], STOP_GRACE_SECONDS),
                                        name=f"stop {name}", daemon=True)
            retiring.start()
            self._retiring.append(retiring)
        self._retiring = [thread for thread in self._retiring if thread.is_alive()]

    def _bots_cancelled(self) -> bool:
        return self._bots_stopping.is_set() or self.stop_requested()

    def _bot_command(self, name: str, *options: str) -> list[str]:
        return [sys.executable, "-m", "infra.bot", "--api", self.api_url, "--name", name, *options]

    def restart(self, name: str) -> None:
        """Stop one service and start it again: the restart drills."""
        self.stop_service(name)
        {"api": self.start_api, "runtime": self.start_runtime}[name]()

    def _run_to_completion(self, name: str, command: list[str], timeout: float = 120) -> None:
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, **child_process_kwargs())
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if self.stop_requested() or time.monotonic() > deadline:
                process.kill()
                process.wait()
                if self.stop_requested():
                    raise StopRequested()
                raise TimeoutError(f"{name} did not finish within {timeout}s")
            time.sleep(0.05)
        reader.join(timeout=5)
        self.log.write(f"[{name}] {''.join(output)}")
        if process.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{''.join(output)}")

    def _start(self, name: str, command: list[str]) -> Service:
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1, start_new_session=True, **child_process_kwargs())
        service = Service(name, process)
        with self._services_lock:
            self.services[name] = service
        threading.Thread(target=self._copy_output, args=(service,), daemon=True).start()
        return service

    def _say(self, name: str, line: str) -> None:
        try:
            self.log.write(f"[{name}] {line}\n")
            self.log.flush()
        except ValueError:
            pass  # the log was closed while we were stopping

    def _copy_output(self, service: Service) -> None:
        for line in service.process.stdout:
            service.lines.append(line)
            del service.lines[:-2000]
            try:
                self.log.write(f"[{service.name}] {line}")
                self.log.flush()
            except ValueError:
                return  # the log was closed while we were stopping

    def stop_service(self, name: str, grace: float = STOP_GRACE_SECONDS) -> None:
        with self._services_lock:
            service = self.services.pop(name, None)
        if service is not None:
            self._stop_services([service], grace)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop the bots, then every other service at once, then the emulator, which the runtime's workers need
        until they are done."""
        self._bots_stopping.set()
        if self._bot_follower is not None:
            self._bot_follower.join()  # it starts no bot once it has seen the flag
        for retiring in self._retiring:
            retiring.join()
        bots = [self.services.pop(name) for name in list(self.services) if name.startswith("bot-")]
        self._stop_services(bots, grace)  # first, while the API is up to take their deregistration
        services = [self.services.pop(name) for name in ("frontend", "runtime", "api") if name in self.services]
        self._stop_services(services, grace)
        if self.emulator:
            self.emulator.stop()

    @staticmethod
    def _stop_services(services: list[Service], grace: float) -> None:
        """SIGTERM to each (every service handles it; a worker finishes its batch), one shared grace period, then
        SIGKILL to the process group of any still running."""
        def kill(name: str, process: subprocess.Popen) -> None:
            print(f"{name} ignored SIGTERM for {grace:.0f} s; killing it", flush=True)
            os.killpg(process.pid, signal.SIGKILL)

        stop_together([(service.name, service.process) for service in services], grace, kill)

    def first_exited(self) -> tuple[str, subprocess.Popen] | None:
        """A process of the stack that has exited, the emulator included: nothing works without it."""
        with self._services_lock:
            processes = [(name, service.process) for name, service in self.services.items()]
        if self.emulator is not None:
            processes.insert(0, ("the emulator", self.emulator.process))
        return next(((name, process) for name, process in processes if process.poll() is not None), None)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"code {returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Pacer locally: emulator, API, runtime and web page.")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--frontend-port", type=int, default=8080)
    parser.add_argument("--emulator-port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bots", type=int, default=0,
                        help="reference bots to start (infra/bot.py); PUT /api/bots/count changes it while it runs")
    args = parser.parse_args()
    # SIGTERM and SIGINT only set a flag (infra/signals.py); this loop does the stopping. A handler that
    # did more could deadlock on a lock the main thread holds, as Event.set() did on a second SIGTERM.
    stop = StopSignals().install()
    stack = Stack(args.api_port, args.frontend_port, workers=args.workers, stop=stop, bots=args.bots)
    code = 0
    try:
        stack.start(emulator_port=args.emulator_port)
        where = stack.endpoint_url + (" (embedded moto)" if stack.emulator else " (from AWS_ENDPOINT_URL)")
        print(f"\nPacer is up.\n  web page : http://127.0.0.1:{args.frontend_port}/\n"
              f"  API      : {stack.api_url}/api/status\n  AWS      : {where}\n"
              f"  workers  : {args.workers}\n  bots     : {args.bots}\nCtrl-C stops everything.\n", flush=True)
        while not stop.wait(0.5):
            if (dead := stack.first_exited()) is not None:
                name, process = dead
                print(f"{name} (pid {process.pid}) exited with {describe_exit(process.returncode)}; "
                      "stopping everything.", flush=True)
                code = 1
                break
    except PortInUse as exc:
        print(f"make up: {exc}", file=sys.stderr, flush=True)
        code = 2
    except StopRequested:
        pass
    finally:
        if stack.services or stack.emulator:
            print(f"stopping ({stop.reason})…" if stop.is_set() else "stopping…", flush=True)
        stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
