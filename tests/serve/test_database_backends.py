"""The database layer on both backends: SQLite (WAL) and PostgreSQL (see conftest `database_url` and tests/serve/pg.py).

Migrations reach head and are idempotent, concurrent migrators take turns, the key store works, and a real server
runs on PostgreSQL.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from serve.db import _PG_MIGRATION_LOCK, _enable_wal, alembic_config, make_engine, migrate
from serve.keys import KeyStore, UnknownKeyError
from tests.serve.conftest import start_server, stop_server


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _versions(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def test_migrate_reaches_head_and_is_idempotent(database_url):
    migrate(database_url)
    migrate(database_url)  # a second start changes nothing and does not fail
    assert _versions(database_url) == [_head()]
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"alembic_version", "api_keys", "queue_items", "audit_events", "webhook_outbox"} <= tables
        with engine.connect() as conn:  # the schema is really there and usable
            assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 0
    finally:
        engine.dispose()


def test_key_store_on_each_backend(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        store = KeyStore(engine, cache_ttl=0)
        svc, svc_key = store.create("service", "web-app")
        mod, mod_key = store.create("moderator", "asha.moderator")
        assert store.verify(svc_key).key_id == svc.key_id
        assert store.verify(mod_key).role == "moderator"
        assert store.get(svc.key_id).last_used_at is not None  # written on first use; timezone round-trips
        assert store.verify(svc_key[:-1] + ("A" if svc_key[-1] != "A" else "B")) is None

        revoked = store.revoke(svc.key_id)
        assert revoked.revoked_at is not None and not revoked.active
        assert store.revoke(svc.key_id).revoked_at == revoked.revoked_at  # idempotent
        assert store.verify(svc_key) is None and store.verify(mod_key) is not None
        with pytest.raises(UnknownKeyError):
            store.revoke("0123456789ab")

        listed = store.list()
        assert [r.key_id for r in listed] == [svc.key_id, mod.key_id]
        assert [r.active for r in listed] == [False, True]
        assert all(r.created_at.tzinfo is not None for r in listed)
    finally:
        engine.dispose()


def test_backend_specifics(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one().lower() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            else:
                assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
                version = conn.exec_driver_sql("SHOW server_version").scalar_one()
                assert int(version.split(".")[0]) >= 13, version
    finally:
        engine.dispose()


def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    engine = make_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def test_0004_widens_the_audit_event_check_and_keeps_the_rows(database_url):
    """0004 lets `export` and `purge` audit records in (SQLite: the table is rebuilt, rows and index kept); its
    downgrade refuses while such records exist (never deletes audit records) and otherwise restores the old list."""
    migrate(database_url)
    engine = make_engine(database_url)
    insert = "INSERT INTO audit_events (at, key_id, role, event) VALUES (CURRENT_TIMESTAMP, 'cli:ops', 'admin', :e)"
    try:
        with engine.begin() as conn:
            conn.execute(text(insert), [{"e": "claim"}, {"e": "export"}, {"e": "purge"}])
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(insert), {"e": "bogus"})
        with pytest.raises(RuntimeError, match="2 audit record"):
            _downgrade(database_url, "0003")
        assert _versions(database_url) == ["0004"]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE event IN ('export', 'purge')"))  # the operator's choice
        engine.dispose()
        _downgrade(database_url, "0003")
        assert _versions(database_url) == ["0003"]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(insert), {"e": "purge"})
        migrate(database_url)
        with engine.begin() as conn:
            conn.execute(text(insert), {"e": "purge"})
            assert conn.execute(text("SELECT event FROM audit_events ORDER BY id")).scalars().all() == [
                "claim",
                "purge",
            ]
        (check,) = inspect(engine).get_check_constraints("audit_events")
        assert check["name"] == "ck_audit_events_event"
        assert [i["name"] for i in inspect(engine).get_indexes("audit_events")] == ["ix_audit_events_queue_item_id"]
    finally:
        engine.dispose()


def test_concurrent_migrations_take_turns(database_url):
    """Three processes starting together on a fresh database: all succeed and the schema is made once."""
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            migrate(database_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert _versions(database_url) == [_head()]


def test_sqlite_connections_opening_together_on_a_fresh_file_all_succeed(tmp_path):
    """Each one switches the new file to WAL; SQLite answers all but one `database is locked` at once (no busy
    handler for that upgrade), so `make_engine` retries. Without the retry about 1 round in 8 failed here."""
    for round_ in range(100):
        url = f"sqlite:///{tmp_path}/fresh-{round_}.db"
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def connect(url: str = url, barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            engine = make_engine(url)
            try:
                barrier.wait(timeout=30)
                with engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one().lower() == "wal"
            except BaseException as exc:
                errors.append(exc)
            finally:
                engine.dispose()

        threads = [threading.Thread(target=connect) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == [], f"round {round_}"


def test_the_wal_switch_retries_only_a_lock_and_only_within_the_busy_timeout(monkeypatch):
    class Cursor:
        def __init__(self, failures: list[str]):
            self.failures, self.calls = failures, 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.failures:
                raise sqlite3.OperationalError(self.failures.pop(0))

    cursor = Cursor(["database is locked", "database is locked"])
    _enable_wal(cursor)
    assert cursor.calls == 3
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _enable_wal(Cursor(["disk I/O error", "database is locked"]))
    monkeypatch.setattr("serve.db.BUSY_TIMEOUT_MS", 100)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _enable_wal(Cursor(["database is locked"] * 10_000))
    assert time.monotonic() - started < 5


def test_postgres_migrations_wait_for_the_advisory_lock(postgres_database_url):
    """While another session holds the migration lock, `migrate` waits; it runs once the lock is released."""
    holder = make_engine(postgres_database_url)
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(postgres_database_url)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    try:
        with holder.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
            thread = threading.Thread(target=run)
            thread.start()
            time.sleep(1.5)
            assert not done.is_set(), "migrate did not wait for the advisory lock"
            assert "alembic_version" not in inspect(holder).get_table_names()
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
            conn.commit()
        assert done.wait(60)
        thread.join(10)
        assert errors == []
        assert _versions(postgres_database_url) == [_head()]
    finally:
        holder.dispose()


def test_server_runs_on_postgres(tiny_artifact, tmp_path, postgres_database_url):
    srv = start_server(tiny_artifact, tmp_path, SAHAY_DATABASE_URL=postgres_database_url)
    try:
        headers = srv.auth_headers("service")  # serve.keys.create_key in the server's PostgreSQL database
        body = {"items": [{"id": "a", "text": "we planted tomatoes in the garden", "surface": "post"}]}
        r = httpx.post(f"{srv.base_url}/v1/classify", json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        assert [res["id"] for res in r.json()["results"]] == ["a"]
        r = httpx.post(f"{srv.base_url}/v1/classify", json=body, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert r.status_code == 401
    finally:
        code = stop_server(srv)
    assert code in (0, -signal.SIGTERM), srv.logs()[-2000:]  # uvicorn re-raises SIGTERM after a graceful stop
    assert "Application shutdown complete" in srv.logs() and "Traceback" not in srv.logs()
    assert _versions(postgres_database_url) == [_head()]
