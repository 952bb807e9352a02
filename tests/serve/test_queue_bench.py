"""`sahay bench --queue` (serve/queue_bench.py): a short run on SQLite and PostgreSQL (figures not asserted beyond
being positive and well-formed), fresh databases left behind as found, its errors, and the command via the root CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from cli import app
from serve.queue_bench import ENQUEUE_BATCHES, LIST_LIMIT, SCHEMA_PREFIX, QueueBenchError, run_queue_bench

runner = CliRunner()
PHASE_FIELDS = {"phase", "batch_size", "calls", "units", "unit", "per_s", "calls_per_s", "wall_s", "latency_ms"}


def check_database(db: dict, backend: str, seconds: float) -> None:
    assert db["backend"] == backend and db["server_version"]
    assert [(p["phase"], p["batch_size"]) for p in db["phases"]] == [
        *(("enqueue", b) for b in ENQUEUE_BATCHES),
        ("claim+decide", 1),
        ("list", LIST_LIMIT),
    ]
    for p in db["phases"]:
        assert set(p) >= PHASE_FIELDS
        assert p["calls"] > 0 and p["units"] > 0 and p["per_s"] > 0 and p["calls_per_s"] > 0
        lat = p["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert p["wall_s"] >= seconds or p.get("ran_out_of_items")
    enqueue1, enqueue16, pairs, listing = db["phases"]
    assert enqueue1["units"] == enqueue1["calls"] and enqueue16["units"] == 16 * enqueue16["calls"]
    assert pairs["unit"] == "pairs" and listing["unit"] == "calls"
    # everything enqueued (warm-up included) that was not decided is still queued when the list is measured
    assert listing["queued_items"] == db["enqueued_total"] - pairs["units"] > 0


def test_the_bench_on_a_temporary_sqlite_file():
    steps = []
    report = run_queue_bench([None], seconds=1.0, on_step=steps.append)
    (db,) = report["databases"]
    check_database(db, "sqlite", 1.0)
    assert db["journal_mode"] == "wal" and db["synchronous"] == "NORMAL" and "temporary" in db["fresh"]
    assert report["settings"]["seconds_per_phase"] == 1.0 and report["machine"]["cpu_count"] >= 1
    assert any("claim + decide" in step for step in steps)
    json.dumps(report)


def test_the_bench_on_postgresql_uses_its_own_schema_and_drops_it(postgres_database_url):
    engine = create_engine(postgres_database_url)
    try:
        with engine.begin() as conn:  # something of the user's that the bench must not touch
            conn.execute(text("CREATE TABLE queue_items (id integer)"))
            conn.execute(text("INSERT INTO queue_items VALUES (7)"))
        report = run_queue_bench([postgres_database_url], seconds=1.0)
        with engine.connect() as conn:
            schemas = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": SCHEMA_PREFIX + "%"}
            ).all()
            assert conn.execute(text("SELECT id FROM public.queue_items")).scalars().all() == [7]
    finally:
        engine.dispose()
    assert schemas == []
    (db,) = report["databases"]
    check_database(db, "postgresql", 1.0)
    assert {"fsync", "synchronous_commit"} <= set(db) and "dropped after" in db["fresh"]


def test_a_sqlite_url_must_name_a_new_file(tmp_path):
    existing = tmp_path / "there.db"
    existing.write_bytes(b"")
    with pytest.raises(QueueBenchError, match="fresh SQLite file"):
        run_queue_bench([f"sqlite:///{existing}"], seconds=0.1)
    with pytest.raises(QueueBenchError, match="in-memory"):
        run_queue_bench(["sqlite://"], seconds=0.1)
    new = tmp_path / "new.db"
    report = run_queue_bench([f"sqlite:///{new}"], seconds=0.1)
    assert report["databases"][0]["backend"] == "sqlite"
    assert not list(tmp_path.glob("new.db*"))  # removed after
    with pytest.raises(QueueBenchError, match="unsupported database"):
        run_queue_bench(["mysql://u@h/db"], seconds=0.1)
    with pytest.raises(QueueBenchError, match="seconds"):
        run_queue_bench([None], seconds=0)


def test_an_unreachable_postgresql_is_a_clear_error_without_the_password():
    with pytest.raises(QueueBenchError, match="cannot create a schema") as caught:
        run_queue_bench(["postgresql+psycopg://bench:hunter2@127.0.0.1:1/none"], seconds=0.1)
    assert "hunter2" not in str(caught.value)


def test_the_cli_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "bench_queue.json"
    result = runner.invoke(app, ["bench", "--queue", "--seconds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "claim+decide" in result.output and "items/s" in result.output and f"wrote {out}" in result.output
    report = json.loads(out.read_text())
    (db,) = report["databases"]
    check_database(db, "sqlite", 1.0)


def test_the_cli_refuses_mixed_options():
    result = runner.invoke(app, ["bench", "--database-url", "sqlite:///x.db"])
    assert result.exit_code == 2 and "--database-url goes with --queue" in result.output
    result = runner.invoke(app, ["bench", "--queue", "--http", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and "--queue measures the moderation queue" in result.output
