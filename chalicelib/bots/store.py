"""Bots' store port: the registered bots and their leases, and the bot jobs' backlogs they claim from.

A bot job is a typed job (its item in the typed-jobs table) whose target is
`bot`: it waits in its caller's bot backlog, never in admission's. Every
change of a job here is one transaction with its backlog item, the bot's item
(what it holds and until when), the callers' counts and the typed jobs'
status counters, each conditional, so a claim, a hand-back and a settlement
of the same attempt cannot both land. Outcomes go through the result ledger
with the bots' settlement (dynamo.py's BotJobSettlement, memory.py's `settle`).
"""
from __future__ import annotations

from typing import AbstractSet, Mapping, Protocol

from chalicelib.admission.limits import LimitWindow
from chalicelib.admission.models import CallerCounts
from chalicelib.bots.models import Bot, BotEvent
from chalicelib.typed.models import TypedBacklogItem, TypedJob


class BotStore(Protocol):
    def register(self, bot: Bot) -> None:
        """Store a new bot (its id is new: the write is conditional on that)."""
        ...

    def get(self, bot_id: str) -> Bot | None: ...

    def bots(self) -> list[Bot]: ...

    def delete(self, bot_id: str) -> None:
        """Forget a bot that holds nothing. Raises StaleWrite if it holds a job (or is gone)."""
        ...

    def beat(self, bot_id: str, now: float, lease_until: float) -> Bot:
        """The bot is alive: its last beat is now and its jobs are leased until `lease_until`. Raises StaleWrite if
        the bot is gone."""
        ...

    def extend(self, bot_id: str, job_id: str, now: float, lease_until: float) -> None:
        """`beat`, on condition that the bot holds the job. Raises StaleWrite otherwise."""
        ...

    def history(self, bot_id: str, limit: int) -> list[BotEvent]:
        """The bot's latest events, newest first."""
        ...

    def job(self, job_id: str) -> TypedJob | None: ...

    def callers(self) -> list[CallerCounts]:
        """Each caller's bot-job counts (backlog, in flight on bots, done, failed), with its admission weight."""
        ...

    def backlog(self, caller: str, limit: int, types: AbstractSet[str] | None, now: float) -> list[TypedBacklogItem]:
        """The caller's next claimable bot jobs, highest priority then oldest first: of `types` only (None: any),
        none still waiting out a retry's backoff."""
        ...

    def limits(self) -> dict[str, float]:
        """The typed jobs' rate limits in force (limit key -> jobs per minute), as admission keeps them."""
        ...

    def claim(self, bot: Bot, item: TypedBacklogItem, now: float, lease_until: float,
              slots: Mapping[str, LimitWindow] | None = None) -> None:
        """The job to running on this bot, its attempt the next one, out of its backlog, leased until
        `lease_until`, taking one of the slots left in the window of each limit in `slots` (limit key -> its
        window now). Raises HoldsMaxJobs if the bot holds `max_jobs` already, StaleWrite if the job
        left its backlog (another bot claimed it, or it was cancelled), RateLimited naming the limits whose
        slots were all taken."""
        ...

    def hand_back(self, bot_id: str, job: TypedJob, event: BotEvent, not_before: float | None, now: float,
                  expired_only: bool = False) -> None:
        """The bot's attempt of the job goes back to the job's backlog, claimable from `not_before`; the job's
        error and the bot's history say `event.note`. With `expired_only`, only if the bot's lease ran out before
        now. Raises StaleWrite if the bot no longer holds that attempt (settled, handed back, or beaten)."""
        ...
