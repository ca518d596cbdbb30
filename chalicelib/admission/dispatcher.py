"""Fair admission: from per-caller backlogs in DynamoDB into a bounded in-flight window on the jobs queue.

`Dispatcher.dispatch` (run on submit, as workers settle messages, and by the
1-minute watchdog) fills the free part of the window, giving each caller with
a backlog a fair share and rotating who gets the remainder: round robin with
a quantum of a message. Fair compute and typed jobs each run one, over their
own store (see admission/store.py), so both share one admission path.
"""
from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterator, TypeVar

from chalicelib.admission.limits import Limiter, delay_until, next_giving_moment, not_before, slot_second
from chalicelib.admission.models import ASK_DELAY_S, Lease, ask_for_pass, caller_limit
from chalicelib.admission.store import AdmissionStore, Item
from chalicelib.core.jobs import JobEnvelope, JobSpec, Origin, OutboundMessage
from chalicelib.core.queue import MessageQueue
from chalicelib.observability import emf
from chalicelib.observability.logs import log_jobs

log = logging.getLogger(__name__)

def fair_shares(backlogs: dict[str, int], free: int, cursor: int, in_flight: dict[str, int] | None = None,
                quantum: int = 1, weights: dict[str, float] | None = None,
                starts: dict[str, float] | None = None) -> dict[str, int]:
    """Split `free` slots of the in-flight window across the callers with a backlog: weighted round robin.

    Each `quantum` of slots (a message's worth) goes to the wanting caller
    whose service, in jobs per unit of weight, is least: where it `starts`
    (models.Service: what earlier passes admitted to it) plus the slots
    given in this pass. Equals go to the caller with the fewest jobs in flight
    per unit of weight, then in rotation from `cursor`. So a caller of weight
    2 is admitted twice the jobs of one of weight 1 while both are
    backlogged, and a caller that has just arrived (it starts level with the
    least served, and holds nothing) is first in line: a newcomer waits for
    slots to free, not for a spiking caller's backlog. Whole quanta keep
    messages full: ten freed slots split five and five would cost two ledger
    transactions where one does.
    """
    order = sorted(caller for caller, backlog in backlogs.items() if backlog > 0)
    if not order:
        return {}
    start = cursor % len(order)
    order = order[start:] + order[:start]
    held = {caller: max(0, (in_flight or {}).get(caller, 0)) for caller in order}
    weight = {caller: (weights or {}).get(caller, 1.0) for caller in order}
    served = {caller: (starts or {}).get(caller, 0.0) for caller in order}
    shares = dict.fromkeys(order, 0)
    left = max(0, free)
    while left > 0:
        wanting = [c for c in order if shares[c] < backlogs[c]]
        if not wanting:
            break
        # min keeps the first of equals: the rotation
        chosen = min(wanting, key=lambda c: (served[c] + shares[c] / weight[c], (held[c] + shares[c]) / weight[c]))
        given = min(max(1, quantum), left, backlogs[chosen] - shares[chosen])
        shares[chosen] += given
        left -= given
    return {caller: share for caller, share in shares.items() if share}


Chunked = TypeVar("Chunked")


def round_robin_chunks(chunks: dict[str, list[Chunked]], order: list[str]) -> Iterator[tuple[Chunked, str]]:
    """(chunk, caller) pairs taking one chunk of each caller in turn, in `order`."""
    for turn in range(max((len(c) for c in chunks.values()), default=0)):
        for caller in order:
            if turn < len(chunks[caller]):
                yield chunks[caller][turn], caller


def no_limits(item: object) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Chunk(Generic[Item]):
    """One message's worth of a caller's items, and the wall-clock second their rate limits' slots lie in (see
    Limiter.take)."""

    items: list[Item]
    second: int = 0


def chunked(timed: list[tuple[float, Item]], size: int) -> list[Chunk[Item]]:
    """Consecutive items whose slots lie in the same second, `size` to a message."""
    chunks: list[Chunk[Item]] = []
    for slot, item in timed:
        second = slot_second(slot)
        if not chunks or chunks[-1].second != second or len(chunks[-1].items) >= size:
            chunks.append(Chunk([], second))
        chunks[-1].items.append(item)
    return chunks


@dataclass
class Dispatcher(Generic[Item]):
    """Fair admission from one feature's per-caller backlogs: fair compute's (origin "compute") and the typed
    jobs' (origin "typed", whose store promotes due scheduled jobs and holds back while paused, and whose jobs
    may be under rate limits)."""

    store: AdmissionStore[Item]
    jobs: MessageQueue
    origin: Origin
    job_spec: Callable[[Item], JobSpec]  # a backlog item as the job its message carries
    max_in_flight: int
    jobs_per_message: int
    limited_by: Callable[[Item], tuple[str, ...]] = no_limits  # the rate-limit keys an item is under
    ticks: MessageQueue | None = None  # where the next pass is asked for while a rate limit holds jobs back
    # No longer than the shortest timeout of a function that dispatches (pace_tick's 10 s): a holder killed at
    # its timeout stalls admission at most this long. A pass that outlives it is harmless: admit_many moves only
    # items still in the backlog, so a second dispatcher never admits a job twice.
    lease_s: float = 10.0
    resend_after_s: float = 60.0
    # The outbox is read for stale messages at most this often per process (each read is a Query on every pass
    # otherwise): a message lost to a crash between admitting and sending goes out 60-75 s after its admission.
    outbox_check_every_s: float = 15.0
    clock: Callable[[], float] = time.time
    max_passes: int = 8  # a bound on the passes one trigger makes for others (see dispatch)
    budget_s: float = 2.0  # nor does it start one for others after this long (see dispatch)
    _outbox_checked_at: float = field(default=-math.inf, init=False)

    def dispatch(self, now: float) -> int:
        """Admit what fits in the in-flight window, fairly. Returns the jobs admitted (0 if another dispatcher ran).

        A trigger that finds the lease held is not lost: it asks the holder to
        go round once more, so slots freed during a pass are filled. The
        holder goes round at most `max_passes` times, and starts no pass for
        others once `budget_s` has gone by: under a steady stream of submits
        someone always asks, and the holder (an HTTP request, or a function
        with a 10 s timeout that would die holding the lease) would never
        answer. What asks during the last pass waits for the next trigger,
        which under such a stream comes at once (and the watchdog comes
        within a minute).
        """
        holder = secrets.token_hex(8)
        lease = self.store.take_lease(holder, now, self.lease_s)
        if lease is None:
            return 0
        started = self.clock()
        admitted = 0
        for passes in range(1, self.max_passes + 1):
            try:
                admitted += self._admit_once(now, lease)
            except BaseException:
                lease.cursor += 1
                self.store.release_lease(holder, lease, now, self.lease_s, final=True)
                raise
            lease.cursor += 1
            now = self.clock()
            last = passes == self.max_passes or now - started >= self.budget_s
            if self.store.release_lease(holder, lease, now, self.lease_s, final=last):
                break
        return admitted

    def _admit_once(self, now: float, lease: Lease) -> int:
        began = self.clock()
        self._resend_stale_outbox(now)
        if lease.paused:
            return 0
        limiter = Limiter(lease, now)
        counts = self.store.callers()
        held = {c.caller: c.in_flight for c in counts}
        free = self.max_in_flight - sum(max(0, n) for n in held.values())
        backlogs = {c.caller: limiter.allowance(caller_limit(c.caller), c.backlog) for c in counts}
        weights = {c.caller: c.weight for c in counts}
        service = lease.service
        shares = fair_shares(backlogs, free, lease.cursor, held, self.jobs_per_message, weights,
                             {caller: service.start(caller) for caller in backlogs})
        chunks = {caller: chunked(self._timed(caller, share, limiter), self.jobs_per_message)
                  for caller, share in shares.items()}
        chunks = {caller: caller_chunks for caller, caller_chunks in chunks.items() if caller_chunks}
        self._ask_again_later(limiter)
        # Interleaved, the caller holding the fewest slots first: a worker takes a batch's messages in
        # turn, so a newcomer's message is not queued behind a whole share of a spiking caller's.
        queue_order = sorted(chunks, key=lambda caller: max(0, held.get(caller, 0)))
        planned = list(round_robin_chunks(chunks, queue_order))
        envelopes = [JobEnvelope(origin=self.origin, group=caller, jobs=[self.job_spec(item) for item in chunk.items],
                                 not_before=not_before(chunk.second, now), admitted_at=now)
                     for chunk, caller in planned]
        bodies = [envelope.model_dump_json() for envelope in envelopes]
        # All callers' messages in as few transactions as fit; a message whose items another dispatcher admitted
        # (its lease ran out under it) comes back without a key, and that dispatcher sends it.
        keys = self.store.admit_many([(caller, chunk.items, body) for (chunk, caller), body in zip(planned, bodies)],
                                     now)
        admitted: list[JobSpec] = []
        per_caller = dict.fromkeys(chunks, 0)
        sent: list[str] = []
        messages: list[OutboundMessage] = []
        # A slot's delay counts from the send, the pass's time on: a long pass does not push its jobs a second late.
        sending_at = now + max(0.0, self.clock() - began)
        for (chunk, caller), envelope, body, key in zip(planned, envelopes, bodies, keys, strict=True):
            if key is None:
                continue
            sent.append(key)
            messages.append(OutboundMessage(body=body, group_id=caller,
                                            delay_seconds=delay_until(chunk.second, sending_at)))
            admitted += envelope.jobs
            per_caller[caller] += len(chunk.items)
        service.record(per_caller, weights, wanting={c for c, n in backlogs.items() if n > per_caller.get(c, 0)},
                       active={c.caller for c in counts if c.backlog > 0 or c.in_flight > 0})
        # Admitted: the transaction above moved these jobs into the window, once (the sends may be retried).
        log_jobs(log, "jobs admitted", ((job.correlation_id, job.id) for job in admitted), origin=self.origin)
        emf.jobs_admitted(self.origin, len(admitted))
        if messages:
            self.jobs.send(messages)
            self.store.forget_outbox(sent)
        return len(admitted)

    def _timed(self, caller: str, share: int, limiter: Limiter) -> list[tuple[float, Item]]:
        """Up to `share` of the caller's backlog, in order, each with its rate limits' slot (now, if it has none).

        An item whose limit has no slot left stays in the backlog, and the
        items behind it that are not under that limit go on: a read that
        lacks items for that reason reads again, past the held limits.
        """
        timed: list[tuple[float, Item]] = []
        seen: set[str] = set()
        skip: frozenset[str] = frozenset()
        while True:
            read = {self.job_spec(item).id: item for item in self.store.backlog(caller, share + len(seen), skip)}
            fresh = [item for job_id, item in read.items() if job_id not in seen]
            seen.update(read)
            for item in fresh:
                slot = limiter.take(self.limited_by(item))
                if slot is not None:
                    timed.append((slot, item))
                    if len(timed) == share:
                        return timed
            held = frozenset(limiter.held)
            if not fresh or held == skip:
                return timed
            skip = held

    def _ask_again_later(self, limiter: Limiter) -> None:
        """While a rate limit holds jobs back, the timer: a pass a second from now, or at the next second's start if
        that would be too late in its second to give out slots (limits.py), whatever else triggers one. One such
        request is on its way at a time, across processes: when it is due is kept with the lease."""
        lease = limiter.lease
        if not limiter.held or self.ticks is None or lease.timer_at > limiter.now:
            return
        self.ticks.send([ask_for_pass(self.origin, early=True)])
        lease.timer_at = next_giving_moment(limiter.now + ASK_DELAY_S)

    def _resend_stale_outbox(self, now: float) -> None:
        # A dispatcher that crashed between admitting and sending left these; the ledger
        # records each job once, so sending one twice is harmless.
        if now - self._outbox_checked_at < self.outbox_check_every_s:
            return
        self._outbox_checked_at = now
        stale = self.store.outbox(now - self.resend_after_s)
        if stale:
            self.jobs.send([OutboundMessage(body=body, group_id=JobEnvelope.model_validate_json(body).group)
                            for _, body in stale])
            self.store.forget_outbox([key for key, _ in stale])
