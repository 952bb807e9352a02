"""Retention: the content of queue items is purged `SAHAY_RETENTION_DAYS` after they were enqueued.

`purge_expired(engine, retention_days)` sets to NULL, for every queue item created more than `retention_days` ago
(whatever its state), the columns that hold content: `text`, `spans` (explanation spans quote the text) and the
moderator's free-text `decision_note` (it may quote the text too). Everything else stays: the decision (label,
action, who, when), the model's label, probabilities and signals, priority, SLA, and every audit record (they hold
no text). A purged item is one whose `text` IS NULL; purging again changes nothing (idempotent).

The UPDATE runs in batches of ids (`batch_size`), each its own short transaction, so that the service's writers
wait at most one batch for SQLite's write lock; the SQL is portable (SQLite and PostgreSQL alike).

Audit: a run that purges something writes one `purge` audit record (who: `actor`, by default `system:retention`;
`sahay queue purge` passes `cli:<login name>`), with the total count, the cutoff, the retention days and the number
of batches, never content. It is written in the transaction of the run's last batch (or, when the run is
cancelled between batches, in a transaction of its own right after), so the record commits with the last UPDATE.
A run that purges nothing writes no record (the periodic task runs every `SAHAY_PURGE_INTERVAL_S`; empty runs are
only logged); a dry run (`count_expired`) writes none. A process killed between two batches leaves the batches it
committed without a record (their texts are gone, so no later run counts them): the JSON log is the only trace then.

`start_periodic_purge(engine, settings, log)` runs it in a worker thread every `SAHAY_PURGE_INTERVAL_S`
(the first run shortly after start) as an asyncio task of the service, logging one JSON event per run with counts
only, never content; `await handle.stop()` ends it. `sahay queue purge` (serve/queue_commands.py) runs it once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, null, or_, select, update

from serve import logging as slog
from serve.db import immediate
from serve.queue import RETENTION_ACTOR, Actor, record_audit
from serve.tables import QueueItem, utcnow

__all__ = [
    "BATCH_SIZE",
    "FIRST_RUN_DELAY_S",
    "PurgeResult",
    "PurgeTask",
    "count_expired",
    "cutoff_for",
    "purge_expired",
    "start_periodic_purge",
]

BATCH_SIZE = 500
"""Queue items purged per transaction."""
FIRST_RUN_DELAY_S = 5.0
"""The service's first purge runs this long after start (or after the interval, if shorter)."""


@dataclass(frozen=True)
class PurgeResult:
    """`count`: queue items whose content was purged (or, in a dry run, would be); `cutoff`: items created before
    it were expired; `batches`: UPDATE transactions run (0 in a dry run)."""

    count: int
    cutoff: datetime
    retention_days: int
    dry_run: bool = False
    batches: int = 0


def cutoff_for(retention_days: int, now: datetime | None = None) -> datetime:
    """The creation time before which an item's content is expired: `now - retention_days`."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    now = now or utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now - timedelta(days=retention_days)


def _expired(cutoff: datetime):
    """Created before the cutoff and still holding content of some kind."""
    return (
        QueueItem.created_at < cutoff,
        or_(QueueItem.text.is_not(None), QueueItem.spans.is_not(None), QueueItem.decision_note.is_not(None)),
    )


def count_expired(engine: Engine, retention_days: int, now: datetime | None = None) -> PurgeResult:
    """What `purge_expired` would purge now, changing nothing (a dry run)."""
    cutoff = cutoff_for(retention_days, now)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(QueueItem).where(*_expired(cutoff)))
    return PurgeResult(int(count or 0), cutoff, retention_days, dry_run=True)


def purge_expired(
    engine: Engine,
    retention_days: int,
    now: datetime | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    cancel: threading.Event | None = None,
    actor: Actor = RETENTION_ACTOR,
) -> PurgeResult:
    """Set text, spans and decision note to NULL for queue items created more than `retention_days` before `now`
    (default: the current time), whatever their state; the rest of each row and all audit records stay.

    Idempotent (a second run purges 0). `cancel`, when set between two batches, stops early; the result counts
    what was purged until then. A run that purged anything writes one `purge` audit record as `actor` (see the
    module's docstring), at `now` when given (else the time of the last batch)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = cutoff_for(retention_days, now)
    writer = immediate(engine)
    ids = select(QueueItem.id).where(*_expired(cutoff)).order_by(QueueItem.id).limit(batch_size)
    statement = (
        update(QueueItem)
        .where(QueueItem.id.in_(ids.scalar_subquery()))
        # null(): SQL NULL, not the JSON document `null`, for the JSON column
        .values(text=None, spans=null(), decision_note=None)
        .execution_options(synchronize_session=False)
    )

    def audit(connection, count: int, batches: int) -> None:
        detail = {"count": count, "cutoff": _iso(cutoff), "retention_days": retention_days, "batches": batches}
        record_audit(connection, actor, "purge", detail, now or utcnow())

    total = batches = 0
    recorded = False
    while cancel is None or not cancel.is_set():
        with writer.begin() as connection:
            purged = connection.execute(statement).rowcount
            last = purged < batch_size
            if last and total + purged > 0:  # the run's record commits with its last UPDATE
                audit(connection, total + purged, batches + 1)
                recorded = True
        batches += 1
        total += purged
        if last:
            break
    if total > 0 and not recorded:  # cancelled between batches: the record in a transaction of its own
        with writer.begin() as connection:
            audit(connection, total, batches)
    return PurgeResult(total, cutoff, retention_days, batches=batches)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------ the periodic task


class PurgeTask:
    """The service's periodic purge: an asyncio task that runs `purge_expired` in a worker thread every
    `interval_s` seconds, the first time after `first_delay_s`. A failed run is logged and retried next time.
    Runs that purge something are audited as `system:retention` (role admin)."""

    def __init__(
        self,
        engine: Engine,
        retention_days: int,
        interval_s: float,
        log: logging.Logger,
        *,
        first_delay_s: float | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        cutoff_for(retention_days)  # validates retention_days
        self.engine = engine
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.first_delay_s = min(FIRST_RUN_DELAY_S, interval_s) if first_delay_s is None else first_delay_s
        self.batch_size = batch_size
        self.runs = 0
        """Completed purge runs (failed ones included)."""
        self._log = log
        self._stopping = asyncio.Event()
        self._cancel = threading.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="sahay-retention-purge")

    async def _loop(self) -> None:
        delay = self.first_delay_s
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                return  # stop() was called
            except TimeoutError:
                pass
            await self.run_once()
            delay = self.interval_s

    async def run_once(self) -> PurgeResult | None:
        """One purge in a worker thread, logged; None if it failed (the failure is logged, never raised)."""
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(
                purge_expired,
                self.engine,
                self.retention_days,
                batch_size=self.batch_size,
                cancel=self._cancel,
                actor=RETENTION_ACTOR,
            )
        except Exception as exc:  # a purge must never take the service down; it runs again later
            slog.log_event(
                self._log,
                "retention_purge_failed",
                logging.ERROR,
                error=type(exc).__name__,
                retention_days=self.retention_days,
            )
            return None
        finally:
            self.runs += 1
        slog.log_event(
            self._log,
            "retention_purge",
            purged=result.count,
            retention_days=result.retention_days,
            cutoff=_iso(result.cutoff),
            batches=result.batches,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return result

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self) -> None:
        """End the task: no new run starts; a run in progress stops after its current batch (committed)."""
        self._stopping.set()
        self._cancel.set()
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._task.cancelled():  # the caller itself is being cancelled
                raise


def start_periodic_purge(engine: Engine, settings: Any, log: logging.Logger, **options: Any) -> PurgeTask:
    """Start the periodic purge (call inside the running event loop) with `settings.retention_days` and
    `settings.purge_interval_s`; the returned handle's `await stop()` ends it. `options`: see `PurgeTask`."""
    task = PurgeTask(engine, settings.retention_days, settings.purge_interval_s, log, **options)
    slog.log_event(
        log,
        "retention_purge_scheduled",
        retention_days=task.retention_days,
        interval_s=task.interval_s,
        first_run_in_s=task.first_delay_s,
    )
    return task
