"""Bots through the HTTP adapter and the service, over the in-memory twins: registration and tokens, claims,
leases, settlement through the ledger, and bad input that changes nothing."""
import json

import pytest

from chalicelib.bots import service as bots
from chalicelib.bots.models import Claim, Complete, Fail, RegisterBot
from chalicelib.typed import service as typed
from chalicelib.worker.retry import RetryPolicy
from tests.fakes import MemoryContainer

ADMIN = {"Authorization": "Bearer secret"}
EMAIL = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}, "target": "bot"}
REPORT = {"type": "report", "target": "bot", "payload": {"report_type": "sales", "format": "pdf",
                                                         "date_range": {"from": "2026-01-01", "to": "2026-01-31"}}}


@pytest.fixture
def c():
    return MemoryContainer(retry_base_s=0)


def call(client, method, path, body=None, headers=None):
    response = getattr(client.http, method)(path, headers={"Content-Type": "application/json", **(headers or {})},
                                            body=json.dumps(body) if body is not None else b"")
    return response.status_code, response.json_body


def submit(client, body=EMAIL, caller="alice", priority=3):
    status, job = call(client, "post", "/api/jobs", {**body, "priority": priority}, {"X-Caller-ID": caller})
    assert status == 201, job
    return job


def register(client, name="gpu-1", **fields):
    status, bot = call(client, "post", "/api/bots", {"name": name, **fields})
    assert status == 201, bot
    return bot, {"Authorization": f"Bearer {bot['token']}"}


def claim(client, bot, auth, body=None):
    return call(client, "post", f"/api/bots/{bot['id']}/claim", body or {}, auth)


def test_a_bot_target_job_is_not_sent_to_sqs_and_waits_for_a_bot(client, c):
    job = submit(client)
    assert (job["target"], job["status"], job["bot"]) == ("bot", "pending", None)
    assert c.jobs_queue.sent == [] and c.typed_jobs.callers() == []
    assert [x.caller for x in c.bots.callers()] == ["alice"]


def test_registration_shows_the_token_once_and_stores_only_its_hash(client, c):
    bot, _ = register(client, labels={"site": "lab"}, job_types=["email"])
    assert bot["token"].startswith("pbt_") and bot["state"] == "idle" and bot["job_types"] == ["email"]
    stored = c.bots.get(bot["id"])
    assert stored.token_hash == bots.token_hash(bot["token"]) and bot["token"] not in stored.model_dump_json()
    status, listed = call(client, "get", "/api/bots")
    assert status == 200 and [b["id"] for b in listed["bots"]] == [bot["id"]] and "token" not in listed["bots"][0]
    assert "token" not in call(client, "get", f"/api/bots/{bot['id']}")[1]


def test_a_bot_claims_completes_and_the_job_settles_once_with_the_bot_in_its_timeline(client, c):
    job = submit(client)
    bot, auth = register(client)
    status, claimed = claim(client, bot, auth)
    assert status == 200 and claimed["job"]["id"] == job["id"] and claimed["job"]["attempt"] == 1
    assert claimed["job"]["payload"]["to"] == "ann@example.com" and claimed["lease_s"] == 90
    assert call(client, "get", f"/api/bots/{bot['id']}")[1]["jobs"] == [job["id"]]
    status, done = call(client, "post", f"/api/bots/{bot['id']}/jobs/{job['id']}/complete", {"result": {"n": 1}}, auth)
    assert status == 200 and (done["status"], done["result"], done["bot"]) == ("completed", {"n": 1}, bot["id"])
    assert [(e["status"], e["worker"]) for e in done["timeline"]][-2:] == [("running", bot["id"]),
                                                                           ("completed", bot["id"])]
    status, again = call(client, "post", f"/api/bots/{bot['id']}/jobs/{job['id']}/complete", {"result": {"n": 2}}, auth)
    assert status == 409 and "does not hold" in again["message"]
    assert c.typed_jobs.results[job["id"]].result == {"n": 1} and c.typed_jobs.results[job["id"]].worker == bot["id"]
    shown = call(client, "get", f"/api/bots/{bot['id']}")[1]
    assert (shown["jobs_done"], shown["state"], shown["history"][0]["event"]) == (1, "idle", "completed")
    assert call(client, "get", "/api/stats")[1]["by_status"]["completed"] == 1


def test_nothing_to_claim_answers_204(client):
    bot, auth = register(client)
    status, _ = claim(client, bot, auth)
    assert status == 204


def test_claims_are_fair_across_callers_and_by_priority_within_one(client, c):
    for i in range(3):
        submit(client, caller="big", priority=1 + i)
    small = submit(client, caller="small")
    first, first_auth = register(client, "b1")
    second, second_auth = register(client, "b2")
    third, third_auth = register(client, "b3")
    got = [claim(client, b, a)[1]["job"] for b, a in ((first, first_auth), (second, second_auth), (third, third_auth))]
    # One caller each before either gets a second; big's highest priority first.
    assert {got[0]["caller"], got[1]["caller"]} == {"big", "small"}
    assert small["id"] in {g["id"] for g in got[:2]}
    assert [g["priority"] for g in got if g["caller"] == "big"] == [3, 2]


def test_a_failed_retryable_attempt_goes_back_after_the_backoff_and_the_last_one_fails_the_job(client, c):
    job = submit(client)
    bot, auth = register(client)
    for attempt in (1, 2):
        assert claim(client, bot, auth)[1]["job"]["attempt"] == attempt
        status, back = call(client, "post", f"/api/bots/{bot['id']}/jobs/{job['id']}/fail", {"error": "disk full"},
                            auth)
        assert status == 200 and back["status"] == "pending" and "retry in 0 s: disk full" == back["error"]
    assert claim(client, bot, auth)[1]["job"]["attempt"] == 3
    status, failed = call(client, "post", f"/api/bots/{bot['id']}/jobs/{job['id']}/fail", {"error": "disk full"},
                          auth)
    assert status == 200 and (failed["status"], failed["attempts"], failed["error"]) == ("failed", 3, "disk full")
    assert c.typed_jobs.results[job["id"]].outcome == "failed"
    assert claim(client, bot, auth)[0] == 204
    assert [(x.backlog, x.in_flight, x.done, x.failed) for x in c.bots.callers()] == [(0, 0, 0, 1)]


def test_a_failure_that_is_not_retryable_fails_the_job_at_once(client, c):
    job = submit(client)
    bot, auth = register(client)
    claim(client, bot, auth)
    status, failed = call(client, "post", f"/api/bots/{bot['id']}/jobs/{job['id']}/fail",
                          {"error": "bad input", "retryable": False}, auth)
    assert status == 200 and (failed["status"], failed["attempts"]) == ("failed", 1)


def fail_for_good(client, bot, auth, job, how):
    """Fail the bot's job so it ends `failed`: at once (not retryable), or on its last attempt."""
    path = f"/api/bots/{bot['id']}/jobs/{job['id']}/fail"
    if how == "not retryable":
        claim(client, bot, auth)
        return call(client, "post", path, {"error": "bad input", "retryable": False}, auth)
    for _ in range(3):  # the stage's max_attempts
        claim(client, bot, auth)
        answer = call(client, "post", path, {"error": "disk full"}, auth)
    return answer


@pytest.mark.parametrize("how", ["not retryable", "last attempt"])
def test_an_admin_retry_sends_a_failed_bot_job_back_to_the_bots_and_it_settles_once(client, c, how):
    job = submit(client)
    bot, auth = register(client)
    status, failed = fail_for_good(client, bot, auth, job, how)
    assert status == 200 and failed["status"] == "failed"
    assert [(x.backlog, x.in_flight, x.done, x.failed) for x in c.bots.callers()] == [(0, 0, 0, 1)]
    path = f"/api/jobs/{job['id']}/retry"
    assert call(client, "post", path)[0] == 401
    asked = []
    c.admission.request = asked.append
    status, again = call(client, "post", path, None, ADMIN)
    assert asked == []  # a bot job needs no admission pass
    assert status == 200 and (again["status"], again["attempts"], again["error"]) == ("pending", 0, None)
    assert again["target"] == "bot" and again["timeline"][-1]["note"] == "retried by admin"
    # Back in the bots' backlog, not admission's: no Lambda worker can take it.
    assert [(x.caller, x.backlog, x.in_flight) for x in c.bots.callers()] == [("alice", 1, 0)]
    assert c.typed_jobs.callers() == [] and c.jobs_queue.sent == []
    other, other_auth = register(client, "gpu-2")
    status, claimed = claim(client, other, other_auth)
    assert status == 200 and (claimed["job"]["id"], claimed["job"]["attempt"]) == (job["id"], 1)
    status, done = call(client, "post", f"/api/bots/{other['id']}/jobs/{job['id']}/complete", {"result": {"n": 1}},
                        other_auth)
    assert status == 200 and (done["status"], done["result"], done["bot"]) == ("completed", {"n": 1}, other["id"])
    assert c.typed_jobs.results[job["id"]].outcome == "done"  # the failed outcome went with the retry
    by_status = call(client, "get", "/api/stats")[1]["by_status"]
    assert {k: v for k, v in by_status.items() if v} == {"completed": 1}
    # The callers' done and failed count settlements, as for Lambda jobs: the failure before the retry stays.
    assert [(x.backlog, x.in_flight, x.done, x.failed) for x in c.bots.callers()] == [(0, 0, 1, 1)]
    assert call(client, "get", f"/api/bots/{other['id']}")[1]["jobs_done"] == 1
    assert call(client, "post", path, None, ADMIN)[0] == 409  # only a failed job can be retried
    assert claim(client, other, other_auth)[0] == 204


class ThirtySeconds(RetryPolicy):
    def delay_before(self, attempt, rng=None):
        return 30


def test_a_retry_waits_out_the_policys_backoff_before_any_bot_can_claim_it(c):
    created = submit_at(c, 1000.0)
    bot = register_at(c, "w", 1000.0)
    bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(), lambda: 1001.0, 90, lambda s: None)
    back = bots.fail(c.bots, c.bot_ledger, c.bots.get(bot.id), created.id, Fail(error="x"), 1002.0, ThirtySeconds())
    assert (back.status, back.error) == ("pending", "retry in 30 s: x")
    claim_at = lambda now: bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(), lambda: now,
                                      90, lambda s: None)
    assert claim_at(1031.0) is None
    assert claim_at(1032.0).job.attempt == 2


def submit_at(c, now, caller="alice", max_attempts=3):
    return typed.submit(c.typed_jobs, c.registry, c.admission, c.ticks_queue, EMAIL, caller, None, max_attempts,
                        now)[0]


def register_at(c, name, now):
    return bots.register(c.bots, c.registry, RegisterBot(name=name), now, 120)


def test_an_expired_lease_returns_the_job_on_the_next_claim_and_the_old_bots_complete_gets_409(client, c):
    job = submit(client)
    slow, slow_auth = register(client, "slow")
    other, other_auth = register(client, "other")
    claim(client, slow, slow_auth)
    held = c.bots.saved[slow["id"]]
    held.lease_until = 0  # its lease ran out
    status, claimed = claim(client, other, other_auth)
    assert status == 200 and (claimed["job"]["id"], claimed["job"]["attempt"]) == (job["id"], 2)
    status, late = call(client, "post", f"/api/bots/{slow['id']}/jobs/{job['id']}/complete", {"result": {}}, slow_auth)
    assert status == 409 and f"on bot {other['id']}" in late["message"]
    assert job["id"] not in c.typed_jobs.results
    shown = call(client, "get", f"/api/jobs/{job['id']}")[1]
    assert "ran out" in shown["timeline"][-2]["note"] and shown["timeline"][-1]["worker"] == other["id"]
    assert c.bots.get(slow["id"]).leases_lost == 1


def test_the_watchdog_takes_back_expired_leases(c):
    created = submit_at(c, 1000.0)  # through the service, with the clock under the test's control
    bot = register_at(c, "w", 1000.0)
    stored = c.bots.get(bot.id)
    assert bots.claim(c.bots, c.bot_ledger, c.registry, stored, Claim(), lambda: 1001.0, 30, lambda s: None)
    assert c.clock.watchdog(1020.0)["bot_leases_reclaimed"] == 0
    assert c.clock.watchdog(1032.0)["bot_leases_reclaimed"] == 1
    assert c.typed_jobs.get(created.id).status == "pending"


def test_a_lease_lost_on_the_last_attempt_fails_the_job(c):
    created = submit_at(c, 1000.0, max_attempts=1)
    bot = register_at(c, "w", 1000.0)
    bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(), lambda: 1001.0, 30, lambda s: None)
    assert bots.reclaim_expired(c.bots, c.bot_ledger, 1040.0) == 1
    failed = c.typed_jobs.get(created.id)
    assert failed.status == "failed" and "ran out" in failed.error
    assert c.typed_jobs.results[created.id].outcome == "failed"


def test_a_bot_may_ask_for_its_own_lease(c):
    submit_at(c, 1000.0)
    bot = bots.register(c.bots, c.registry, RegisterBot(name="quick", lease_s=10), 1000.0, 120)
    claimed = bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(), lambda: 1001.0, 90,
                         lambda s: None)
    assert claimed.lease_s == 10 and c.bots.get(bot.id).lease_until == 1011.0
    assert bots.reclaim_expired(c.bots, c.bot_ledger, 1012.0) == 1


def test_a_heartbeat_keeps_the_lease_and_the_bot_up(c):
    created = submit_at(c, 1000.0)
    bot = register_at(c, "w", 1000.0)
    bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(), lambda: 1001.0, 30, lambda s: None)
    beat = bots.heartbeat(c.bots, c.bots.get(bot.id), 1025.0, 30, 120)
    assert beat.state == "busy" and beat.jobs == [created.id]
    assert bots.reclaim_expired(c.bots, c.bot_ledger, 1040.0) == 0
    assert bots.list_bots(c.bots, 1025.0 + 121, 120).bots[0].state == "down"


def test_a_long_poll_claims_a_job_that_arrives_while_it_waits(c):
    bot = register_at(c, "w", 1000.0)
    moments = iter([1000.0, 1000.0, 1001.0, 1002.0])
    submitted = []

    def sleep(seconds):
        if not submitted:
            submitted.append(submit_at(c, 1001.0))

    claimed = bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(wait_s=5),
                         lambda: next(moments), 30, sleep)
    assert claimed is not None and claimed.job.id == submitted[0].id


# ---- bad input and abuse: a clear 4xx, and nothing changes ----

def test_a_bot_call_without_a_token_is_401_with_another_bots_token_403_and_for_an_unknown_bot_404(client, c):
    submit(client)
    bot, auth = register(client, "b1")
    other, other_auth = register(client, "b2")
    assert claim(client, bot, {})[0] == 401
    status, body = claim(client, bot, other_auth)
    assert status == 403 and "acts only for itself" in body["message"]
    assert claim(client, bot, {"Authorization": "Bearer pbt_wrong"})[0] == 403
    assert claim(client, {"id": "b-0000000000000000"}, auth)[0] == 404
    assert claim(client, {"id": "nonsense"}, auth)[0] == 404
    assert c.bots.get(bot["id"]).holding == {} and c.bots.get(other["id"]).holding == {}


def test_a_second_claim_while_holding_is_409_and_changes_nothing(client, c):
    submit(client)
    second = submit(client)
    bot, auth = register(client)
    claim(client, bot, auth)
    status, body = claim(client, bot, auth)
    assert status == 409 and "complete or fail it first" in body["message"]
    assert c.typed_jobs.get(second["id"]).status == "pending"


def test_acting_on_a_job_the_bot_does_not_hold_is_409_and_on_an_unknown_job_404(client, c):
    job = submit(client)
    holder, holder_auth = register(client, "holder")
    other, other_auth = register(client, "other")
    claim(client, holder, holder_auth)
    for action, body in (("complete", {"result": {}}), ("fail", {"error": "x"})):
        status, answer = call(client, "post", f"/api/bots/{other['id']}/jobs/{job['id']}/{action}", body, other_auth)
        assert status == 409 and f"on bot {holder['id']}" in answer["message"]
    assert call(client, "post", f"/api/bots/{other['id']}/jobs/{job['id']}/extend", None, other_auth)[0] == 409
    assert call(client, "post", f"/api/bots/{holder['id']}/jobs/j-ffffffffffffffff/complete", {"result": {}},
                holder_auth)[0] == 404
    assert c.typed_jobs.get(job["id"]).status == "running" and c.bots.get(holder["id"]).holding == {job["id"]: 1}


@pytest.mark.parametrize("body, field", [
    ({}, "result"), ({"result": [1, 2]}, "result"), ({"result": "done"}, "result"), ({"result": {}, "x": 1}, "x"),
])
def test_a_malformed_result_is_400_naming_the_field_and_the_job_stays_held(client, c, body, field):
    job = submit(client)
    bot, auth = register(client)
    claim(client, bot, auth)
    status, answer = call(client, "post", f"/api/bots/{bot['id']}/jobs/{job['id']}/complete", body, auth)
    assert status == 400 and answer["fields"][0]["field"] == field
    assert c.typed_jobs.get(job["id"]).status == "running" and job["id"] not in c.typed_jobs.results


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "b", "job_types": ["sms"]}, "job_types"),
    ({"name": "b", "max_jobs": 0}, "max_jobs"), ({"name": "b", "labels": {"k": 1}}, "labels.k"),
])
def test_a_bad_registration_is_400_and_stores_no_bot(client, c, body, field):
    status, answer = call(client, "post", "/api/bots", body)
    assert status == 400 and answer["fields"][0]["field"] == field
    assert c.bots.bots() == []


def test_a_claim_for_types_the_bot_did_not_register_for_is_400(client, c):
    submit(client)
    bot, auth = register(client, job_types=["report"])
    status, answer = claim(client, bot, auth, {"job_types": ["email"]})
    assert status == 400 and answer["fields"][0]["field"] == "job_types"
    assert claim(client, bot, auth)[0] == 204  # the email job is not for it
    assert claim(client, bot, auth, {"wait_s": 21})[0] == 400


def test_deleting_a_bot_needs_the_admin_token_or_its_own_and_hands_its_job_back(client, c):
    job = submit(client)
    bot, auth = register(client)
    other, other_auth = register(client, name="gpu-2")
    claim(client, bot, auth)
    assert call(client, "delete", f"/api/bots/{bot['id']}", None, other_auth)[0] == 403  # not for another bot
    assert call(client, "delete", f"/api/bots/{bot['id']}", None, {"Authorization": "Bearer nope"})[0] == 403
    assert call(client, "delete", f"/api/bots/{bot['id']}")[0] == 401
    assert len(c.bots.bots()) == 2 and c.typed_jobs.get(job["id"]).status == "running"  # refused: nothing changed
    assert call(client, "delete", f"/api/bots/{other['id']}", None, other_auth)[0] == 204  # deregisters itself
    assert call(client, "delete", f"/api/bots/{bot['id']}", None, ADMIN)[0] == 204
    assert c.bots.bots() == [] and c.typed_jobs.get(job["id"]).status == "pending"


def test_a_bot_that_deregisters_itself_gives_its_job_back_at_once(client, c):
    job = submit(client)
    bot, auth = register(client)
    assert claim(client, bot, auth)[0] == 200
    assert call(client, "delete", f"/api/bots/{bot['id']}", None, auth)[0] == 204
    assert c.bots.bots() == [] and c.typed_jobs.get(job["id"]).status == "pending"  # not when its lease runs out
    assert call(client, "delete", f"/api/bots/{bot['id']}", None, auth)[0] == 404
    successor, successor_auth = register(client, name="gpu-2")
    status, claimed = claim(client, successor, successor_auth)
    assert status == 200 and claimed["job"]["id"] == job["id"] and claimed["job"]["attempt"] == 2
    assert call(client, "get", f"/api/bots/{bot['id']}")[0] == 404
    assert claim(client, bot, auth)[0] == 404


def test_a_lambda_job_is_never_claimed_by_a_bot(client, c):
    status, _ = call(client, "post", "/api/jobs", {k: v for k, v in EMAIL.items() if k != "target"})
    assert status == 201
    bot, auth = register(client)
    assert claim(client, bot, auth)[0] == 204


# ---- rate limits on claims (admission/limits.py's grid, a counter per limit and window) ----

def submit_many(c, count, body=EMAIL, caller="alice", now=1000.0):
    return [typed.submit(c.typed_jobs, c.registry, c.admission, c.ticks_queue, body, caller, None, 3, now)[0]
            for _ in range(count)]


def claim_now(c, bot, now, **claim):
    return bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(**claim), lambda: now, 90,
                      lambda s: None)


def settle(c, bot, claimed, now):
    bots.complete(c.bots, c.bot_ledger, c.bots.get(bot.id), claimed.job.id, Complete(result={}), now)


def limit(c, per_minute, type=None, caller=None):
    c.typed_jobs.set_limit(f"type:{type}" if type else f"caller:{caller}", per_minute, 0.0)


def test_a_type_limit_caps_bot_claims_in_each_second_and_other_types_go_on(c):
    submit_many(c, 6)
    (report,) = submit_many(c, 1, REPORT, now=1001.0)  # behind the emails in the backlog
    limit(c, 120, type="email")  # two a second
    fleet = [register_at(c, f"w{i}", 1000.0) for i in range(4)]
    got = [claim_now(c, bot, 1000.3) for bot in fleet]
    kinds = [claimed.job.type for claimed in got if claimed]
    assert kinds == ["email", "email", "report"] and got[3] is None  # the third email waits for the next second
    assert got[2].job.id == report.id  # the held type did not hold back the report behind it
    assert claim_now(c, fleet[3], 1001.0).job.type == "email"


def test_a_caller_limit_holds_that_callers_jobs_and_not_another_callers(c):
    submit_many(c, 3, caller="alice")
    submit_many(c, 1, caller="bob")
    limit(c, 60, caller="alice")  # one a second
    fleet = [register_at(c, f"w{i}", 1000.0) for i in range(3)]
    got = [claim_now(c, bot, 1000.5) for bot in fleet]
    assert sorted(claimed.job.caller for claimed in got if claimed) == ["alice", "bob"] and got[2] is None


def test_a_limit_slower_than_one_a_second_gives_one_claim_in_each_of_its_intervals(c):
    submit_many(c, 5)
    limit(c, 6, type="email")  # one in each 10 s on the grid: [1000, 1010), [1010, 1020) ...
    bot = register_at(c, "w", 1000.0)
    taken = []
    for now in (1003.0, 1004.0, 1009.9, 1010.2, 1013.0, 1027.5):
        claimed = claim_now(c, bot, now)
        if claimed:
            taken.append(now)
            settle(c, bot, claimed, now)
    assert taken == [1003.0, 1010.2, 1027.5]


def test_over_a_minute_claims_never_exceed_the_limit(c):
    submit_many(c, 200)
    limit(c, 90, type="email")  # 1.5 a second: the grid alternates one and two
    fleet = [register_at(c, f"w{i}", 1000.0) for i in range(5)]
    per_second: dict[int, int] = {}
    now = 1000.0
    while now < 1060.0:
        for bot in fleet:
            claimed = claim_now(c, bot, now)
            if claimed:
                per_second[int(now)] = per_second.get(int(now), 0) + 1
                settle(c, bot, claimed, now)
        now += 0.25
    assert sum(per_second.values()) == 90 and set(per_second.values()) == {1, 2}


def test_a_limit_lifted_lets_claims_through_at_once(c):
    submit_many(c, 3)
    limit(c, 60, type="email")
    fleet = [register_at(c, f"w{i}", 1000.0) for i in range(3)]
    assert [bool(claim_now(c, bot, 1000.1)) for bot in fleet[:2]] == [True, False]
    limit(c, None, type="email")
    assert claim_now(c, fleet[1], 1000.2) and claim_now(c, fleet[2], 1000.3)


# ---- what a claim costs ----

class CountingBotStore:
    """The bots' twin, counting the reads a claim makes of every bot and of a job."""

    def __init__(self, store):
        self.store, self.calls = store, {"bots": 0, "job": 0}

    def __getattr__(self, name):
        found = getattr(self.store, name)
        if name in self.calls:
            def counted(*args, **kwargs):
                self.calls[name] += 1
                return found(*args, **kwargs)
            return counted
        return found


def test_a_long_poll_reads_every_bot_once_while_no_lease_can_run_out(c):
    waiting = register_at(c, "w", 1000.0)
    counting = CountingBotStore(c.bots)
    moments = iter([1000.0 + i for i in range(12)])
    assert bots.claim(counting, c.bot_ledger, c.registry, c.bots.get(waiting.id), Claim(wait_s=10),
                      lambda: next(moments), 90, lambda s: None) is None
    assert counting.calls["bots"] == 1


def test_a_long_poll_reclaims_a_lease_that_runs_out_while_it_waits_and_takes_the_job(c):
    (job,) = submit_many(c, 1)
    holder = register_at(c, "holder", 1000.0)
    bots.claim(c.bots, c.bot_ledger, c.registry, c.bots.get(holder.id), Claim(), lambda: 1000.0, 5, lambda s: None)
    waiting = register_at(c, "w", 1000.0)
    counting = CountingBotStore(c.bots)
    moments = iter([1001.0 + i for i in range(12)])
    claimed = bots.claim(counting, c.bot_ledger, c.registry, c.bots.get(waiting.id), Claim(wait_s=10),
                         lambda: next(moments), 90, lambda s: None)
    # The lease ran until 1005: polls at 1001-1005 read the bots once, the one at 1006 again and takes the job.
    assert (claimed.job.id, claimed.job.attempt) == (job.id, 2)
    assert counting.calls["bots"] == 2


def test_a_claim_answers_max_attempts_from_the_backlog_item_without_reading_the_job(c):
    submit_at(c, 1000.0, max_attempts=5)
    bot = register_at(c, "w", 1000.0)
    counting = CountingBotStore(c.bots)
    claimed = bots.claim(counting, c.bot_ledger, c.registry, c.bots.get(bot.id), Claim(), lambda: 1001.0, 90,
                         lambda s: None)
    assert claimed.job.max_attempts == 5 and counting.calls["job"] == 0


def test_a_claim_whose_backlog_read_other_bots_took_whole_reads_again_instead_of_answering_204(c):
    jobs = submit_many(c, 8)
    others = [register_at(c, f"o{i}", 1000.0) for i in range(5)]
    taken = set()
    me = register_at(c, "me", 1000.0)

    class Raced(CountingBotStore):
        def backlog(self, caller, limit, types, now):
            read = self.store.backlog(caller, limit, types, now)
            if not getattr(self, "raced", False):  # between this read and our claims, five bots take all it read
                self.raced = True
                for bot, item in zip(others, read):
                    self.store.claim(self.store.get(bot.id), item, now, now + 90)
                    taken.add(item.id)
            return read

    claimed = bots.claim(Raced(c.bots), c.bot_ledger, c.registry, c.bots.get(me.id), Claim(), lambda: 1001.0, 90,
                         lambda s: None)
    assert len(taken) == 5 and claimed is not None
    assert claimed.job.id in {job.id for job in jobs} - taken
