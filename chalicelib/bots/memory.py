"""Bots' in-memory twin: the same conditions as DynamoBotStore, over the typed jobs' twin and under its lock."""
from __future__ import annotations

from typing import AbstractSet, Mapping

from chalicelib.admission.limits import LimitWindow
from chalicelib.admission.models import CallerCounts
from chalicelib.bots.models import Bot, BotEvent
from chalicelib.bots.store import BotStore
from chalicelib.core.errors import HoldsMaxJobs, RateLimited, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.typed.keys import backlog_item, backlog_key
from chalicelib.typed.memory import MemoryTypedJobStore
from chalicelib.typed.models import TimelineEntry, TypedBacklogItem, TypedJob


class MemoryBotStore(BotStore):
    def __init__(self, typed: MemoryTypedJobStore) -> None:
        self.typed = typed  # bot jobs are typed jobs: their items, backlogs (bot_backlogs) and counts live there
        self.lock = typed.lock
        self.saved: dict[str, Bot] = {}
        self.events: dict[str, list[BotEvent]] = {}  # bot id -> its history, oldest first
        self.slots_taken: dict[tuple[str, float], int] = {}  # (limit key, window start) -> claims (BLIMIT#)

    def _bot(self, bot_id: str) -> Bot:
        bot = self.saved.get(bot_id)
        if bot is None:
            raise StaleWrite(f"no bot {bot_id}")
        return bot

    def register(self, bot: Bot) -> None:
        with self.lock:
            if bot.id in self.saved:
                raise StaleWrite(f"bot {bot.id} exists")
            self.saved[bot.id] = bot.model_copy(deep=True)

    def get(self, bot_id: str) -> Bot | None:
        with self.lock:
            found = self.saved.get(bot_id)
            return found.model_copy(deep=True) if found else None

    def bots(self) -> list[Bot]:
        with self.lock:
            return [bot.model_copy(deep=True) for bot in self.saved.values()]

    def delete(self, bot_id: str) -> None:
        with self.lock:
            if self._bot(bot_id).holding:
                raise StaleWrite(f"bot {bot_id} holds a job")
            del self.saved[bot_id]

    def beat(self, bot_id: str, now: float, lease_until: float) -> Bot:
        with self.lock:
            bot = self._bot(bot_id)
            bot.last_beat_at, bot.lease_until = now, lease_until
            return bot.model_copy(deep=True)

    def extend(self, bot_id: str, job_id: str, now: float, lease_until: float) -> None:
        with self.lock:
            if job_id not in self._bot(bot_id).holding:
                raise StaleWrite(f"bot {bot_id} does not hold {job_id}")
            self.beat(bot_id, now, lease_until)

    def history(self, bot_id: str, limit: int) -> list[BotEvent]:
        with self.lock:
            return self.events.get(bot_id, [])[::-1][:limit]

    def job(self, job_id: str) -> TypedJob | None:
        return self.typed.get(job_id)

    def callers(self) -> list[CallerCounts]:
        with self.lock:
            weights = {c.caller: c.weight for c in self.typed.counts.values()}
            return [c.model_copy(update={"weight": weights.get(c.caller, 1.0)}) for c in self.typed.bot_counts.values()]

    def backlog(self, caller: str, limit: int, types: AbstractSet[str] | None, now: float) -> list[TypedBacklogItem]:
        with self.lock:
            backlog = self.typed.bot_backlogs.get(caller, {})
            ready = [backlog[key] for key in sorted(backlog) if (types is None or backlog[key].type in types)
                     and (backlog[key].not_before or 0) <= now]
            return [item.model_copy() for item in ready[:limit]]

    def limits(self) -> dict[str, float]:
        return self.typed.limits()

    def claim(self, bot: Bot, item: TypedBacklogItem, now: float, lease_until: float,
              slots: Mapping[str, LimitWindow] | None = None) -> None:
        with self.lock:
            stored = self.saved.get(bot.id)
            if stored is None:
                raise StaleWrite(f"no bot {bot.id}")
            if len(stored.holding) >= bot.max_jobs:
                raise HoldsMaxJobs(f"bot {bot.id} holds {bot.max_jobs} job(s) already: settle one first")
            backlog = self.typed.bot_backlogs.get(item.caller, {})
            if backlog_key(item) not in backlog:
                raise StaleWrite(f"job {item.id} left its backlog")
            held = frozenset(key for key, window in (slots or {}).items()
                             if self.slots_taken.get((key, window.start), 0) >= window.slots)
            if held:
                raise RateLimited(f"no slot left now under {', '.join(sorted(held))}", held)
            attempt = item.attempts + 1
            self.typed._change(item.id, lambda s: s.status == "pending" and s.place == "queued"
                               and s.attempts == item.attempts,
                               TimelineEntry(status="running", at=now, worker=bot.id, attempt=attempt,
                                             note=f"claimed by bot {bot.name}"),
                               status="running", place="none", attempts=attempt, started_at=now, bot=bot.id)
            del backlog[backlog_key(item)]
            counts = self.typed.caller_counts(item.caller, "bot")
            counts.backlog -= 1
            counts.in_flight += 1
            self.typed._move_status(pending=-1, running=1)
            stored.holding[item.id] = attempt
            stored.lease_until, stored.last_beat_at = lease_until, now
            for key, window in (slots or {}).items():
                self.slots_taken[(key, window.start)] = self.slots_taken.get((key, window.start), 0) + 1

    def hand_back(self, bot_id: str, job: TypedJob, event: BotEvent, not_before: float | None, now: float,
                  expired_only: bool = False) -> None:
        note = event.note or event.event
        with self.lock:
            bot = self._bot(bot_id)
            if bot.holding.get(job.id) != job.attempts or (expired_only and not bot.lease_until < now):
                raise StaleWrite(f"bot {bot_id} does not hold attempt {job.attempts} of {job.id}, or its lease holds")
            back = self.typed._change(job.id, lambda s: s.status == "running" and s.attempts == job.attempts
                                      and s.bot == bot_id,
                                      TimelineEntry(status="pending", at=now, worker=bot_id, attempt=job.attempts,
                                                    note=note),
                                      status="pending", place="queued", error=note)
            item = backlog_item(back).model_copy(update={"not_before": not_before})
            self.typed.bot_backlogs.setdefault(job.caller, {})[backlog_key(item)] = item
            counts = self.typed.caller_counts(job.caller, "bot")
            counts.backlog += 1
            counts.in_flight -= 1
            self.typed._move_status(running=-1, pending=1)
            del bot.holding[job.id]
            if event.event == "lease_lost":
                bot.leases_lost += 1
            else:
                bot.jobs_failed += 1
            self.events.setdefault(bot_id, []).append(event)

    def settle(self, outcome: JobOutcome, now: float) -> bool:
        """What the ledger does for a bot job's outcome (BotJobSettlement's twin): False unless the bot still holds
        that attempt and the job is running it."""
        with self.lock:
            bot = self.saved.get(outcome.worker)
            if bot is None or bot.holding.get(outcome.job_id) != outcome.attempt:
                return False
            if not self.typed.settle(outcome, now):
                return False
            del bot.holding[outcome.job_id]
            done = outcome.outcome == "done"
            if done:
                bot.jobs_done += 1
            else:
                bot.jobs_failed += 1
            self.events.setdefault(bot.id, []).append(BotEvent(
                at=outcome.finished_at, job_id=outcome.job_id, attempt=outcome.attempt,
                event="completed" if done else "failed", note=None if done else (outcome.error or "")[:500]))
            return True
