"""A reference bot: what a worker outside Lambda does, over HTTP only, with the standard library.

    python -m infra.bot --api http://localhost:8000

It registers, heartbeats every 30 s on a thread (which renews the lease on
the job it holds), and claims one job at a time with a long poll. It
simulates the work: it sleeps PROCESSING_DURATION seconds (seed 004: 300) and
fails an attempt at FAILURE_RATE (seed 004: 0.15), as a retryable failure.
A complete that answers 409 means its lease ran out and the job went to
another bot: it drops it and claims the next. Any language can do the same;
the README shows every call with curl.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any


DEREGISTER_TIMEOUT_S = 5.0  # stopping: a dead API must not hold the bot for the client's whole timeout


class Api:
    def __init__(self, base: str, token: str | None = None, timeout: float = 40.0):
        self.base, self.token, self.timeout = base.rstrip("/"), token, timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, method=method, headers=headers,
                                         data=json.dumps(body or {}).encode())
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None


class Stopping(Exception):
    """Raised by the stop signal's handler into a claim's long poll, which would otherwise hold the bot for its
    whole wait, or for the client's timeout if the API died with the request unanswered."""


def say(message: str) -> None:
    print(message, flush=True)


class Bot:
    def __init__(self, api: Api, name: str, duration_s: float, failure_rate: float, heartbeat_s: float,
                 wait_s: float, job_types: list[str] | None, lease_s: float | None):
        self.api, self.name = api, name
        self.duration_s, self.failure_rate, self.heartbeat_s, self.wait_s = duration_s, failure_rate, heartbeat_s, wait_s
        self.job_types, self.lease_s = job_types, lease_s
        # Set by the stop signal's handler, which runs on the main thread between any two of its instructions, so
        # it takes no lock: a threading.Event's set() there deadlocks when the main thread holds the Event's lock,
        # or when a second signal arrives inside the first one's set().
        self.stopping = False
        self.claiming = False  # in a claim's long poll, which the stop signal interrupts
        self.id = ""

    def register(self) -> None:
        body: dict[str, Any] = {"name": self.name, "labels": {"host": socket.gethostname(), "kind": "reference"}}
        if self.job_types:
            body["job_types"] = self.job_types
        if self.lease_s:
            body["lease_s"] = self.lease_s
        for _ in range(30):  # the API may still be starting
            if self.stopping:
                raise SystemExit(0)
            try:
                status, answer = self.api.call("POST", "/api/bots", body)
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit(f"could not reach {self.api.base}")
        if status != 201:
            raise SystemExit(f"registration refused ({status}): {answer}")
        self.id, self.api.token = answer["id"], answer["token"]
        say(f"bot {self.name} registered as {self.id}")

    def pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`; answer whether the bot is stopping."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.stopping

    def stop(self, *_: Any) -> None:
        """The stop signal's handler. A job that a claim interrupted here was granted goes back on deregistering."""
        self.stopping = True
        if self.claiming:
            self.claiming = False  # once: a second signal must not raise into the first one's handling
            raise Stopping

    def heartbeats(self) -> None:
        while not self.pause(self.heartbeat_s):
            try:
                status, answer = self.api.call("POST", f"/api/bots/{self.id}/heartbeat")
                if status != 200:
                    say(f"heartbeat refused ({status}): {answer}")
            except OSError as exc:
                say(f"heartbeat failed: {exc}")

    def work(self) -> None:
        while not self.stopping:
            try:
                self.claiming = True
                status, claimed = self.api.call("POST", f"/api/bots/{self.id}/claim", {"wait_s": self.wait_s})
            except OSError as exc:
                say(f"claim failed: {exc}")
                self.pause(1)
                continue
            finally:
                self.claiming = False
            if status == 204:
                continue
            if status != 200:
                say(f"claim refused ({status}): {claimed}")
                self.pause(1)
                continue
            self.run(claimed["job"])

    def deregister(self) -> None:
        """Stopping on purpose: leave the fleet now, so the bot is not shown idle until it turns down and the job
        it held goes back to its backlog at once, not when its lease runs out."""
        try:
            status, answer = self.api.call("DELETE", f"/api/bots/{self.id}", timeout=DEREGISTER_TIMEOUT_S)
        except OSError as exc:
            say(f"could not deregister: {exc}; the lease runs out instead")
            return
        if status != 204:
            say(f"deregistration refused ({status}): {answer}")

    def run(self, job: dict[str, Any]) -> None:
        say(f"claimed {job['id']} ({job['type']}, attempt {job['attempt']}/{job['max_attempts']})")
        if self.pause(self.duration_s):
            return  # stopping: deregistering gives the job back
        path = f"/api/bots/{self.id}/jobs/{job['id']}"
        if random.random() < self.failure_rate:
            status, answer = self.api.call("POST", path + "/fail", {"error": "simulated failure (FAILURE_RATE)"})
            outcome = "failed"
        else:
            status, answer = self.api.call("POST", path + "/complete", {"result": {
                "bot": self.id, "simulated": True, "duration_s": self.duration_s}})
            outcome = "completed"
        if status == 200:
            say(f"{outcome} {job['id']}: the job is {answer['status']}")
        else:  # 409: the lease ran out and another bot has it
            say(f"{outcome} {job['id']} refused ({status}): {answer.get('message') if answer else ''}")


def make_bot(argv: list[str] | None = None) -> Bot:
    """The bot that `main` runs, from the command line and the environment (PROCESSING_DURATION, FAILURE_RATE)."""
    parser = argparse.ArgumentParser(description="A reference bot: registers, heartbeats, claims and runs jobs.")
    parser.add_argument("--api", default=os.environ.get("PACER_API", "http://localhost:8000"))
    parser.add_argument("--name", default=f"bot-{socket.gethostname()}-{os.getpid()}")
    parser.add_argument("--duration", type=float, default=float(os.environ.get("PROCESSING_DURATION", "300")),
                        help="seconds each job takes (PROCESSING_DURATION; seed 004: 300)")
    parser.add_argument("--failure-rate", type=float, default=float(os.environ.get("FAILURE_RATE", "0.15")),
                        help="share of attempts that fail (FAILURE_RATE; seed 004: 0.15)")
    parser.add_argument("--heartbeat", type=float, default=float(os.environ.get("HEARTBEAT_INTERVAL", "30")))
    parser.add_argument("--wait", type=float, default=10.0, help="a claim's long poll, in seconds (at most 20)")
    parser.add_argument("--lease", type=float, default=None, help="ask for this lease (s); default: the stage's")
    parser.add_argument("--job-types", default="", help="comma-separated; default: every type")
    args = parser.parse_args(argv)
    return Bot(Api(args.api), args.name, args.duration, args.failure_rate, args.heartbeat, args.wait,
               [t for t in args.job_types.split(",") if t] or None, args.lease)


def main() -> None:
    bot = make_bot()
    signal.signal(signal.SIGTERM, bot.stop)
    signal.signal(signal.SIGINT, bot.stop)
    bot.register()
    threading.Thread(target=bot.heartbeats, name="heartbeat", daemon=True).start()
    try:
        bot.work()
    except Stopping:
        pass  # stopped in a claim's long poll
    bot.deregister()
    say(f"bot {bot.id} stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
