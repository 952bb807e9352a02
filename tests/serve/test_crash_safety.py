"""Crash safety (issue #6, section 7): an item is acknowledged to the caller only after it is committed.

A real server (a policy that enqueues every item) takes a burst of single-item classify calls from several threads;
once enough of them have been acknowledged it is killed with SIGKILL mid-burst (no shutdown code runs). A new server
on the same database must then hold every acknowledged item exactly once, under the queue id it was acknowledged
with; items whose answer was lost may or may not be there (committed just before the kill), but never twice. Sending
everything again is idempotent: the acknowledged items keep their ids and the queue ends with one row per item.
On SQLite (a file) and PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import create_engine, text

from tests.neutral_texts import SENTENCES
from tests.serve.conftest import MAX_ITEMS, start_server, stop_server
from tests.serve.queue_helpers import enqueue_all_policy, write_enqueue_all_policy

BURST = 200
WORKERS = 8
KILL_AFTER_ACKS = 40
"""The kill comes once this many calls have been acknowledged: mid-burst, with calls still in flight."""
TIMEOUT_S = 30.0

QUEUE_ALL_POLICY = enqueue_all_policy("test-crash-queue-all", sla_minutes=60, search_first=False)


def _start(artifact, directory, database_url):
    policy = write_enqueue_all_policy(directory, QUEUE_ALL_POLICY)
    return start_server(artifact, directory, SAHAY_POLICY_PATH=str(policy), SAHAY_DATABASE_URL=database_url)


def _item(item_id: str, i: int) -> dict:
    return {"id": item_id, "text": SENTENCES[i % len(SENTENCES)], "surface": "post"}


def _burst(srv, item_ids: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Send each item in its own request, WORKERS at a time; SIGKILL the server once KILL_AFTER_ACKS are
    acknowledged. (acknowledged item id -> queue id, unacknowledged item id -> what happened)."""
    acked: dict[str, int] = {}
    failed: dict[str, str] = {}
    lock = threading.Lock()
    enough = threading.Event()
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    client = httpx.Client(base_url=srv.base_url, headers=srv.auth_headers("service"), timeout=TIMEOUT_S, limits=limits)

    def send(i: int) -> None:
        item_id = item_ids[i]
        try:
            response = client.post("/v1/classify", json={"items": [_item(item_id, i)]})
        except httpx.TransportError as exc:
            with lock:
                failed[item_id] = type(exc).__name__
            return
        if response.status_code != 200:
            with lock:
                failed[item_id] = str(response.status_code)
            return
        result = response.json()["results"][0]
        assert result["id"] == item_id and isinstance(result["queue_item_id"], int), "a 200 without a queue id"
        with lock:
            acked[item_id] = result["queue_item_id"]
            if len(acked) >= KILL_AFTER_ACKS:
                enough.set()

    with client, ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(send, i) for i in range(len(item_ids))]
        assert enough.wait(TIMEOUT_S), f"only {len(acked)} calls acknowledged in {TIMEOUT_S} s"
        srv.process.kill()  # SIGKILL: no lifespan shutdown, nothing graceful
        srv.process.wait(timeout=TIMEOUT_S)
        for future in futures:
            future.result(timeout=TIMEOUT_S)  # re-raises an assertion from a worker
    return acked, failed


def _queue_via_api(srv) -> list[dict]:
    items, cursor = [], None
    with httpx.Client(base_url=srv.base_url, headers=srv.auth_headers("moderator"), timeout=TIMEOUT_S) as client:
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            response = client.get("/v1/queue", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            if (cursor := page["next_cursor"]) is None:
                return items


def _queue_rows(database_url: str) -> list[tuple[str, int]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(text("SELECT item_id, id FROM queue_items"))]
    finally:
        engine.dispose()


def test_sigkill_mid_burst_loses_no_acknowledged_item_and_duplicates_none(tiny_artifact, tmp_path, database_url):
    run = uuid.uuid4().hex[:8]
    item_ids = [f"crash-{run}-{i:03d}" for i in range(BURST)]

    first = _start(tiny_artifact, tmp_path, database_url)
    try:
        first.key("service"), first.key("moderator")  # made before the burst, kept in the database
        acked, failed = _burst(first, item_ids)
    finally:
        if first.process.poll() is None:
            stop_server(first)
    assert first.process.returncode == -9, "the server was not killed by SIGKILL"
    assert len(acked) >= KILL_AFTER_ACKS and failed, "the kill did not land mid-burst"
    assert set(acked) | set(failed) == set(item_ids) and not set(acked) & set(failed)
    # lost connections only (refused, reset, closed without an answer): no timeout, no error status
    assert not [kind for kind in failed.values() if "Timeout" in kind or kind.isdigit()], Counter(failed.values())

    # After the restart: every acknowledged item is there once, under the id it was acknowledged with.
    second = _start(tiny_artifact, tmp_path, database_url)
    second._keys = dict(first._keys)
    try:
        rows = _queue_rows(database_url)
        counts = Counter(item_id for item_id, _ in rows)
        assert not [i for i, n in counts.items() if n > 1], "an item is in the queue twice"
        stored = dict(rows)
        assert set(stored) <= set(item_ids)
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} acknowledged items were lost: {missing[:5]}"
        assert {i: stored[i] for i in acked} == acked
        listed = _queue_via_api(second)
        listed_ids = Counter(item["item_id"] for item in listed)
        assert not [i for i, n in listed_ids.items() if n > 1]
        assert set(acked) <= set(listed_ids) and set(listed_ids) == set(stored)
        assert {item["item_id"]: item["id"] for item in listed if item["item_id"] in acked} == acked

        # Everything again (MAX_ITEMS per request): acknowledged items keep their ids, one row per item in the end.
        again: dict[str, int] = {}
        with httpx.Client(base_url=second.base_url, headers=second.auth_headers("service"), timeout=TIMEOUT_S) as c:
            for start in range(0, BURST, MAX_ITEMS):
                chunk = [_item(item_ids[i], i) for i in range(start, min(start + MAX_ITEMS, BURST))]
                response = c.post("/v1/classify", json={"items": chunk})
                assert response.status_code == 200, response.text
                again.update({r["id"]: r["queue_item_id"] for r in response.json()["results"]})
        assert set(again) == set(item_ids) and all(isinstance(v, int) for v in again.values())
        assert {i: again[i] for i in acked} == acked
        assert {i: again[i] for i in stored} == stored  # committed but unanswered before the kill: same row
        rows = _queue_rows(database_url)
        assert len(rows) == BURST and dict(rows) == again
        assert len(set(again.values())) == BURST
    finally:
        stop_server(second)
