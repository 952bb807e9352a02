"""`sahay bench --queue`: throughput and latency of the moderation queue (serve/queue.py) on each database.

Per database, on a fresh, migrated schema, one client thread calling `Queue` directly (no HTTP, no model):

1. enqueue, batch 1: `Queue.enqueue([entry])` back to back for the duration (one transaction per call, the way a
   single-item /v1/classify commits before it answers); items/s and per-call latency.
2. enqueue, batch 16: the same with 16 entries per call (one transaction for a 16-item request).
3. claim + decide: the oldest queued items, each claimed and then decided by one moderator key (two transactions
   per item); pairs/s and the latency of the pair.
4. list: the first page (50) of `Queue.list` with everything enqueued above still in the queue (N is reported);
   calls/s and latency.

Audit records are written as in production (they are part of every transaction). The texts are made up and benign.

Fresh databases: without a URL, a temporary SQLite file (removed after). A SQLite URL must name a file that does not
exist yet (created, and removed after). A PostgreSQL URL names an existing database: the bench creates its own
schema there (`sahay_bench_<random>`; the user needs CREATE on the database), migrates it, measures, and drops it
(CASCADE) at the end; nothing outside that schema is read or written. The durability settings in force (SQLite
journal mode and synchronous; PostgreSQL fsync and synchronous_commit) are recorded beside the figures, since they
decide what a commit costs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from data.taxonomy import LABELS
from serve.db import make_engine, migrate, parse_url
from serve.queue import Entry, Queue
from serve.tables import QueueItem

__all__ = ["ENQUEUE_BATCHES", "LIST_LIMIT", "QueueBenchError", "queue_bench_table", "run_queue_bench"]

ENQUEUE_BATCHES = (1, 16)
LIST_LIMIT = 50
SCHEMA_PREFIX = "sahay_bench_"
SURFACES = ("post", "comment", "search", "chat", "bio")
TEXTS = (
    "the bus was late again this morning",
    "we planted tomatoes in the garden",
    "chai bahut achhi bani hai aaj",
    "the library opens at nine",
)
"""Made-up, benign texts: the queue's cost does not depend on what the text says."""


class QueueBenchError(Exception):
    """A database cannot be benchmarked (bad URL, not fresh, unreachable, no permission); nothing was measured."""


@dataclass(frozen=True)
class _Actor:
    key_id: str
    role: str


SERVICE = _Actor("benchsvc", "service")
MODERATOR = _Actor("benchmod", "moderator")


def shown_url(url: str) -> str:
    """The URL with its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


# ----------------------------------------------------------------------------------------------- fresh databases


@dataclass
class _Target:
    engine: Engine
    backend: str
    shown: str
    fresh: str
    """How this run got a fresh database (said in the report)."""


@contextlib.contextmanager
def _sqlite_target(url: str | None) -> Iterator[_Target]:
    with contextlib.ExitStack() as stack:
        if url is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sahay-bench-queue-")))
            path = directory / "queue.db"
            fresh = "temporary SQLite file (removed after)"
        else:
            database = make_url(url).database
            if database in (None, "", ":memory:") or "mode=memory" in url:
                raise QueueBenchError("an in-memory SQLite database is not a fair bench; give a file or no URL")
            path = Path(database).expanduser()
            if path.exists():
                raise QueueBenchError(f"{path} exists; the queue bench needs a fresh SQLite file (it removes it after)")
            fresh = f"new SQLite file {path} (removed after)"
        engine = make_engine(f"sqlite:///{path}")
        try:
            migrate(engine)
            yield _Target(engine, "sqlite", f"sqlite:///{path}" if url else "sqlite (temporary file)", fresh)
        finally:
            engine.dispose()
            if url is not None:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def _postgres_target(url: str) -> Iterator[_Target]:
    schema = SCHEMA_PREFIX + secrets.token_hex(4)
    shown = shown_url(url)
    admin = make_engine(url)
    created = False
    try:
        try:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            created = True
        except SQLAlchemyError as exc:
            raise QueueBenchError(
                f"cannot create a schema in {shown} ({type(exc.orig or exc).__name__}): the queue bench needs a "
                "reachable database where this user may CREATE"
            ) from None
        engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            migrate(engine)
            yield _Target(engine, "postgresql", shown, f"schema {schema} in the given database (dropped after)")
        finally:
            engine.dispose()
    finally:
        if created:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _target(url: str | None) -> contextlib.AbstractContextManager[_Target]:
    if url is None:
        return _sqlite_target(None)
    try:
        backend = parse_url(url).get_backend_name()
    except ValueError as exc:
        raise QueueBenchError(str(exc)) from None
    if backend == "sqlite":
        return _sqlite_target(url)
    if backend == "postgresql":
        return _postgres_target(url)
    raise QueueBenchError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql+psycopg://...")


def _durability(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                conn.exec_driver_sql("PRAGMA synchronous").scalar(), "?"
            )
            version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
            return {"journal_mode": str(journal), "synchronous": sync, "server_version": str(version)}
        return {
            "fsync": str(conn.execute(text("SHOW fsync")).scalar()),
            "synchronous_commit": str(conn.execute(text("SHOW synchronous_commit")).scalar()),
            "server_version": str(conn.execute(text("SHOW server_version")).scalar()),
        }


# ----------------------------------------------------------------------------------------------- measuring


def _latency(seconds: Sequence[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    ms = np.asarray(seconds) * 1000
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return {"p50": p50, "p95": p95, "p99": p99, "mean": float(ms.mean()), "max": float(ms.max())}


class _Entries:
    """Unique, deterministic entries (priorities 1-5, surfaces and labels in turn)."""

    def __init__(self, run: str):
        self.run = run
        self.n = 0

    def take(self, count: int) -> list[Entry]:
        out = []
        for _ in range(count):
            i = self.n
            self.n += 1
            label = LABELS[i % len(LABELS)]
            out.append(
                Entry(
                    item_id=f"bench-{self.run}-{i}",
                    surface=SURFACES[i % len(SURFACES)],
                    lang="en",
                    label=label,
                    probabilities={name: (0.9 if name == label else 0.1 / (len(LABELS) - 1)) for name in LABELS},
                    signals={"at_risk": 0.5, "urgent": 0.1, "violating": 0.1},
                    rule="bench",
                    policy_version="bench",
                    model_version="bench",
                    priority=1 + i % 5,
                    sla_minutes=15 + i % 1440,
                    text=TEXTS[i % len(TEXTS)],
                )
            )
        return out


def _timed(step: Callable[[], int | None], seconds: float) -> tuple[list[float], int, float, bool]:
    """Call `step` back to back for `seconds`; (latencies, units done, wall s, ran out). `step` returns the units it
    did, or None when there is nothing left to do."""
    latencies: list[float] = []
    units = 0
    ran_out = False
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        done = step()
        if done is None:
            ran_out = True
            break
        latencies.append(time.perf_counter() - t0)
        units += done
    return latencies, units, time.perf_counter() - start, ran_out


def _bench_one(target: _Target, seconds: float, on_step: Callable[[str], None] | None) -> dict[str, Any]:
    queue = Queue(target.engine, lease_seconds=3600)
    entries = _Entries(secrets.token_hex(3))
    phases: list[dict[str, Any]] = []

    def say(message: str) -> None:
        if on_step:
            on_step(f"{target.backend}: {message}")

    for _ in range(5):  # warm the pool and the statement caches; not counted
        queue.enqueue(entries.take(1), SERVICE)
    for batch in ENQUEUE_BATCHES:
        say(f"enqueue, batch {batch}, {seconds:g} s")
        latencies, items, wall, _ = _timed(lambda b=batch: len(queue.enqueue(entries.take(b), SERVICE)), seconds)
        phases.append(
            {
                "phase": "enqueue",
                "batch_size": batch,
                "calls": len(latencies),
                "units": items,
                "unit": "items",
                "per_s": items / wall,
                "calls_per_s": len(latencies) / wall,
                "wall_s": wall,
                "latency_ms": _latency(latencies),
            }
        )

    with target.engine.connect() as conn:  # in id order: the cost of a pair does not depend on which item it is
        ids = list(conn.scalars(select(QueueItem.id).order_by(QueueItem.id)))
    pending = iter(ids)
    decided_label = LABELS[0]

    def claim_and_decide() -> int | None:
        queue_id = next(pending, None)
        if queue_id is None:
            return None
        queue.claim(queue_id, MODERATOR)
        queue.decide(queue_id, MODERATOR, decided_label, "no_action")
        return 1

    say(f"claim + decide, {seconds:g} s")
    latencies, pairs, wall, ran_out = _timed(claim_and_decide, seconds)
    phases.append(
        {
            "phase": "claim+decide",
            "batch_size": 1,
            "calls": len(latencies),
            "units": pairs,
            "unit": "pairs",
            "per_s": pairs / wall,
            "calls_per_s": len(latencies) / wall,
            "wall_s": wall,
            "latency_ms": _latency(latencies),
            "ran_out_of_items": ran_out,
        }
    )

    with target.engine.connect() as conn:
        queued = conn.scalar(select(func.count()).select_from(QueueItem).where(QueueItem.state == "queued"))
    say(f"list with {queued} queued, {seconds:g} s")

    def list_first_page() -> int:
        queue.list(MODERATOR, limit=LIST_LIMIT)
        return 1

    latencies, calls, wall, _ = _timed(list_first_page, seconds)
    phases.append(
        {
            "phase": "list",
            "batch_size": LIST_LIMIT,
            "calls": len(latencies),
            "units": calls,
            "unit": "calls",
            "per_s": calls / wall,
            "calls_per_s": len(latencies) / wall,
            "wall_s": wall,
            "latency_ms": _latency(latencies),
            "queued_items": int(queued),
        }
    )
    return {"phases": phases, "enqueued_total": entries.n}


def run_queue_bench(
    urls: Sequence[str | None] = (None,),
    seconds: float = 5.0,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the queue on each database (None: a temporary SQLite file); the report `sahay bench --queue` writes.

    Raises QueueBenchError when a database cannot be used (see the module docstring); a database's own error in
    the middle of a measurement propagates."""
    if seconds <= 0:
        raise QueueBenchError("--seconds must be positive")
    if not urls:
        raise QueueBenchError("no database to benchmark")
    import sqlalchemy

    databases = []
    for url in urls:
        try:
            with _target(url) as target:
                durability = _durability(target.engine)
                measured = _bench_one(target, seconds, on_step)
        except SQLAlchemyError as exc:
            where = "a temporary SQLite file" if url is None else shown_url(url)
            raise QueueBenchError(f"database error on {where}: {type(exc.orig or exc).__name__}") from None
        databases.append(
            {"url": target.shown, "backend": target.backend, "fresh": target.fresh, **durability, **measured}
        )
    return {
        "settings": {
            "seconds_per_phase": seconds,
            "enqueue_batch_sizes": list(ENQUEUE_BATCHES),
            "list_limit": LIST_LIMIT,
            "client_threads": 1,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__,
        },
        "databases": databases,
    }


def queue_bench_table(report: dict[str, Any]):
    """A Rich table, one row per database and phase."""
    from rich.markup import escape
    from rich.table import Table

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    s, m = report["settings"], report["machine"]
    title = f"sahay bench --queue — {s['seconds_per_phase']:g} s per phase, {s['client_threads']} client thread"
    caption = (
        f"enqueue: items/s (one transaction per call); claim+decide: items claimed and decided/s (two transactions "
        f"each); list: first page of {s['list_limit']} with N queued. {m['cpu_count']} CPUs, load average "
        f"{'-' if m['load_avg_1m'] is None else format(m['load_avg_1m'], '.2f')}."
    )
    table = Table(title=escape(title), caption=escape(caption))
    for name in ("database", "durability", "phase", "batch", "calls", "rate", "p50 ms", "p99 ms", "N queued"):
        table.add_column(name, justify="left" if name in ("database", "durability", "phase") else "right")
    for db in report["databases"]:
        if db["backend"] == "sqlite":
            durability = f"{db['journal_mode']}, synchronous={db['synchronous']}"
        else:
            durability = f"fsync={db['fsync']}, synchronous_commit={db['synchronous_commit']}"
        for i, p in enumerate(db["phases"]):
            lat = p["latency_ms"]
            table.add_row(
                escape(f"{db['backend']} {db['server_version']}") if i == 0 else "",
                escape(durability) if i == 0 else "",
                p["phase"],
                str(p["batch_size"]) if p["phase"] != "claim+decide" else "-",
                str(p["calls"]),
                f"{p['per_s']:.0f} {p['unit']}/s",
                fmt(lat["p50"]),
                fmt(lat["p99"]),
                str(p["queued_items"]) if "queued_items" in p else "",
            )
    return table
