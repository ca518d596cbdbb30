"""The whole local system as OS processes: emulator, provisioning, API, runtime, page.

`make up` runs it in the foreground (`python -m infra.stack`); the
integration and browser tests start one on free ports.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from chalicelib.resources import STATE_TABLE
from infra.emulator import Emulator, PortInUse, ensure_port_free, start_emulator, wait_for_http
from infra.process import child_process_kwargs, stop_together
from infra.signals import StopRequested, StopSignals

ROOT = Path(__file__).resolve().parent.parent
# Longer than the runtime's own grace for a worker's batch (infra/runtime/supervisor.py STOP_GRACE_SECONDS).
STOP_GRACE_SECONDS = 15.0
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
        self.bots = bots  # reference bots (infra/bot.py), each an OS process pulling bot jobs over HTTP
        self.log = log or sys.stdout
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.emulator: Emulator | None = None
        self.services: dict[str, Service] = {}

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
        for number in range(1, self.bots + 1):
            self.start_bot(f"bot-{number}")
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
        service = self._start(name, [sys.executable, "-m", "infra.bot", "--api", self.api_url, "--name", name,
                                     *options])
        service.wait_for_line("registered as", timeout=60, cancelled=self.stop_requested)
        return service

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
        self.services[name] = service
        threading.Thread(target=self._copy_output, args=(service,), daemon=True).start()
        return service

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
        if (service := self.services.pop(name, None)) is not None:
            self._stop_services([service], grace)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every service at once, then the emulator, which the runtime's workers need until they are done."""
        bots = [name for name in self.services if name.startswith("bot-")]
        services = [self.services.pop(name) for name in (*bots, "frontend", "runtime", "api") if name in self.services]
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
    parser.add_argument("--bots", type=int, default=0, help="reference bots to start (infra/bot.py)")
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
