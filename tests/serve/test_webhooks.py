"""Urgent-item webhooks (serve/webhooks.py) against a local receiver: the outbox row written with the enqueue, the
signed POST, no text unless allowed, retries with growing delays, giving up, surviving a restart, two dispatchers
never double-sending, configuration checks, and one end-to-end run through the real server.

The outbox and dispatcher tests take their database from the `database_url` fixture (SQLite and PostgreSQL).
Texts here are benign stand-ins.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select, text

from serve import webhooks
from serve.queue import Entry, Queue, pseudonymise
from serve.settings import ServeSettings
from serve.tables import QueueItem, WebhookDelivery
from tests.serve.conftest import REPO, start_server, stop_server
from tests.serve.queue_helpers import (
    RAW_AUTHOR,
    SERVICE,
    TEXT,
    enqueue_all_policy,
    make_entry,
    write_enqueue_all_policy,
)
from tests.serve.queue_helpers import SECRET as PSEUDONYM_SECRET

WEBHOOK_SECRET = "webhook-test-secret-0123456789"
URGENT = {
    "label": "intent",
    "probabilities": {"intent": 0.7, "promotion": 0.05, "ideation": 0.15, "informational": 0.05, "none": 0.05},
    "signals": {"at_risk": 0.85, "urgent": 0.7, "violating": 0.05},
    "rule": "urgent",
    "priority": 1,
    "sla_minutes": 15,
}
"""What makes an entry urgent (priority 1, 15 minutes): the fields `entry` sets over `make_entry`'s."""


# --- the local receiver -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST; the first `fail_first` get `fail_status`."""

    def __init__(self, port: int = 0, *, fail_first: int = 0, fail_status: int = 500):
        self.requests: list[Received] = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests.append(
                        Received(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(receiver.fail_status if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def verify(request: Received, secret: str = WEBHOOK_SECRET) -> bool:
    """What a receiver does: HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("x-sahay-signature", ""))


# --- helpers ----------------------------------------------------------------------------------------------------


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, name: str) -> list[dict]:
        return [r.fields for r in self.records if r.getMessage() == name]


@pytest.fixture
def log():
    logger = logging.getLogger(f"sahay.test.webhooks.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.handler = handler
    return logger


@pytest.fixture
def queue(engine) -> Queue:
    return Queue(engine, pseudonym_secret=PSEUDONYM_SECRET)


def entry(item_id: str | None = None, **overrides) -> Entry:
    """An urgent queue entry (a random item id unless given); any field may be overridden."""
    return make_entry(item_id or f"p-{uuid.uuid4().hex[:10]}", **{**URGENT, **overrides})


def settings(url: str | None, **overrides) -> ServeSettings:
    return ServeSettings(webhook_url=url, webhook_secret=WEBHOOK_SECRET if url else None, **overrides)


def outbox(engine) -> list[WebhookDelivery]:
    with engine.connect() as conn:
        return list(conn.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).all())


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class NoJitter:
    def uniform(self, a: float, b: float) -> float:
        return 1.0


FAST = {"poll_s": 0.02, "backoff_base_s": 0.05}


# --- the outbox row ---------------------------------------------------------------------------------------------


def test_only_new_urgent_items_get_an_outbox_row_without_text_or_raw_ids(queue, engine):
    urgent, normal = entry("u1", author_id=RAW_AUTHOR), entry("n1", priority=2, sla_minutes=60, rule="at_risk")
    ids = queue.enqueue([urgent, normal], SERVICE)
    queue.enqueue([urgent], SERVICE)  # an idempotent repeat
    queue.enqueue([entry("n1", priority=1)], SERVICE)  # a repeat of a non-urgent item at priority 1: still a repeat
    rows = outbox(engine)
    assert len(rows) == 1
    (row,) = rows
    assert row.queue_item_id == ids[0] and row.state == "pending" and row.attempts == 0 and row.event == "queue.urgent"
    payload = row.payload
    assert payload["queue_item_id"] == ids[0] and payload["item_id"] == "u1"
    assert payload["delivery_id"] == row.delivery_id
    assert payload["priority"] == 1 and payload["label"] == "intent" and payload["rule"] == "urgent"
    assert payload["author_pseudonym"] == pseudonymise(RAW_AUTHOR, PSEUDONYM_SECRET.encode())
    assert payload["sla_deadline"].endswith("Z") and payload["model_version"] == "m-1"
    assert "text" not in payload and "spans" not in payload
    with engine.connect() as conn:
        dump = repr([tuple(r) for r in conn.execute(text("SELECT * FROM webhook_outbox"))])
    assert TEXT not in dump and RAW_AUTHOR not in dump and "bus" not in dump


def test_the_outbox_row_is_in_the_enqueue_transaction(queue, engine, monkeypatch):
    real, calls = webhooks.add_to_outbox, []

    def failing_second(session, queue_id, row, now):
        calls.append(queue_id)
        if len(calls) == 2:
            raise RuntimeError("outbox write failed")
        return real(session, queue_id, row, now)

    monkeypatch.setattr(webhooks, "add_to_outbox", failing_second)
    with pytest.raises(RuntimeError, match="outbox write failed"):
        queue.enqueue([entry("a"), entry("b")], SERVICE)
    with engine.connect() as conn:
        assert conn.execute(select(QueueItem.id)).all() == []
    assert outbox(engine) == []


# --- delivery ---------------------------------------------------------------------------------------------------


def test_an_urgent_item_is_delivered_signed_and_without_text(queue, engine, receiver, log):
    async def scenario():
        handle = webhooks.start_dispatcher(engine, settings(receiver.url), log, **FAST)
        try:
            (queue_id,) = await asyncio.to_thread(queue.enqueue, [entry(author_id=RAW_AUTHOR)], SERVICE)
            await until(lambda: outbox(engine)[0].state == "delivered", what="delivery")
            return queue_id
        finally:
            await handle.stop()

    queue_id = asyncio.run(scenario())
    (request,) = receiver.requests
    assert request.path == "/hook" and request.headers["content-type"] == "application/json"
    assert verify(request) and not verify(request, "another-secret-0123456789")
    body = request.json()
    assert body["queue_item_id"] == queue_id and body["priority"] == 1 and body["label"] == "intent"
    assert body["delivery_id"] == request.headers["x-sahay-delivery"] == outbox(engine)[0].delivery_id
    assert abs(int(request.headers["x-sahay-timestamp"]) - time.time()) < 60
    assert "text" not in body and TEXT.encode() not in request.body and RAW_AUTHOR.encode() not in request.body
    row = outbox(engine)[0]
    assert row.attempts == 1 and row.last_status == 204 and row.delivered_at is not None
    (attempt,) = log.handler.events("webhook_attempt")
    assert attempt["outcome"] == "delivered" and attempt["attempt"] == 1 and attempt["status"] == 204
    assert attempt["delivery_id"] == row.delivery_id and attempt["queue_item_id"] == queue_id
    assert TEXT not in repr(log.handler.records) and "payload" not in attempt


def test_the_text_is_sent_only_when_the_setting_allows_it(queue, engine, receiver, log):
    async def scenario():
        handle = webhooks.start_dispatcher(engine, settings(receiver.url, webhook_include_text=True), log, **FAST)
        try:
            await asyncio.to_thread(queue.enqueue, [entry()], SERVICE)
            await until(lambda: len(receiver.requests) == 1, what="delivery")
        finally:
            await handle.stop()

    asyncio.run(scenario())
    assert verify(receiver.requests[0]) and receiver.requests[0].json()["text"] == TEXT
    assert "text" not in outbox(engine)[0].payload  # the outbox itself never holds it
    assert TEXT not in repr(log.handler.records)


def test_failures_are_retried_with_growing_delays_then_delivered(queue, engine, log):
    receiver = Receiver(fail_first=3, fail_status=503)
    try:

        async def scenario():
            s = settings(receiver.url, webhook_max_attempts=5)
            handle = webhooks.start_dispatcher(engine, s, log, poll_s=0.01, backoff_base_s=0.25, rng=NoJitter())
            try:
                await asyncio.to_thread(queue.enqueue, [entry()], SERVICE)
                await until(lambda: outbox(engine)[0].state == "delivered", what="delivery")
            finally:
                await handle.stop()

        asyncio.run(scenario())
    finally:
        receiver.close()
    requests = receiver.requests
    assert len(requests) == 4 and all(verify(r) for r in requests)
    assert len({r.headers["x-sahay-delivery"] for r in requests}) == 1  # one delivery id: the receiver de-dups
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert gaps[0] >= 0.24 and gaps[1] >= 0.49 and gaps[2] >= 0.99, gaps  # 0.25, 0.5, 1 s
    assert gaps[0] < gaps[1] < gaps[2], gaps
    row = outbox(engine)[0]
    assert row.state == "delivered" and row.attempts == 4 and row.last_status == 204
    outcomes = [(e["attempt"], e["outcome"], e["status"]) for e in log.handler.events("webhook_attempt")]
    assert outcomes == [(1, "retry", 503), (2, "retry", 503), (3, "retry", 503), (4, "delivered", 204)]


def test_it_gives_up_after_max_attempts(queue, engine, log):
    receiver = Receiver(fail_first=1000)
    try:

        async def scenario():
            handle = webhooks.start_dispatcher(engine, settings(receiver.url, webhook_max_attempts=3), log, **FAST)
            try:
                await asyncio.to_thread(queue.enqueue, [entry()], SERVICE)
                await until(lambda: outbox(engine)[0].state == "failed", what="giving up")
                await asyncio.sleep(0.3)  # nothing more is sent
            finally:
                await handle.stop()

        asyncio.run(scenario())
    finally:
        receiver.close()
    assert len(receiver.requests) == 3
    row = outbox(engine)[0]
    assert row.attempts == 3 and row.last_status == 500 and row.last_error == "HTTP 500" and row.delivered_at is None
    assert [e["outcome"] for e in log.handler.events("webhook_attempt")] == ["retry", "retry", "failed"]


def test_pending_rows_survive_a_restart(queue, engine, log):
    down = Receiver()
    port = down.port
    down.close()  # nothing listens: connections are refused
    url = f"http://127.0.0.1:{port}/hook"

    async def first_run():
        handle = webhooks.start_dispatcher(engine, settings(url), log, poll_s=0.02, backoff_base_s=0.2)
        try:
            await asyncio.to_thread(queue.enqueue, [entry("while-down")], SERVICE)
            await until(lambda: outbox(engine)[0].last_error is not None, what="a failed attempt")
        finally:
            await handle.stop()

    asyncio.run(first_run())
    (row,) = outbox(engine)
    assert row.state == "pending" and row.attempts >= 1 and row.last_status is None and row.last_error
    queue.enqueue([entry("while-stopped")], SERVICE)  # committed while no dispatcher runs at all

    receiver = Receiver(port)
    try:

        async def second_run():
            handle = webhooks.start_dispatcher(engine, settings(url), log, **FAST)
            try:
                await until(lambda: all(r.state == "delivered" for r in outbox(engine)), what="delivery after restart")
            finally:
                await handle.stop()

        asyncio.run(second_run())
    finally:
        receiver.close()
    assert sorted(r.json()["item_id"] for r in receiver.requests) == ["while-down", "while-stopped"]
    assert all(verify(r) for r in receiver.requests)


def test_two_dispatchers_never_send_the_same_delivery_twice(queue, engine, receiver, log):
    async def scenario():
        s = settings(receiver.url)
        handles = [webhooks.start_dispatcher(engine, s, log, poll_s=0.005) for _ in range(2)]
        try:
            await asyncio.to_thread(queue.enqueue, [entry() for _ in range(12)], SERVICE)
            await until(lambda: all(r.state == "delivered" for r in outbox(engine)), what="all delivered")
            await asyncio.sleep(0.2)
        finally:
            for h in handles:
                await h.stop()

    asyncio.run(scenario())
    ids = [r.headers["x-sahay-delivery"] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert all(r.attempts == 1 for r in outbox(engine))


def test_without_a_url_rows_are_skipped_not_kept_for_later(queue, engine, log):
    async def scenario():
        handle = webhooks.start_dispatcher(engine, settings(None), log, **FAST)
        try:
            await asyncio.to_thread(queue.enqueue, [entry()], SERVICE)
            await until(lambda: outbox(engine)[0].state == "skipped", what="skipping")
        finally:
            await handle.stop()

    asyncio.run(scenario())
    assert outbox(engine)[0].attempts == 0
    assert log.handler.events("webhook_skipped")[0]["count"] == 1


# --- configuration and backoff (no database) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        ("http://safety.example.com/hook", WEBHOOK_SECRET, "must use https"),
        ("ftp://safety.example.com/hook", WEBHOOK_SECRET, "must use https"),
        ("https:///nohost", WEBHOOK_SECRET, "no host"),
        ("https://safety.example.com/hook", None, "SAHAY_WEBHOOK_SECRET is required"),
        ("http://localhost:9/hook", "", "SAHAY_WEBHOOK_SECRET is required"),
    ],
)
def test_a_misconfiguration_stops_the_start(url, secret, message, log):
    s = ServeSettings(webhook_url=url, webhook_secret=secret)

    async def start():
        webhooks.start_dispatcher(None, s, log)

    with pytest.raises(webhooks.WebhookConfigError, match=message) as info:
        asyncio.run(start())
    assert WEBHOOK_SECRET not in str(info.value)
    assert log.handler.events("webhook_config_invalid")


@pytest.mark.parametrize(
    "url", ["https://safety.example.com/hook", "http://127.0.0.1:8080/hook", "http://localhost/h", "http://[::1]/h"]
)
def test_good_configurations(url):
    assert webhooks.check_settings(ServeSettings(webhook_url=url, webhook_secret=WEBHOOK_SECRET)) == (
        url,
        WEBHOOK_SECRET.encode(),
    )
    assert webhooks.check_settings(ServeSettings()) is None
    assert webhooks.check_settings(ServeSettings(webhook_url="")) is None


def test_backoff_grows_is_jittered_and_capped():
    import random

    rng = random.Random(7)
    for attempt in range(1, 12):
        nominal = min(300.0, 2 ** (attempt - 1))
        assert 0.8 * nominal <= webhooks.backoff_delay(attempt, rng=rng) <= 1.2 * nominal
    delays = [webhooks.backoff_delay(a, rng=rng) for a in range(1, 9)]
    assert delays == sorted(delays)  # +-20% jitter never reorders doubling delays
    assert webhooks.backoff_delay(30, rng=rng) <= 360


# --- end to end -------------------------------------------------------------------------------------------------

URGENT_ALL_POLICY = enqueue_all_policy(
    "test-urgent-all", rule="urgent_all", priority=1, sla_minutes=15, search_first=False
)


def test_end_to_end_through_the_real_server(tiny_artifact, tmp_path, receiver):
    policy = write_enqueue_all_policy(tmp_path, URGENT_ALL_POLICY)
    srv = start_server(
        tiny_artifact,
        tmp_path,
        SAHAY_POLICY_PATH=str(policy),
        SAHAY_WEBHOOK_URL=receiver.url,
        SAHAY_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    try:
        item = {"id": f"e2e-{uuid.uuid4().hex[:8]}", "text": TEXT, "surface": "post"}
        body = {"items": [item]}
        r = httpx.post(f"{srv.base_url}/v1/classify", json=body, headers=srv.auth_headers(), timeout=30)
        assert r.status_code == 200, r.text
        queue_id = r.json()["results"][0]["queue_item_id"]
        deadline = time.monotonic() + 15
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        again = httpx.post(f"{srv.base_url}/v1/classify", json=body, headers=srv.auth_headers(), timeout=30)
        assert again.json()["results"][0]["queue_item_id"] == queue_id  # idempotent: no second notification
        time.sleep(1.0)
    finally:
        stop_server(srv)
    assert len(receiver.requests) == 1, [r.headers for r in receiver.requests]
    (request,) = receiver.requests
    assert verify(request)
    payload = request.json()
    assert payload["queue_item_id"] == queue_id and payload["item_id"] == item["id"] and payload["priority"] == 1
    assert payload["rule"] == "urgent_all" and payload["sla_deadline"].endswith("Z")
    assert "text" not in payload and TEXT.encode() not in request.body
    logs = srv.logs()
    assert '"event": "webhook_attempt"' in logs and '"outcome": "delivered"' in logs
    assert TEXT not in logs


def test_the_server_refuses_to_start_with_an_insecure_webhook_url(tiny_artifact, tmp_path):
    env = {
        "SAHAY_MODEL_PATH": str(tiny_artifact),
        "SAHAY_PORT": "0",
        "SAHAY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "SAHAY_WEBHOOK_URL": "http://safety.example.com/hook",
        "SAHAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from serve.app import main; main()"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "SAHAY_WEBHOOK_URL must use https" in done.stderr
    assert WEBHOOK_SECRET not in done.stderr
