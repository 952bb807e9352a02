"""Retention (serve/retention.py): expired queue content is purged, decisions and the audit trail stay, purging is
idempotent, a dry run changes nothing, a purge run is one audit record (counts only), and the service's periodic
task purges and stops.

The database tests take the `database_url` fixture (tests/serve/conftest.py), so each runs on SQLite and on
PostgreSQL. Texts are benign stand-ins; no test prints one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from serve.db import make_engine, migrate
from serve.logging import JsonFormatter
from serve.queue import RETENTION_ACTOR, AuditActor, AuditRecord, Queue
from serve.queue_api import AuditOut
from serve.retention import count_expired, cutoff_for, purge_expired, start_periodic_purge
from serve.tables import AuditEvent, QueueItem
from tests.serve.queue_helpers import ASHA, SECRET, T0, Clock, decide_at, enqueue_at
from tests.serve.queue_helpers import named_entry as entry

DAY = timedelta(days=1)


def rows(engine) -> dict[int, dict]:
    with engine.connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(select(QueueItem.__table__))}


def audit_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id))]


def purge_records(engine) -> list[AuditRecord]:
    """The `purge` audit records, oldest first, as GET /v1/audit shows them (Queue.audit)."""
    records = Queue(engine).audit(limit=100).items
    return [r for r in reversed(records) if r.event == "purge"]


def sql_null_spans(engine) -> set[int]:
    """Ids whose spans are SQL NULL (not the JSON document `null`)."""
    with engine.connect() as conn:
        return set(conn.scalars(select(QueueItem.id).where(QueueItem.spans.is_(None))))


@pytest.fixture
def aged(engine):
    """Items enqueued at T0 (queued; decided with a note), one exactly at the cutoff and one fresh; `now` is
    31 days after T0, so with 30 days' retention the cutoff is T0 + 1 day."""
    old_queued, old_decided = enqueue_at(engine, T0, entry("old-q"), entry("old-d"))
    decide_at(engine, T0 + timedelta(hours=1), old_decided, "none", note="moderator note quoting the bus text")
    (at_cutoff,) = enqueue_at(engine, T0 + DAY, entry("edge"))
    (fresh,) = enqueue_at(engine, T0 + 30 * DAY, entry("fresh"))
    return SimpleNamespace(
        now=T0 + 31 * DAY, old=[old_queued, old_decided], old_decided=old_decided, kept=[at_cutoff, fresh]
    )


# --- purge ------------------------------------------------------------------------------------------------------


def test_purge_clears_content_older_than_the_cutoff_only(engine, aged):
    before, audit_before = rows(engine), audit_rows(engine)
    result = purge_expired(engine, 30, now=aged.now)
    assert result.count == 2 and not result.dry_run
    assert result.cutoff == T0 + DAY == cutoff_for(30, aged.now)
    after = rows(engine)
    for queue_id in aged.old:  # content gone: text, spans, note
        assert after[queue_id]["text"] is None and after[queue_id]["spans"] is None
        assert after[queue_id]["decision_note"] is None
    assert set(aged.old) <= sql_null_spans(engine)
    for queue_id in aged.kept:  # the item exactly at the cutoff is not "more than 30 days" old
        assert after[queue_id] == before[queue_id]
    content = {"text", "spans", "decision_note"}
    for queue_id in aged.old:  # everything else stays: decision, label, scores, priority, state, times
        assert {k: v for k, v in after[queue_id].items() if k not in content} == {
            k: v for k, v in before[queue_id].items() if k not in content
        }
    decided = after[aged.old_decided]
    assert (decided["state"], decided["decision_label"], decided["decision_action"], decided["decided_by"]) == (
        "decided",
        "none",
        "resources_shown",
        ASHA.key_id,
    )
    audit_after = audit_rows(engine)  # the audit trail is kept (and holds no text), plus this run's record
    assert audit_after[: len(audit_before)] == audit_before and len(audit_after) == len(audit_before) + 1
    assert [r.event for r in Queue(engine).audit(limit=1).items] == ["purge"]


def test_purge_is_idempotent_and_a_purged_item_can_still_be_claimed_and_decided(engine, aged):
    assert purge_expired(engine, 30, now=aged.now).count == 2
    snapshot = rows(engine)
    again = purge_expired(engine, 30, now=aged.now)
    assert again.count == 0 and rows(engine) == snapshot
    queue = Queue(engine, pseudonym_secret=SECRET, clock=Clock(aged.now))
    claimed = queue.claim(aged.old[0], ASHA)  # the decision survives the text: moderators still see the scores
    assert claimed.content.text is None and claimed.content.spans == []
    assert claimed.label == "ideation" and claimed.signals["at_risk"] == 0.8
    queue.decide(aged.old[0], ASHA, "none", "no_action", "a note written after the purge")
    assert purge_expired(engine, 30, now=aged.now).count == 1  # the late note is content too
    assert rows(engine)[aged.old[0]]["decision_note"] is None


def test_a_purge_run_is_one_audit_record_with_counts_only(engine, aged):
    result = purge_expired(engine, 30, now=aged.now)
    (record,) = purge_records(engine)
    assert (record.event, record.key_id, record.role, record.queue_item_id) == (
        "purge",
        "system:retention",
        "admin",
        None,
    )
    assert record.at == aged.now
    assert record.detail == {"count": 2, "cutoff": "2026-03-02T09:00:00Z", "retention_days": 30, "batches": 1}
    assert result.cutoff == T0 + DAY
    assert "bus" not in repr(record) and "moderator note" not in repr(record)  # never content
    shown = AuditOut.model_validate(record)  # GET /v1/audit's model takes the new event type
    assert shown.event == "purge" and shown.detail["count"] == 2

    assert purge_expired(engine, 30, now=aged.now).count == 0  # nothing purged: no record
    assert len(purge_records(engine)) == 1

    operator = AuditActor("cli:ops", "admin")
    assert purge_expired(engine, 1, now=aged.now, actor=operator).count == 1  # the item at the cutoff goes now
    last = purge_records(engine)[-1]
    assert (last.key_id, last.role, last.detail["count"], last.detail["retention_days"]) == ("cli:ops", "admin", 1, 1)


def test_dry_run_counts_and_changes_nothing(engine, aged):
    before, audit_before = rows(engine), audit_rows(engine)
    dry = count_expired(engine, 30, now=aged.now)
    assert dry.count == 2 and dry.dry_run and dry.batches == 0
    assert rows(engine) == before and audit_rows(engine) == audit_before
    assert count_expired(engine, 400, now=aged.now).count == 0
    assert count_expired(engine, 1, now=aged.now).count == 3  # with 1 day's retention, only the fresh one stays


def test_purge_runs_in_batches_and_stops_between_them_when_cancelled(engine):
    enqueue_at(engine, T0, *(entry(f"b{i}") for i in range(5)))
    now = T0 + 40 * DAY
    cancelled = threading.Event()
    cancelled.set()
    assert purge_expired(engine, 30, now=now, cancel=cancelled).count == 0
    assert purge_records(engine) == []  # a cancelled run that purged nothing leaves no record
    result = purge_expired(engine, 30, now=now, batch_size=2)
    assert (result.count, result.batches) == (5, 3)
    assert all(r["text"] is None for r in rows(engine).values())
    (record,) = purge_records(engine)  # one record for the run, with the total, not one per batch
    assert (record.detail["count"], record.detail["batches"]) == (5, 3)


class CancelAfter:
    """A cancel event that reads as set from its `n`+1-th check on: the run stops after `n` batches."""

    def __init__(self, n: int) -> None:
        self.checks, self.n = 0, n

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > self.n


def test_a_run_cancelled_between_batches_records_what_it_purged(engine):
    enqueue_at(engine, T0, *(entry(f"c{i}") for i in range(5)))
    now = T0 + 40 * DAY
    stopped = purge_expired(engine, 30, now=now, batch_size=2, cancel=CancelAfter(1))
    assert (stopped.count, stopped.batches) == (2, 1)
    (record,) = purge_records(engine)
    assert (record.detail["count"], record.detail["batches"]) == (2, 1)
    assert purge_expired(engine, 30, now=now, batch_size=2, cancel=CancelAfter(2)).count == 3  # ends by itself
    assert [r.detail["count"] for r in purge_records(engine)] == [2, 3]
    assert sum(r["text"] is None for r in rows(engine).values()) == 5


def test_bad_arguments_are_refused(engine):
    with pytest.raises(ValueError, match="retention_days"):
        purge_expired(engine, 0)
    with pytest.raises(ValueError, match="timezone"):
        purge_expired(engine, 30, now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="batch_size"):
        purge_expired(engine, 30, batch_size=0)


# --- the periodic task ------------------------------------------------------------------------------------------


class Lines(logging.Handler):
    """The JSON lines a logger writes, as the service's formatter makes them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def events(self, name: str) -> list[dict]:
        return [e for e in map(json.loads, self.lines) if e["event"] == name]


@pytest.fixture
def log():
    logger = logging.getLogger(f"tests.retention.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = Lines()
    logger.addHandler(handler)
    logger.lines = handler
    return logger


async def _until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _purged(engine, queue_id: int) -> bool:
    return rows(engine)[queue_id]["text"] is None


def test_periodic_task_purges_repeatedly_logs_counts_only_and_stops(engine, log):
    old = datetime.now(UTC) - 45 * DAY
    (first,) = enqueue_at(engine, old, entry("p1"))
    (recent,) = enqueue_at(engine, datetime.now(UTC), entry("p-recent"))
    settings = SimpleNamespace(retention_days=30, purge_interval_s=0.2)

    async def scenario():
        handle = start_periodic_purge(engine, settings, log, first_delay_s=0)
        await _until(lambda: _purged(engine, first))
        (second,) = enqueue_at(engine, old, entry("p2"))  # expired content arriving later: the next run takes it
        await _until(lambda: _purged(engine, second))
        await handle.stop()
        assert not handle.running and handle.runs >= 2
        runs = handle.runs
        await asyncio.sleep(0.5)
        assert handle.runs == runs  # stopped means stopped
        await handle.stop()  # stopping twice is harmless

    asyncio.run(scenario())
    assert not _purged(engine, recent)
    records = purge_records(engine)  # one per run that purged something, as the service itself
    assert sum(r.detail["count"] for r in records) == 2 and all(r.detail["count"] > 0 for r in records)
    assert {(r.key_id, r.role) for r in records} == {(RETENTION_ACTOR.key_id, RETENTION_ACTOR.role)}
    scheduled = log.lines.events("retention_purge_scheduled")
    assert scheduled and scheduled[0]["retention_days"] == 30 and scheduled[0]["interval_s"] == 0.2
    purges = log.lines.events("retention_purge")
    assert sum(e["purged"] for e in purges) == 2 and all(e["retention_days"] == 30 for e in purges)
    assert all("bus" not in line for line in log.lines.lines)  # counts only, never content


def test_periodic_task_survives_a_failing_purge(tmp_path, log):
    unmigrated = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every purge fails

    async def scenario():
        handle = start_periodic_purge(
            unmigrated, SimpleNamespace(retention_days=30, purge_interval_s=0.1), log, first_delay_s=0
        )
        await _until(lambda: handle.runs >= 2)
        assert handle.running
        await handle.stop()
        assert not handle.running

    try:
        asyncio.run(scenario())
    finally:
        unmigrated.dispose()
    failures = log.lines.events("retention_purge_failed")
    assert len(failures) >= 2 and failures[0]["error"] == "OperationalError" and failures[0]["level"] == "ERROR"


def test_stop_before_the_first_run_is_prompt(tmp_path, log):
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")

    async def scenario():
        handle = start_periodic_purge(engine, SimpleNamespace(retention_days=30, purge_interval_s=3600), log)
        assert handle.first_delay_s == 5.0  # the default: shortly after start
        started = time.monotonic()
        await handle.stop()
        assert time.monotonic() - started < 1 and handle.runs == 0

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()


def test_the_service_purges_on_its_own(tiny_artifact, tmp_path):
    """The real server (lifespan) starts the periodic purge: with a 1 s interval an expired text goes."""
    from tests.serve.conftest import start_server, stop_server

    url = f"sqlite:///{tmp_path / 'svc.db'}"
    engine = make_engine(url)
    migrate(engine)
    try:
        (expired,) = enqueue_at(engine, datetime.now(UTC) - 31 * DAY, entry("svc-old"))
        (kept,) = enqueue_at(engine, datetime.now(UTC), entry("svc-new"))
        server = start_server(
            tiny_artifact, tmp_path, SAHAY_DATABASE_URL=url, SAHAY_RETENTION_DAYS="30", SAHAY_PURGE_INTERVAL_S="1"
        )
        try:
            deadline = time.monotonic() + 20
            while not _purged(engine, expired):
                assert time.monotonic() < deadline, f"not purged in time:\n{server.logs()[-2000:]}"
                time.sleep(0.2)
        finally:
            code = stop_server(server)
        assert code in (0, -signal.SIGTERM), server.logs()[-2000:]  # uvicorn re-raises SIGTERM after a graceful stop
        assert "Application shutdown complete" in server.logs() and "Traceback" not in server.logs()
        assert not _purged(engine, kept)
        events = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
        purges = [e for e in events if e.get("event") == "retention_purge"]
        assert purges and purges[0]["purged"] == 1
        assert "svc-old" not in server.logs() and "bus" not in server.logs()
    finally:
        engine.dispose()
