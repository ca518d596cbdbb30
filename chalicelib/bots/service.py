"""Bots: register, authenticate, heartbeat, claim with a lease, complete, fail; leases that ran out come back.

A bot is a worker outside Lambda that pulls typed jobs whose target is `bot`
over HTTP. Its claim takes the next job the same way admission orders typed
jobs (the caller with the fewest jobs in flight per unit of weight first,
highest priority then oldest within a caller), atomically: one conditional
transaction moves the job from its backlog to `running` on the bot. The claim
is a lease (`PACER_BOT_LEASE_S`): each heartbeat or extend renews it for every
job the bot holds. When it runs out, the next claim (any bot's) or the
one-minute watchdog hands the job back to its backlog, or fails it if that was
its last attempt. Complete and fail settle through the result ledger, like
the Lambda workers: one result item per job, the counters moved once, the bot
in the timeline; a retryable failure goes back to the backlog after the
shared retry policy's backoff.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import random
import re
import secrets
from typing import Callable

from chalicelib.bots.models import (
    Bot,
    BotEvent,
    BotList,
    BotSummary,
    BotView,
    Claim,
    Claimed,
    ClaimedJob,
    Complete,
    Fail,
    HistoryEntry,
    Leased,
    Registered,
    RegisterBot,
)
from chalicelib.admission.limits import limit_window
from chalicelib.admission.models import caller_limit, held_types
from chalicelib.bots.store import BotStore
from chalicelib.core.errors import (
    Conflict,
    Forbidden,
    HoldsMaxJobs,
    NotFound,
    RateLimited,
    StaleWrite,
    Unauthenticated,
)
from chalicelib.core.jobs import JobOutcome
from chalicelib.core.times import iso
from chalicelib.core.validation import invalid
from chalicelib.observability import emf
from chalicelib.observability.logs import correlated
from chalicelib.typed.executors import Registry
from chalicelib.typed.keys import typed_limit_keys
from chalicelib.typed.models import TypedBacklogItem, TypedJob
from chalicelib.worker.ledger import ResultLedger, record_outcomes
from chalicelib.worker.retry import RetryPolicy

log = logging.getLogger(__name__)

BOT_ID = re.compile(r"^b-[0-9a-f]{16}$")
TOKEN_PREFIX = "pbt_"  # says what a leaked string is
HISTORY_SHOWN = 20
CLAIM_POLL_S = 1.0  # a long-polling claim looks again this often
BACKLOG_READ = 5  # a caller's backlog head read per claim: enough to step past a job another bot took meanwhile
BACKLOG_RACES = 3  # reads again when other bots took every item read, before the claim moves on to the next caller


def new_bot_id() -> str:
    return "b-" + secrets.token_hex(8)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_types(field: str, types: list[str] | None, registry: Registry) -> None:
    unknown = [t for t in types or [] if t not in registry]
    if unknown:
        raise invalid([{"field": field, "message": f"unknown job type {unknown[0]!r}; known: "
                                                   f"{', '.join(registry.names)}"}])


def register(store: BotStore, registry: Registry, command: RegisterBot, now: float,
             down_after_s: float) -> Registered:
    """A new bot, and its token: shown here once; only its sha256 is stored."""
    _check_types("job_types", command.job_types, registry)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    bot = Bot(id=new_bot_id(), name=command.name, labels=command.labels, job_types=command.job_types,
              max_jobs=command.max_jobs, lease_s=command.lease_s, token_hash=token_hash(token), registered_at=now, last_beat_at=now)
    store.register(bot)
    log.info("bot registered", extra={"bot": bot.id, "bot_name": bot.name})
    return Registered(**summary(bot, now, down_after_s).model_dump(), token=token)


def authenticate(store: BotStore, bot_id: str, authorization: str | None) -> Bot:
    """The bot the path names, if the request carries its token: 401 without one, 404 for an unknown bot, 403
    for any other token (one bot cannot act for another)."""
    if not authorization:
        raise Unauthenticated("bot endpoint: send Authorization: Bearer <the bot's token>")
    bot = store.get(bot_id) if BOT_ID.match(bot_id) else None
    if bot is None:
        raise NotFound(f"no bot {bot_id}")
    scheme, _, token = authorization.partition(" ")
    # Compared in constant time, as the admin token is.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token_hash(token.strip()), bot.token_hash):
        raise Forbidden(f"the token is not bot {bot_id}'s: a bot acts only for itself")
    return bot


def heartbeat(store: BotStore, bot: Bot, now: float, lease_s: float, down_after_s: float) -> BotSummary:
    """The bot is alive; every job it holds is leased for another lease (its own, or the stage's `lease_s`)."""
    try:
        return summary(store.beat(bot.id, now, now + (bot.lease_s or lease_s)), now, down_after_s)
    except StaleWrite as exc:
        raise NotFound(f"no bot {bot.id}") from exc


def claim(store: BotStore, ledger: ResultLedger, registry: Registry, bot: Bot, command: Claim,
          clock: Callable[[], float], lease_s: float, sleep: Callable[[float], None]) -> Claimed | None:
    """The next job this bot may run, leased to it; None when there is none within `command.wait_s`."""
    _check_types("job_types", command.job_types, registry)
    types = set(command.job_types) if command.job_types is not None else None
    if bot.job_types is not None:
        outside = sorted((types or set()) - set(bot.job_types))
        if outside:
            raise invalid([{"field": "job_types", "message": f"bot {bot.id} registered for "
                                                             f"{', '.join(bot.job_types)} only, not {outside[0]!r}"}])
        types = types if types is not None else set(bot.job_types)
    lease_s = bot.lease_s or lease_s
    if len(bot.holding) >= bot.max_jobs:
        raise HoldsMaxJobs(f"bot {bot.id} holds {', '.join(bot.holding)} already: complete or fail it first "
                           f"(it may hold {bot.max_jobs} at once)")
    all_types = set(registry.names)
    deadline = clock() + command.wait_s
    reclaim_at = -math.inf
    while True:
        now = clock()
        if now > reclaim_at:
            # Reading every bot is the costly part: done once per claim call, and again in a long poll only once
            # a lease seen then can have run out (a lease taken meanwhile waits for the next claim or the watchdog).
            reclaim_at = _reclaim(store, ledger, now)[1]
        claimed = _claim_once(store, bot, types, all_types, store.limits(), now, lease_s)
        if claimed is not None or now >= deadline:
            return claimed
        sleep(min(CLAIM_POLL_S, deadline - now))


def _claim_once(store: BotStore, bot: Bot, types: set[str] | None, all_types: set[str], limits: dict[str, float],
                now: float, lease_s: float) -> Claimed | None:
    """Fairness as admission's: the caller with the fewest bot jobs in flight per unit of weight first (ties in a
    random order, so no caller always wins them), then the head of its backlog; rate limits as admission's: a job
    takes a slot of its type's and its caller's limits in the window now falls in (admission/limits.py), in the claim's
    own transaction, and a limit with none left holds its jobs back while the others go on."""
    windows = {key: limit_window(per_minute, now) for key, per_minute in limits.items()}
    held = {key for key, window in windows.items() if window.slots == 0}
    callers = [c for c in store.callers() if c.backlog > 0]
    random.shuffle(callers)
    for caller in sorted(callers, key=lambda c: c.in_flight / c.weight):
        races = 0
        while caller_limit(caller.caller) not in held:
            wanted = _types_past(held, types, all_types)
            items = store.backlog(caller.caller, BACKLOG_READ, wanted, now) if wanted != set() else []
            limited_now, raced = set(held), False
            for item in items:
                keys = [key for key in typed_limit_keys(item) if key in windows]
                if any(key in held for key in keys):
                    continue
                try:
                    store.claim(bot, item, now, now + lease_s, {key: windows[key] for key in keys})
                except RateLimited as exc:
                    held |= exc.keys  # the window's slots are gone: its jobs wait for the next window
                    continue
                except StaleWrite:
                    raced = True
                    continue  # another bot took it, or it was cancelled: the next one
                return _claimed(store, bot, item, now, lease_s)
            # Read again past the held types if a limit turned items away (as admission does), or if other bots
            # took every item read (a few times: many bots on one caller's backlog would otherwise answer 204
            # while it still holds jobs).
            if held == limited_now and not (raced and len(items) == BACKLOG_READ and races < BACKLOG_RACES):
                break
            races += raced
    return None


def _types_past(held: set[str], types: set[str] | None, all_types: set[str]) -> set[str] | None:
    """The types a backlog read asks for: the bot's (None: any) without those whose limits are held."""
    held_now = set(held_types(held))
    if not held_now:
        return types
    return (types if types is not None else all_types) - held_now


def _claimed(store: BotStore, bot: Bot, item: TypedBacklogItem, now: float, lease_s: float) -> Claimed:
    attempt = item.attempts + 1
    max_attempts = item.max_attempts
    if max_attempts is None:  # a backlog item written before it carried max_attempts
        job = store.job(item.id)
        max_attempts = job.max_attempts if job else attempt
    with correlated(item.correlation_id):
        log.info("bot job claimed", extra={"job_id": item.id, "bot": bot.id, "attempt": attempt})
    return Claimed(job=ClaimedJob(id=item.id, type=item.type, priority=item.priority, payload=item.payload,
                                  caller=item.caller, attempt=attempt, max_attempts=max_attempts,
                                  created_at=iso(item.created_at)),
                   lease_until=iso(now + lease_s), lease_s=lease_s)


def _held(store: BotStore, bot: Bot, job_id: str) -> TypedJob:
    job = store.job(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if job.status != "running" or job.bot != bot.id or bot.holding.get(job_id) != job.attempts:
        raise Conflict(f"bot {bot.id} does not hold job {job_id}: it is {job.status}"
                       + (f" on bot {job.bot}" if job.bot and job.bot != bot.id else "")
                       + " (a lease that ran out gives the job back to its backlog)")
    return job


def _settle(ledger: ResultLedger, job: TypedJob, bot_id: str, now: float, result: dict[str, object] | None = None,
            error: str | None = None) -> None:
    outcome = JobOutcome(job_id=job.id, group=job.caller, origin="typed", submitted_at=job.created_at,
                         started_at=job.started_at, type=job.type, outcome="failed" if error else "done",
                         result=result, error=error, attempt=job.attempts, worker=bot_id, finished_at=now,
                         correlation_id=job.correlation_id)
    recorded = record_outcomes(ledger, [outcome], now)
    if not recorded:
        raise Conflict(f"bot {bot_id} no longer holds job {job.id} (attempt {job.attempts}): nothing changed")
    emf.outcomes_recorded(recorded)


def complete(store: BotStore, ledger: ResultLedger, bot: Bot, job_id: str, command: Complete, now: float) -> TypedJob:
    """The job is done: its result is recorded once, by the ledger, if this bot still holds this attempt."""
    job = _held(store, bot, job_id)
    _settle(ledger, job, bot.id, now, result=command.result)
    return store.job(job_id) or job


def fail(store: BotStore, ledger: ResultLedger, bot: Bot, job_id: str, command: Fail, now: float,
         policy: RetryPolicy) -> TypedJob:
    """The attempt failed: back to the backlog after the retry policy's backoff, or, on the last attempt or when
    not retryable, recorded failed by the ledger."""
    job = _held(store, bot, job_id)
    if command.retryable and job.attempts < job.max_attempts:
        delay = policy.delay_before(job.attempts + 1)
        note = f"retry in {delay} s: {command.error}"
        try:
            store.hand_back(bot.id, job, BotEvent(at=now, job_id=job.id, attempt=job.attempts, event="retried",
                                                  note=note[:500]), now + delay, now)
        except StaleWrite as exc:
            raise Conflict(f"bot {bot.id} no longer holds job {job_id}: nothing changed") from exc
    else:
        _settle(ledger, job, bot.id, now, error=command.error)
    return store.job(job_id) or job


def extend(store: BotStore, bot: Bot, job_id: str, now: float, lease_s: float) -> Leased:
    """Renew the lease on a job the bot holds (and on any other it holds: a bot has one lease)."""
    _held(store, bot, job_id)
    lease_s = bot.lease_s or lease_s
    try:
        store.extend(bot.id, job_id, now, now + lease_s)
    except StaleWrite as exc:
        raise Conflict(f"bot {bot.id} no longer holds job {job_id}") from exc
    return Leased(job_id=job_id, lease_until=iso(now + lease_s))


def reclaim_expired(store: BotStore, ledger: ResultLedger, now: float) -> int:
    """Every job whose bot's lease ran out goes back to its backlog, or is failed on its last attempt. Run by each
    claim and by the watchdog; each hand-back is conditional on the lease having run out, so a heartbeat that
    lands first keeps the job, and two reclaimers hand it back once."""
    return _reclaim(store, ledger, now)[0]


def _reclaim(store: BotStore, ledger: ResultLedger, now: float) -> tuple[int, float]:
    """reclaim_expired, and the earliest lease still running: until then, no lease seen here can run out."""
    reclaimed, next_expiry = 0, math.inf
    for bot in store.bots():
        if not bot.holding:
            continue
        if bot.lease_until >= now:
            next_expiry = min(next_expiry, bot.lease_until)
            continue
        for job_id, attempt in bot.holding.items():
            job = store.job(job_id)
            if job is None or job.status != "running" or job.attempts != attempt or job.bot != bot.id:
                continue
            note = f"the lease of bot {bot.name} ({bot.id}) ran out at {iso(bot.lease_until)}"
            try:
                if attempt < job.max_attempts:
                    store.hand_back(bot.id, job, BotEvent(at=now, job_id=job_id, attempt=attempt, event="lease_lost",
                                                          note=note), None, now, expired_only=True)
                else:  # its last attempt: failed, as a Lambda job whose last attempt fails
                    _settle(ledger, job, bot.id, now, error=note + " on the job's last attempt")
            except (StaleWrite, Conflict):
                continue  # settled, renewed or reclaimed meanwhile
            log.warning("bot lease ran out; job taken back", extra={"job_id": job_id, "bot": bot.id,
                                                                    "attempt": attempt})
            reclaimed += 1
    return reclaimed, next_expiry


def delete(store: BotStore, ledger: ResultLedger, bot_id: str, now: float) -> None:
    """Forget a bot; the jobs it holds go back to their backlogs at once."""
    for _ in range(5):
        bot = store.get(bot_id) if BOT_ID.match(bot_id) else None
        if bot is None:
            raise NotFound(f"no bot {bot_id}")
        for job_id, attempt in bot.holding.items():
            job = store.job(job_id)
            if job is not None and job.status == "running" and job.attempts == attempt:
                try:
                    store.hand_back(bot_id, job, BotEvent(at=now, job_id=job_id, attempt=attempt, event="lease_lost",
                                                          note=f"bot {bot.name} ({bot_id}) was deleted"), None, now)
                except StaleWrite:
                    pass  # settled meanwhile
        try:
            store.delete(bot_id)
            return
        except StaleWrite:
            continue  # it claimed meanwhile: hand that back too
    raise Conflict(f"bot {bot_id} kept claiming while it was being deleted; try again")


def summary(bot: Bot, now: float, down_after_s: float) -> BotSummary:
    silent = now - bot.last_beat_at
    return BotSummary(
        id=bot.id, name=bot.name, state="down" if silent > down_after_s else "busy" if bot.holding else "idle",
        labels=bot.labels, job_types=bot.job_types, max_jobs=bot.max_jobs, lease_s=bot.lease_s, jobs=sorted(bot.holding),
        lease_until=iso(bot.lease_until) if bot.holding else None, registered_at=iso(bot.registered_at),
        last_beat_at=iso(bot.last_beat_at), seconds_since_beat=round(silent, 1), jobs_done=bot.jobs_done,
        jobs_failed=bot.jobs_failed, leases_lost=bot.leases_lost)


def list_bots(store: BotStore, now: float, down_after_s: float) -> BotList:
    bots = sorted(store.bots(), key=lambda b: b.registered_at)
    return BotList(bots=[summary(bot, now, down_after_s) for bot in bots], down_after_s=down_after_s)


def view(store: BotStore, bot_id: str, now: float, down_after_s: float) -> BotView:
    bot = store.get(bot_id) if BOT_ID.match(bot_id) else None
    if bot is None:
        raise NotFound(f"no bot {bot_id}")
    return BotView(**summary(bot, now, down_after_s).model_dump(), history=[
        HistoryEntry(at=iso(e.at), job_id=e.job_id, attempt=e.attempt, event=e.event, note=e.note)
        for e in store.history(bot_id, HISTORY_SHOWN)])
