"""The database: an engine from a URL, sessions, and `migrate(url)` (Alembic `upgrade head`, no alembic.ini).

SQLite by default (`sqlite:///var/sahay.db`, relative to the working directory, its folder created on first use)
in WAL mode with foreign keys on and a busy timeout; PostgreSQL in production
(`SAHAY_DATABASE_URL=postgresql+psycopg://user:pass@host/sahay`). Nothing here is SQLite-only SQL.

SQLite transactions: Python's sqlite3 module (before 3.12) begins a transaction only before INSERT/UPDATE/DELETE,
so reads, DDL and SAVEPOINTs run outside it. Here it is told to leave transactions alone and SQLAlchemy's own
`begin` emits `BEGIN` (SQLAlchemy's documented recipe), so a transaction covers everything in it, migrations
included. A connection or session bound with `immediate=True` begins with `BEGIN IMMEDIATE`: it takes the write
lock up front, which a read-then-write transaction needs so that it waits (busy timeout) rather than failing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000
"""How long a SQLite connection waits for another writer's lock before it fails with `database is locked`."""

_IMMEDIATE = "sahay_sqlite_immediate"
_PG_MIGRATION_LOCK = 0x5A4841  # any constant: the advisory lock that serialises migrations on PostgreSQL


def parse_url(url: str | URL) -> URL:
    """The URL, or ValueError saying what is wrong with it (the password is never quoted)."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except ArgumentError:
        shown = url.split("@")[-1] if "@" in url else url
        raise ValueError(
            f"not a database URL: {shown!r} (expected e.g. sqlite:///var/sahay.db or postgresql+psycopg://host/db)"
        ) from None


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url.query.get("mode", ""))


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (it stays set in the file; ":memory:" keeps "memory"), retrying within the busy timeout.

    On a fresh file several connections opening together all try the switch; SQLite answers the losers
    `database is locked` at once, without its busy handler (the switch upgrades a read lock, which could deadlock),
    so the wait is done here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    An in-memory SQLite database is one connection shared by all threads (StaticPool), so that it is one database;
    use it for tests only. A file database gets its parent directory created.
    """
    url = parse_url(url)
    try:
        url.get_dialect()
    except (NoSuchModuleError, ImportError):
        raise ValueError(
            f"unknown database kind {url.drivername!r}: use sqlite:///path or postgresql+psycopg://host/db"
        ) from None
    if url.get_backend_name() != "sqlite":
        try:
            return create_engine(url, pool_pre_ping=True, **kwargs)
        except ImportError as exc:
            raise ValueError(
                f"no driver for {url.drivername!r} ({exc.name} is not installed); for PostgreSQL install "
                "'psycopg[binary]' and use postgresql+psycopg://..."
            ) from None

    if _is_memory(url):
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 emits no BEGIN of its own; `_on_begin` does
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL mode
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def immediate(engine: Engine) -> Engine:
    """The same engine (pool, events) whose transactions take SQLite's write lock at BEGIN; no-op elsewhere."""
    return engine.execution_options(**{_IMMEDIATE: True})


def session_factory(engine: Engine, *, write: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; objects stay readable after commit. `write=True`: BEGIN IMMEDIATE on SQLite."""
    return sessionmaker(bind=immediate(engine) if write else engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic Config built in code: script_location is serve/migrations; no alembic.ini is read.

    For a new revision during development:
    `python -c "from alembic import command; from serve.db import alembic_config;
    command.revision(alembic_config('sqlite:///var/dev.db'), 'what changed', autogenerate=True)"`.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # configparser reads '%' as interpolation (a password may hold one); env.py takes the URL from attributes
        config.attributes["url"] = parse_url(url)
    return config


MIGRATE_BUSY_TIMEOUT_MS = 120_000


def migrate(target: str | URL | Engine) -> None:
    """Bring the database at `target` (a URL or an engine) to the newest schema; safe to call on every start.

    Runs in one transaction; two processes starting together take turns (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
    advisory lock).
    """
    from alembic import command

    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Migrators take turns for the write lock: wait longer than a request would (a fresh database
                # runs every migration, a table rebuild included, while the others wait).
                connection.connection.driver_connection.execute(f"PRAGMA busy_timeout = {MIGRATE_BUSY_TIMEOUT_MS}")
            try:
                connection.execution_options(**{_IMMEDIATE: True})
                with connection.begin():
                    if connection.dialect.name == "postgresql":  # one migrator at a time; released at commit
                        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
                    config = alembic_config()
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
            finally:
                if sqlite:  # the pooled connection goes back with the usual timeout
                    connection.connection.driver_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    finally:
        if engine is not target:
            engine.dispose()
