"""`make seed`: a realistic mix of work on a running stack, so a newcomer's pages are not empty.

    python -m infra.seed [--api http://localhost:8000] [--typed 50] [--scheduled 5] [--failing 3]
                         [--seed 3] [--json FILE] [--no-run]

Through the public API only, as a user would (seed 003's `seed.py`):

- a short paced run: 60 jobs at 120 per minute, about 30 s (left alone, and
  said so, when a run is already active);
- compute batches from three callers of very different sizes (alice 20
  numbers, bob 8, carol 3), so the callers table shows fair admission, with
  two numbers asked for by two callers (factored once, the second answer
  `cached`);
- typed jobs of every type (email, report, notification) with every priority,
  a few scheduled hours ahead (they stay pending), and a few whose main text
  carries `#fail` (chalicelib/typed/executors.py), so the failed status,
  the retry and the dashboard's failure line have something to show.

It prints what it made; `--json FILE` also writes the ids, for scripts and
tests. The same `--seed` makes the same contents (ids and times differ).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

import requests

DEFAULT_API = "http://localhost:8000"
RUN = {"x": 120, "y": 1, "total": 60}
BATCHES = {"alice": 20, "bob": 8, "carol": 3}  # numbers per caller: one heavy caller, one light
TYPES = ("email", "report", "notification")
TIMEOUT_S = 10

PEOPLE = ("ann", "bo", "chen", "dana", "eli", "fatima", "gus", "hana", "ivan", "june")
SUBJECTS = ("Welcome to Pacer", "Your invoice for November", "Password reset", "Weekly digest",
            "Your export is ready", "Meeting moved to 3 pm", "Trial ends in 3 days")
REPORTS = ("sales", "inventory", "usage", "churn", "payroll")
MESSAGES = ("Your order has shipped", "New login from Firefox on Linux", "Build #481 passed",
            "Disk usage above 80%", "You have 3 unread messages")


class SeedError(RuntimeError):
    """The API refused something or could not be reached; the message says what."""


@dataclass
class PlannedJob:
    body: dict[str, Any]
    caller: str
    fails: bool = False


@dataclass
class Seeded:
    api: str
    run: dict[str, Any] | None = None
    run_note: str = ""
    compute: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    typed: list[dict[str, Any]] = field(default_factory=list)


# ---- what to make (pure, so it can be tested without a stack) ---------------

def plan_numbers(rng: random.Random) -> dict[str, list[str]]:
    """Each caller's batch: numbers of 6 to 18 digits (FLINT factors them in milliseconds), a few shared."""
    batches = {caller: [str(rng.randrange(10 ** (digits - 1), 10 ** digits))
                        for digits in (rng.randint(6, 18) for _ in range(size))]
               for caller, size in BATCHES.items()}
    # The same number from two callers is factored once; the other answer comes from the stored result.
    batches["carol"][0] = batches["alice"][0]
    batches["bob"][0] = batches["alice"][1]
    return batches


def plan_typed(rng: random.Random, count: int, scheduled: int, failing: int, now: datetime) -> list[PlannedJob]:
    """`count` typed jobs, the types in turn and every priority among the first five; the last `scheduled`
    ones due 1 to 12 hours after `now`, and `failing` of the others asking to fail."""
    if not 0 <= scheduled + failing <= count:
        raise ValueError("scheduled + failing must be at most the number of typed jobs")
    jobs: list[PlannedJob] = []
    for n in range(count):
        kind = TYPES[n % len(TYPES)]
        fails = scheduled <= count - 1 - n < scheduled + failing  # just before the scheduled ones
        marker = " #fail" if fails else ""
        person = rng.choice(PEOPLE)
        if kind == "email":
            payload: dict[str, Any] = {"to": f"{person}@example.com", "subject": rng.choice(SUBJECTS) + marker,
                                       "body": f"Hi {person.title()}, this message was made by make seed."}
        elif kind == "report":
            end = (now - timedelta(days=rng.randint(0, 30))).date()
            payload = {"report_type": rng.choice(REPORTS) + marker, "format": rng.choice(("pdf", "csv")),
                       "date_range": {"from": (end - timedelta(days=rng.choice((7, 30, 90)))).isoformat(),
                                      "to": end.isoformat()}}
        else:
            payload = {"user_id": f"u-{person}", "channel": rng.choice(("push", "sms", "email")),
                       "message": rng.choice(MESSAGES) + marker}
        # Every priority at least once, then mostly the default, as real traffic would be.
        priority = n % 5 + 1 if n < 5 else rng.choices((1, 2, 3, 4, 5), weights=(1, 2, 6, 2, 1))[0]
        body: dict[str, Any] = {"type": kind, "priority": priority, "payload": payload}
        if n >= count - scheduled:
            due = now + timedelta(hours=rng.randint(1, 12), minutes=rng.randint(0, 59))
            body["scheduled_for"] = due.strftime("%Y-%m-%dT%H:%M:%SZ")
        jobs.append(PlannedJob(body=body, caller=rng.choice(tuple(BATCHES)), fails=fails))
    return jobs


# ---- making it --------------------------------------------------------------

def call(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        return session.request(method, url, timeout=TIMEOUT_S, **kwargs)
    except requests.RequestException as exc:
        raise SeedError(f"could not reach the API at {url}: {exc}. Is the stack up (make up)?") from exc


def expect(response: requests.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise SeedError(f"{response.request.method} {response.url} answered {response.status_code}: {message}")
    answer: dict[str, Any] = response.json()
    return answer


def seed(api: str, *, typed: int, scheduled: int, failing: int, start_run: bool, rng: random.Random) -> Seeded:
    session = requests.Session()
    made = Seeded(api=api)
    expect(call(session, "GET", f"{api}/api/status"), 200)  # reachable, and a Pacer API

    if start_run:
        response = call(session, "POST", f"{api}/api/run", json=RUN)
        if response.status_code == 409:
            made.run_note = "a run is already active; left it running"
        else:
            status = expect(response, 201)
            made.run = {"run_id": status["run_id"], **RUN}
    else:
        made.run_note = "not asked for (--no-run)"

    for caller, numbers in plan_numbers(rng).items():
        answer = expect(call(session, "POST", f"{api}/api/compute/batch", json={"numbers": numbers},
                             headers={"X-Caller-ID": caller}), 202)
        made.compute[caller] = [{"id": job["id"], "number": number, "status": job["status"]}
                                for job, number in zip(answer["jobs"], numbers)]

    for job in plan_typed(rng, typed, scheduled, failing, datetime.now(timezone.utc)):
        created = expect(call(session, "POST", f"{api}/api/jobs", json=job.body,
                              headers={"X-Caller-ID": job.caller}), 201)
        made.typed.append({"id": created["id"], "type": created["type"], "priority": created["priority"],
                           "caller": job.caller, "scheduled_for": created.get("scheduled_for"), "fails": job.fails})
    return made


def describe(made: Seeded) -> str:
    lines = [f"Seeded {made.api}:"]
    if made.run:
        lines.append(f"  run      {made.run['run_id']}: {made.run['total']} jobs at {made.run['x']} per "
                     f"{made.run['y']} minute (about {made.run['total'] * made.run['y'] * 60 / made.run['x']:.0f} s)")
    else:
        lines.append(f"  run      none: {made.run_note}")
    per_caller = ", ".join(f"{caller} {len(jobs)}" for caller, jobs in made.compute.items())
    askers = Counter(number for jobs in made.compute.values() for number in {job["number"] for job in jobs})
    shared = sum(count > 1 for count in askers.values())
    lines.append(f"  compute  {sum(map(len, made.compute.values()))} numbers in one batch per caller: {per_caller}"
                 f" ({shared} asked for by two callers, factored once)")
    by_type = ", ".join(f"{kind} {sum(j['type'] == kind for j in made.typed)}" for kind in TYPES)
    by_priority = ", ".join(f"{p}: {sum(j['priority'] == p for j in made.typed)}" for p in range(5, 0, -1))
    lines.append(f"  typed    {len(made.typed)} jobs: {by_type}")
    lines.append(f"           priority {by_priority}")
    lines.append(f"           {sum(bool(j['scheduled_for']) for j in made.typed)} scheduled hours ahead (pending "
                 f"until then), {sum(j['fails'] for j in made.typed)} marked #fail (they end failed)")
    return "\n".join(lines)


# ---- the command line -------------------------------------------------------

def api_url(text: str) -> str:
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL like {DEFAULT_API}")
    return text.rstrip("/")


def bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", type=api_url, default=DEFAULT_API, help=f"the API (default {DEFAULT_API})")
    parser.add_argument("--typed", type=bounded(1, 1000), default=50, help="typed jobs to create (default 50)")
    parser.add_argument("--scheduled", type=bounded(0, 1000), default=5,
                        help="of them, scheduled hours ahead (default 5)")
    parser.add_argument("--failing", type=bounded(0, 1000), default=3, help="of them, marked #fail (default 3)")
    parser.add_argument("--seed", type=int, default=3, help="random seed for the contents (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write what was made, with ids, to FILE as JSON")
    parser.add_argument("--no-run", dest="run", action="store_false", help="start no paced run")
    args = parser.parse_args(argv)
    if args.scheduled + args.failing > args.typed:
        parser.error(f"--scheduled {args.scheduled} plus --failing {args.failing} is more than --typed {args.typed}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        made = seed(args.api, typed=args.typed, scheduled=args.scheduled, failing=args.failing, start_run=args.run,
                    rng=random.Random(args.seed))
    except SeedError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 1
    print(describe(made))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(asdict(made), out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
