"""The bots' store and the ledger's bot settlement: one suite on the in-memory twin and on DynamoDB (moto)."""
import boto3
import pytest

from chalicelib.bots.dynamo import BotJobSettlement, DynamoBotStore
from chalicelib.bots.memory import MemoryBotStore
from chalicelib.bots.models import Bot, BotEvent
from chalicelib.core.errors import HoldsMaxJobs, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.resources import RESULTS_TABLE, STATE_TABLE, TYPED_JOBS_TABLE
from chalicelib.typed.dynamo import DynamoTypedJobStore
from chalicelib.typed.memory import MemoryTypedJobStore
from chalicelib.typed.models import TimelineEntry, TypedJob
from chalicelib.worker.dynamo import DynamoResultLedger
from chalicelib.worker.memory import MemoryResultLedger

T0 = 1_800_000_000.0
LEASE = 60.0


@pytest.fixture(params=["memory", "moto"])
def stores(request):
    """(typed jobs' store, bots' store, the bots' ledger)"""
    if request.param == "memory":
        typed = MemoryTypedJobStore()
        bots = MemoryBotStore(typed)
        yield typed, bots, MemoryResultLedger({"typed": bots.settle}, outcomes=typed.results)
        return
    request.getfixturevalue("moto_aws")
    client = boto3.client("dynamodb")
    yield (DynamoTypedJobStore(client, TYPED_JOBS_TABLE.name, STATE_TABLE.name, RESULTS_TABLE.name),
           DynamoBotStore(client, TYPED_JOBS_TABLE.name, STATE_TABLE.name),
           DynamoResultLedger(client, RESULTS_TABLE.name,
                              {"typed": BotJobSettlement(STATE_TABLE.name, TYPED_JOBS_TABLE.name)}))


def bot_job(i, priority=3, caller="alice", type="email", target="bot") -> TypedJob:
    return TypedJob(id=f"j-{i:016x}", type=type, priority=priority, status="pending", place="queued",
                    payload={"subject": f"item {i}"}, caller=caller, created_at=T0 + i, max_attempts=3, target=target,
                    timeline=[TimelineEntry(status="pending", at=T0 + i, note="created")])


def create(typed, *jobs):
    for job in jobs:
        typed.create(job, job.payload["subject"], None, job.created_at)
    return jobs


def register(bots, name="b1", max_jobs=1, now=T0) -> Bot:
    bot = Bot(id=f"b-{name}", name=name, max_jobs=max_jobs, token_hash="0" * 64, registered_at=now, last_beat_at=now)
    bots.register(bot)
    return bot


def claim_next(bots, bot, caller="alice", now=T0 + 100, types=None):
    (item,) = bots.backlog(caller, 1, types, now)
    bots.claim(bot, item, now, now + LEASE)
    return item


def outcome(job_id, bot, attempt=1, caller="alice", finished=T0 + 200, **changes):
    fields = dict(job_id=job_id, group=caller, origin="typed", outcome="done", result={"ok": True}, attempt=attempt,
                  worker=bot.id, finished_at=finished)
    return JobOutcome(**{**fields, **changes})


def counts(bots):
    return [(c.caller, c.backlog, c.in_flight, c.done, c.failed) for c in bots.callers()]


def test_a_bot_job_waits_in_the_bots_backlog_which_admission_never_reads(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1), bot_job(2, target="lambda"))
    assert [item.id for item in typed.backlog("alice", 10)] == [bot_job(2).id]
    assert [(c.caller, c.backlog) for c in typed.callers()] == [("alice", 1)]
    assert [item.id for item in bots.backlog("alice", 10, None, T0)] == [bot_job(1).id]
    assert counts(bots) == [("alice", 1, 0, 0, 0)]


def test_a_claim_runs_the_next_attempt_on_the_bot_and_takes_the_job_out_of_its_backlog(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1, priority=2), bot_job(2, priority=5))
    bot = register(bots)
    item = claim_next(bots, bot)
    assert item.id == bot_job(2).id  # highest priority first
    job = typed.get(item.id)
    assert (job.status, job.place, job.attempts, job.bot, job.started_at) == ("running", "none", 1, bot.id, T0 + 100)
    assert job.timeline[-1].worker == bot.id and "claimed by bot b1" in job.timeline[-1].note
    held = bots.get(bot.id)
    assert (held.holding, held.lease_until) == ({item.id: 1}, T0 + 100 + LEASE)
    assert [i.id for i in bots.backlog("alice", 10, None, T0 + 100)] == [bot_job(1).id]
    assert counts(bots) == [("alice", 1, 1, 0, 0)]
    assert typed.stats(0, 0).by_status == {"pending": 1, "running": 1}


def test_a_second_claim_while_holding_one_is_refused_and_changes_nothing(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1), bot_job(2))
    bot = register(bots)
    claim_next(bots, bot)
    (second,) = bots.backlog("alice", 1, None, T0 + 101)
    with pytest.raises(HoldsMaxJobs):
        bots.claim(bot, second, T0 + 101, T0 + 101 + LEASE)
    assert typed.get(second.id).status == "pending"
    assert [i.id for i in bots.backlog("alice", 10, None, T0 + 101)] == [second.id]
    assert counts(bots) == [("alice", 1, 1, 0, 0)]


def test_a_bot_registered_for_two_jobs_holds_two(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1), bot_job(2))
    bot = register(bots, max_jobs=2)
    claim_next(bots, bot)
    claim_next(bots, bot, now=T0 + 101)
    assert len(bots.get(bot.id).holding) == 2


def test_two_bots_claiming_the_same_job_one_wins(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1))
    first, second = register(bots, "b1"), register(bots, "b2")
    (item,) = bots.backlog("alice", 1, None, T0)
    bots.claim(first, item, T0 + 1, T0 + 1 + LEASE)
    with pytest.raises(StaleWrite):
        bots.claim(second, item, T0 + 2, T0 + 2 + LEASE)
    assert typed.get(item.id).bot == first.id
    assert bots.get(second.id).holding == {}


def test_a_claim_can_ask_for_some_types_only(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1, type="email", priority=5), bot_job(2, type="report"))
    assert [i.id for i in bots.backlog("alice", 10, {"report"}, T0)] == [bot_job(2).id]
    assert [i.id for i in bots.backlog("alice", 10, {"report", "email"}, T0)] == [bot_job(1).id, bot_job(2).id]


def test_a_completed_job_settles_once_through_the_ledger_and_the_bot_lets_it_go(stores):
    typed, bots, ledger = stores
    create(typed, bot_job(1))
    bot = register(bots)
    item = claim_next(bots, bot)
    done = outcome(item.id, bot)
    assert ledger.record([done], T0 + 200) == [done]
    assert ledger.record([outcome(item.id, bot)], T0 + 201) == []  # a repeated complete counts nothing
    job = typed.get(item.id)
    assert (job.status, job.result, job.timeline[-1].worker) == ("completed", {"ok": True}, bot.id)
    held = bots.get(bot.id)
    assert (held.holding, held.jobs_done, held.jobs_failed) == ({}, 1, 0)
    assert counts(bots) == [("alice", 0, 0, 1, 0)]
    assert [(e.job_id, e.event) for e in bots.history(bot.id, 10)] == [(item.id, "completed")]
    assert typed.stats(0, 0).by_status == {"pending": 0, "running": 0, "completed": 1}


def test_a_lost_lease_hands_the_job_back_and_a_late_complete_from_the_old_bot_changes_nothing(stores):
    typed, bots, ledger = stores
    create(typed, bot_job(1))
    slow, other = register(bots, "slow"), register(bots, "other")
    item = claim_next(bots, slow)
    with pytest.raises(StaleWrite):  # the lease still holds at T0 + 150
        bots.hand_back(slow.id, typed.get(item.id), BotEvent(at=T0 + 150, job_id=item.id, attempt=1,
                                                             event="lease_lost"), None, T0 + 150, expired_only=True)
    expired = T0 + 100 + LEASE + 1
    bots.hand_back(slow.id, typed.get(item.id), BotEvent(at=expired, job_id=item.id, attempt=1, event="lease_lost",
                                                         note="lease of bot slow ran out"), None, expired,
                   expired_only=True)
    job = typed.get(item.id)
    assert (job.status, job.place, job.error) == ("pending", "queued", "lease of bot slow ran out")
    assert bots.get(slow.id).leases_lost == 1
    again = claim_next(bots, other, now=expired + 1)
    assert typed.get(again.id).attempts == 2
    assert ledger.record([outcome(item.id, slow, attempt=1)], expired + 2) == []
    assert typed.get(item.id).status == "running"
    late_done = outcome(item.id, other, attempt=2, finished=expired + 3)
    assert ledger.record([late_done], expired + 3) == [late_done]
    assert counts(bots) == [("alice", 0, 0, 1, 0)]
    assert (bots.get(slow.id).jobs_done, bots.get(other.id).jobs_done) == (0, 1)


def test_a_complete_and_a_hand_back_of_the_same_attempt_cannot_both_land(stores):
    typed, bots, ledger = stores
    create(typed, bot_job(1))
    bot = register(bots)
    item = claim_next(bots, bot)
    running = typed.get(item.id)
    assert ledger.record([outcome(item.id, bot)], T0 + 200)
    with pytest.raises(StaleWrite):
        bots.hand_back(bot.id, running, BotEvent(at=T0 + 500, job_id=item.id, attempt=1, event="lease_lost"), None,
                       T0 + 500, expired_only=True)
    assert typed.get(item.id).status == "completed"
    assert counts(bots) == [("alice", 0, 0, 1, 0)]


def test_a_retried_attempt_waits_out_its_backoff_before_it_can_be_claimed_again(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1))
    bot = register(bots)
    item = claim_next(bots, bot)
    bots.hand_back(bot.id, typed.get(item.id), BotEvent(at=T0 + 110, job_id=item.id, attempt=1, event="retried",
                                                        note="retry in 5 s: disk full"), T0 + 115, T0 + 110)
    assert bots.backlog("alice", 10, None, T0 + 114) == []
    (ready,) = bots.backlog("alice", 10, None, T0 + 115)
    assert (ready.id, ready.attempts) == (item.id, 1)
    assert (bots.get(bot.id).jobs_failed, bots.get(bot.id).holding) == (1, {})
    assert typed.get(item.id).error == "retry in 5 s: disk full"


def test_an_admin_retry_of_a_failed_bot_job_puts_it_back_in_the_bots_backlog_and_the_next_attempt_settles(stores):
    typed, bots, ledger = stores
    create(typed, bot_job(1))
    bot = register(bots)
    item = claim_next(bots, bot)
    assert ledger.record([outcome(item.id, bot, outcome="failed", error="bad input", result=None)], T0 + 200)
    failed = typed.get(item.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    typed.retry(failed, T0 + 300)
    again = typed.get(item.id)
    assert (again.status, again.place, again.attempts, again.error, again.target) == ("pending", "queued", 0, None,
                                                                                        "bot")
    assert typed.backlog("alice", 10) == [] and typed.callers() == []  # admission never sees it
    (ready,) = bots.backlog("alice", 10, None, T0 + 300)
    assert (ready.id, ready.attempts, ready.target) == (item.id, 0, "bot")
    assert counts(bots) == [("alice", 1, 0, 0, 1)]
    claim_next(bots, bot, now=T0 + 301)
    assert typed.get(item.id).attempts == 1
    done = outcome(item.id, bot, finished=T0 + 302)
    assert ledger.record([done], T0 + 302) == [done]  # the failed outcome no longer blocks the new one
    assert typed.get(item.id).status == "completed"
    assert counts(bots) == [("alice", 0, 0, 1, 1)]  # done and failed count settlements, the failure included
    assert {k: v for k, v in typed.stats(0, 0).by_status.items() if v} == {"completed": 1}
    assert (bots.get(bot.id).jobs_done, bots.get(bot.id).jobs_failed) == (1, 1)


def test_heartbeat_renews_the_lease_and_extend_needs_the_job_held(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1))
    bot = register(bots)
    item = claim_next(bots, bot)
    assert bots.beat(bot.id, T0 + 130, T0 + 190).lease_until == T0 + 190
    bots.extend(bot.id, item.id, T0 + 140, T0 + 200)
    assert bots.get(bot.id).lease_until == T0 + 200
    with pytest.raises(StaleWrite):
        bots.extend(bot.id, "j-ffffffffffffffff", T0 + 141, T0 + 201)
    with pytest.raises(StaleWrite):
        bots.beat("b-nobody", T0, T0)


def test_a_bot_holding_a_job_cannot_be_deleted_until_it_lets_it_go(stores):
    typed, bots, ledger = stores
    create(typed, bot_job(1))
    bot = register(bots)
    item = claim_next(bots, bot)
    with pytest.raises(StaleWrite):
        bots.delete(bot.id)
    ledger.record([outcome(item.id, bot)], T0 + 200)
    bots.delete(bot.id)
    assert bots.get(bot.id) is None and bots.bots() == []


def test_callers_carry_their_admission_weight(stores):
    typed, bots, _ = stores
    create(typed, bot_job(1, caller="bob"))
    typed.set_weight("bob", 3.0, T0)
    assert [(c.caller, c.weight) for c in bots.callers()] == [("bob", 3.0)]


# ---- rate limits: a claim takes a slot of its limits' window in its own transaction ----

def window(slots, start=T0 + 100):
    from chalicelib.admission.limits import LimitWindow
    return LimitWindow(start, start + 1, slots)


def test_a_claim_takes_a_slot_and_one_past_the_windows_slots_is_refused_changing_nothing(stores):
    from chalicelib.core.errors import RateLimited
    typed, bots, _ = stores
    create(typed, bot_job(1), bot_job(2), bot_job(3))
    first, second, third = (register(bots, name) for name in ("b1", "b2", "b3"))
    limits = {"type:email": window(2), "caller:alice": window(5)}
    for bot in (first, second):
        (item,) = bots.backlog("alice", 1, None, T0 + 100)
        bots.claim(bot, item, T0 + 100, T0 + 100 + LEASE, limits)
    (item,) = bots.backlog("alice", 1, None, T0 + 100)
    with pytest.raises(RateLimited) as refused:
        bots.claim(third, item, T0 + 100.5, T0 + 100 + LEASE, limits)
    assert refused.value.keys == {"type:email"}
    assert typed.get(item.id).status == "pending" and bots.get(third.id).holding == {}
    assert counts(bots) == [("alice", 1, 2, 0, 0)]
    # The next window has its own slots.
    bots.claim(third, item, T0 + 101, T0 + 101 + LEASE, {"type:email": window(2, T0 + 101)})
    assert typed.get(item.id).status == "running"


def test_a_refused_claim_leaves_the_windows_slots_as_they_were(stores):
    from chalicelib.core.errors import HoldsMaxJobs
    typed, bots, _ = stores
    create(typed, bot_job(1), bot_job(2))
    busy, idle = register(bots, "busy"), register(bots, "idle")
    claim_next(bots, busy)
    (item,) = bots.backlog("alice", 1, None, T0 + 100)
    with pytest.raises(HoldsMaxJobs):  # the bot holds its one job: the claim lands nothing, the slot stays free
        bots.claim(busy, item, T0 + 100, T0 + 100 + LEASE, {"type:email": window(1)})
    bots.claim(idle, item, T0 + 100, T0 + 100 + LEASE, {"type:email": window(1)})
    assert typed.get(item.id).bot == idle.id


def test_racing_claims_from_one_read_take_no_more_than_the_windows_slots(stores):
    """Eight bots read the backlog at once and each claims its own job in the same window. Each claim's
    transaction holds the counter's condition, and DynamoDB serialises transactions on an item, so the order they
    land in does not matter: run one after another here (moto in-process is not thread-safe; the in-memory twin's
    lock gives the same order)."""
    from chalicelib.core.errors import RateLimited
    typed, bots, _ = stores
    create(typed, *(bot_job(i) for i in range(1, 9)))
    fleet = [register(bots, f"b{i}") for i in range(8)]
    items = bots.backlog("alice", 8, None, T0 + 100)

    def try_claim(pair):
        bot, item = pair
        try:
            bots.claim(bot, item, T0 + 100, T0 + 100 + LEASE, {"type:email": window(3)})
            return True
        except RateLimited:
            return False

    landed = [try_claim(pair) for pair in zip(fleet, items)]
    assert landed == [True, True, True, False, False, False, False, False]
    assert counts(bots) == [("alice", 5, 3, 0, 0)]
