"""The reference bot (infra/bot.py) against a fake of its HTTP client and a fake clock: no network, no real sleep."""
from types import SimpleNamespace

import pytest

from infra import bot as reference

JOB_A = {"id": "j-000000000000000a", "type": "email", "attempt": 1, "max_attempts": 3}
JOB_B = {"id": "j-000000000000000b", "type": "report", "attempt": 1, "max_attempts": 3}


class FakeClock:
    """Stands in for the `time` module in infra.bot: sleeping moves the clock on at once."""

    def __init__(self):
        self.now = 0.0
        self.on_sleep = lambda now: None

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.on_sleep(self.now)


class FakeApi:
    """Stands in for infra.bot.Api: records each call with the clock's time and answers from `answer`."""

    def __init__(self, clock, answer):
        self.base, self.token, self.clock, self.answer = "http://api.test", None, clock, answer
        self.calls = []

    def call(self, method, path, body=None, timeout=None):
        self.calls.append((round(self.clock.now, 3), method, path, body))
        return self.answer(method, path, body)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(reference, "time", fake)
    return fake


@pytest.fixture
def defaults(monkeypatch):
    for name in ("PROCESSING_DURATION", "FAILURE_RATE", "HEARTBEAT_INTERVAL", "PACER_API"):
        monkeypatch.delenv(name, raising=False)


def bot_with(api, **changes):
    made = reference.make_bot(["--name", "ref-1"])
    made.api, made.id = api, "b-1"
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def always(random_value, monkeypatch):
    monkeypatch.setattr(reference, "random", SimpleNamespace(random=lambda: random_value))


def test_the_defaults_are_seed_004s_five_minutes_and_15_percent_and_a_heartbeat_every_30_s(defaults):
    made = reference.make_bot([])
    assert (made.duration_s, made.failure_rate, made.heartbeat_s) == (300.0, 0.15, 30.0)
    assert (made.api.base, made.wait_s, made.lease_s, made.job_types) == ("http://localhost:8000", 10.0, None, None)


def test_the_environment_sets_the_work_in_seconds(monkeypatch):
    monkeypatch.setenv("PROCESSING_DURATION", "2")
    monkeypatch.setenv("FAILURE_RATE", "0")
    monkeypatch.setenv("HEARTBEAT_INTERVAL", "5")
    made = reference.make_bot(["--job-types", "email,report"])
    assert (made.duration_s, made.failure_rate, made.heartbeat_s, made.job_types) == (2.0, 0.0, 5.0,
                                                                                      ["email", "report"])


def test_a_job_takes_processing_duration_then_completes(defaults, clock, monkeypatch):
    always(0.15, monkeypatch)  # not below FAILURE_RATE: the attempt succeeds
    api = FakeApi(clock, lambda *_: (200, {"status": "completed"}))
    bot_with(api).run(JOB_A)
    ((at, method, path, body),) = api.calls
    assert (at, method, path) == (300.0, "POST", f"/api/bots/b-1/jobs/{JOB_A['id']}/complete")
    assert body["result"]["bot"] == "b-1" and body["result"]["duration_s"] == 300.0


def test_an_attempt_below_failure_rate_fails_retryably(defaults, clock, monkeypatch):
    always(0.149, monkeypatch)
    api = FakeApi(clock, lambda *_: (200, {"status": "pending"}))
    bot_with(api).run(JOB_A)
    ((at, method, path, body),) = api.calls
    assert (at, path) == (300.0, f"/api/bots/b-1/jobs/{JOB_A['id']}/fail")
    assert body["error"] and body.get("retryable", True) is True  # the API's default is retryable


def test_stopping_while_it_works_settles_nothing(defaults, clock, monkeypatch):
    always(0.5, monkeypatch)
    api = FakeApi(clock, lambda *_: (200, {"status": "completed"}))
    made = bot_with(api)

    def stop_at_100(now):
        if now >= 100:
            made.stopping = True

    clock.on_sleep = stop_at_100
    made.run(JOB_A)
    assert api.calls == [] and clock.now < 101  # deregistering gives the job back


@pytest.mark.parametrize("refusal", [{"message": "bot b-1 does not hold j-000000000000000a: on bot b-2"}, None])
def test_a_complete_answered_409_drops_the_job_and_claims_the_next(defaults, clock, monkeypatch, capsys, refusal):
    always(0.5, monkeypatch)
    claims = iter([JOB_A, JOB_B, None])
    made = None

    def answer(method, path, body):
        if path.endswith("/claim"):
            job = next(claims)
            if job is None:
                made.stopping = True
                return 204, None
            return 200, {"job": job, "lease_s": 90}
        if JOB_A["id"] in path:
            return 409, refusal  # the lease ran out and another bot has it
        return 200, {"status": "completed"}

    api = FakeApi(clock, answer)
    made = bot_with(api)
    made.work()
    assert [path.removeprefix("/api/bots/b-1/") for _, _, path, _ in api.calls] == [
        "claim", f"jobs/{JOB_A['id']}/complete", "claim", f"jobs/{JOB_B['id']}/complete", "claim"]
    assert "refused (409)" in capsys.readouterr().out


def test_heartbeats_every_30_s_and_a_refused_or_failed_one_does_not_stop_them(defaults, clock):
    answers = iter([(200, {}), OSError("connection refused"), (404, {"message": "no bot"}), (200, {})])
    made = None

    def answer(method, path, body):
        found = next(answers)
        if len(api.calls) == 4:
            made.stopping = True
        if isinstance(found, Exception):
            raise found
        return found

    api = FakeApi(clock, answer)
    made = bot_with(api)
    made.heartbeats()
    assert [(pytest.approx(at, abs=0.01), method, path) for at, method, path, _ in api.calls] == [
        (30.0 * i, "POST", "/api/bots/b-1/heartbeat") for i in (1, 2, 3, 4)]
