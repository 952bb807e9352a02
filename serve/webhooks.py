"""Urgent-item webhooks to the platform's own safety team, through a persisted outbox.

What is urgent: a queue item enqueued at priority 1 (`URGENT_PRIORITY`; the policy's `urgent`, `search_urgent`
and `urgent_and_violating` rules use it). `serve.queue.Queue.enqueue` calls `add_to_outbox` for each *newly*
inserted urgent item, inside the transaction of the insert (an idempotent repeat adds nothing), so an item is
never queued without its notification and a crash or restart loses none.

Rows are always written, whether or not SAHAY_WEBHOOK_URL is set (the queue does not know the settings); a
dispatcher running without a URL marks them `skipped`, so that turning webhooks on later does not send a backlog of
stale notifications.

The dispatcher (`start_dispatcher`, one asyncio task per server process) polls for due rows (every `poll_s`, and at
once when this process enqueues an urgent item), claims each with a conditional UPDATE (`state = 'pending' AND
next_attempt_at <= now` -> `attempts + 1`, `next_attempt_at = now + lease`) whose row count says whether it won, so
two server processes never send the same attempt; a sender that dies mid-attempt leaves a claim that expires after
the lease, and the row is sent again. Each attempt is an HTTP POST of the JSON payload with

    Content-Type: application/json
    X-Sahay-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by SAHAY_WEBHOOK_SECRET>
    X-Sahay-Timestamp: <unix seconds of this attempt>
    X-Sahay-Delivery: <delivery id: the same on every attempt of one notification, also in the body>

2xx means delivered. Anything else (another status, a timeout, a refused connection) is retried after
`min(cap, base * 2 ** (attempt - 1))` seconds, times a jitter factor in [0.8, 1.2], until
SAHAY_WEBHOOK_MAX_ATTEMPTS attempts have failed (state `failed`). Delivery is at least once: a receiver
de-duplicates on X-Sahay-Delivery. Redirects are not followed (a 3xx is a failure).

Never sent: the text (unless SAHAY_WEBHOOK_INCLUDE_TEXT is set; it is then read from the queue item at send time,
so a text that retention purged is sent as null), the explanation spans (they quote the text), the platform's
author id (only its pseudonym), anything about the caller. Log lines carry the delivery id, queue item id,
attempt, status and an error type, never the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, exists, insert, select, update
from sqlalchemy.orm import Session

from serve import logging as slog
from serve.db import session_factory
from serve.tables import QueueItem, WebhookDelivery, utcnow

__all__ = [
    "EVENT_URGENT",
    "URGENT_PRIORITY",
    "WebhookConfigError",
    "add_to_outbox",
    "backoff_delay",
    "check_settings",
    "sign",
    "start_dispatcher",
    "wake",
]

URGENT_PRIORITY = 1
"""Queue items enqueued at this priority are notified."""
EVENT_URGENT = "queue.urgent"
SIGNATURE_HEADER = "X-Sahay-Signature"
TIMESTAMP_HEADER = "X-Sahay-Timestamp"
DELIVERY_HEADER = "X-Sahay-Delivery"
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
POLL_S = 0.5
BATCH = 20
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class WebhookConfigError(ValueError):
    """The webhook settings cannot work (the message names the variable, never a secret)."""


# ----------------------------------------------------------------------------------------------- outbox


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def add_to_outbox(session: Session, queue_id: int, row: dict[str, Any], now: datetime) -> bool:
    """In the caller's (enqueue) transaction: an outbox row for the newly inserted queue item `queue_id` (`row`: the
    values it was inserted with) if it is urgent. Whether one was added. The payload never holds the text, the spans
    or a raw author id."""
    if row["priority"] != URGENT_PRIORITY:
        return False
    delivery_id = uuid.uuid4().hex
    payload = {
        "event": EVENT_URGENT,
        "delivery_id": delivery_id,
        "queue_item_id": queue_id,
        "item_id": row["item_id"],
        "surface": row["surface"],
        "lang": row["lang"],
        "priority": row["priority"],
        "label": row["label"],
        "signals": dict(row["signals"]),
        "rule": row["rule"],
        "policy_version": row["policy_version"],
        "model_version": row["model_version"],
        "created_at": _iso(row["created_at"]),
        "sla_deadline": _iso(row["sla_deadline"]),
        "author_pseudonym": row.get("author_hash"),
    }
    session.execute(
        insert(WebhookDelivery).values(
            delivery_id=delivery_id,
            queue_item_id=queue_id,
            event=EVENT_URGENT,
            payload=payload,
            state="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )
    return True


# ----------------------------------------------------------------------------------------------- helpers


def sign(body: bytes, secret: bytes) -> str:
    """The X-Sahay-Signature value for `body`: `sha256=` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def backoff_delay(
    attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S, rng: Any = random
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped, jittered by +-20%
    (so that successive delays still grow until the cap)."""
    return min(cap, base * 2 ** (attempt - 1)) * rng.uniform(0.8, 1.2)


def _secret_bytes(settings: Any) -> bytes | None:
    secret = getattr(settings, "webhook_secret", None)
    if secret is None:
        return None
    value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
    return value.encode("utf-8") or None


def check_settings(settings: Any) -> tuple[str, bytes] | None:
    """(url, secret) when webhooks are on, None when SAHAY_WEBHOOK_URL is unset; WebhookConfigError when they
    cannot work: the URL must be https (http only for localhost / 127.0.0.1 / ::1) and a secret is required."""
    url = (getattr(settings, "webhook_url", None) or "").strip()
    if not url:
        return None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise WebhookConfigError("SAHAY_WEBHOOK_URL is not a valid URL") from None
    host = (parsed.host or "").lower()
    if not host:
        raise WebhookConfigError("SAHAY_WEBHOOK_URL has no host (expected e.g. https://safety.example.com/hooks)")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and host in LOCAL_HOSTS):
        raise WebhookConfigError(
            f"SAHAY_WEBHOOK_URL must use https (got {parsed.scheme!r} for host {host!r}); plain http is allowed only "
            "for localhost / 127.0.0.1, for development and tests"
        )
    secret = _secret_bytes(settings)
    if secret is None:
        raise WebhookConfigError(
            "SAHAY_WEBHOOK_SECRET is required when SAHAY_WEBHOOK_URL is set: every webhook body is signed with it "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return url, secret


# ----------------------------------------------------------------------------------------------- dispatcher

_running: set[_Dispatcher] = set()


def wake() -> None:
    """Tell this process's dispatchers that an urgent item was just committed (callable from any thread)."""
    for dispatcher in list(_running):
        dispatcher.wake()


@dataclass(frozen=True)
class _Claim:
    id: int
    delivery_id: str
    queue_item_id: int
    attempt: int
    payload: dict[str, Any]


class _Dispatcher:
    def __init__(
        self,
        engine: Engine,
        settings: Any,
        log: logging.Logger,
        target: tuple[str, bytes] | None,
        *,
        backoff_base_s: float,
        backoff_cap_s: float,
        poll_s: float,
        rng: Any,
        clock: Callable[[], datetime],
    ):
        self.engine = engine
        self.log = log
        self.url, self.secret = target if target is not None else (None, b"")
        self.include_text = bool(getattr(settings, "webhook_include_text", False))
        self.max_attempts = int(getattr(settings, "webhook_max_attempts", 8))
        self.timeout_s = float(getattr(settings, "webhook_timeout_s", 5.0))
        self.lease = timedelta(seconds=2 * self.timeout_s + 30)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.poll_s = poll_s
        self.rng = rng
        self.clock = clock
        self._read = session_factory(engine)
        self._write = session_factory(engine, write=True)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._client: httpx.AsyncClient | None = None
        self._task = self._loop.create_task(self._run(), name="sahay-webhooks")
        _running.add(self)

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """Finish the attempt in flight (at most about the timeout), then end; unfinished rows stay pending."""
        _running.discard(self)
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=2 * self.timeout_s + 5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the loop ----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            self._client = client
            while not self._stopping:
                self._wake.clear()  # a wake-up during this round makes the wait below return at once
                try:
                    busy = await self._tick()
                except Exception as exc:  # a database hiccup must not end notifications; try again next poll
                    slog.log_event(self.log, "webhook_dispatcher_error", logging.ERROR, error=type(exc).__name__)
                    busy = False
                if busy or self._stopping:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)

    async def _tick(self) -> bool:
        """One round; whether it did anything (then the next round starts at once)."""
        if self.url is None:
            return await asyncio.to_thread(self._skip_pending)
        claims = await asyncio.to_thread(self._claim_due)
        if not claims:
            return False
        await asyncio.gather(*(self._attempt(claim) for claim in claims))
        return True

    def _skip_pending(self) -> bool:
        with self._read() as session:
            if not session.scalar(select(exists().where(WebhookDelivery.state == "pending"))):
                return False
        with self._write.begin() as session:
            count = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.state == "pending")
                .values(state="skipped", last_error="no webhook URL configured")
                .execution_options(synchronize_session=False)
            ).rowcount
        slog.log_event(self.log, "webhook_skipped", logging.WARNING, count=count, reason="SAHAY_WEBHOOK_URL is unset")
        return False

    def _claim_due(self) -> list[_Claim]:
        now = self.clock()
        due = (WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
        with self._read() as session:
            ids = session.scalars(
                select(WebhookDelivery.id)
                .where(*due)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(BATCH)
            ).all()
        if not ids:
            return []
        claims = []
        with self._write.begin() as session:
            for row_id in ids:
                won = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == row_id, *due)
                    .values(
                        attempts=WebhookDelivery.attempts + 1, next_attempt_at=now + self.lease, last_attempt_at=now
                    )
                    .returning(
                        WebhookDelivery.delivery_id,
                        WebhookDelivery.queue_item_id,
                        WebhookDelivery.attempts,
                        WebhookDelivery.payload,
                    )
                    .execution_options(synchronize_session=False)
                ).one_or_none()
                if won is not None:  # else another process claimed it first
                    claims.append(_Claim(row_id, won.delivery_id, won.queue_item_id, won.attempts, dict(won.payload)))
            if claims and self.include_text:
                texts = dict(
                    session.execute(
                        select(QueueItem.id, QueueItem.text).where(QueueItem.id.in_([c.queue_item_id for c in claims]))
                    ).all()
                )
                for claim in claims:
                    claim.payload["text"] = texts.get(claim.queue_item_id)
        return claims

    async def _attempt(self, claim: _Claim) -> None:
        body = json.dumps(claim.payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret),
            TIMESTAMP_HEADER: str(int(time.time())),
            DELIVERY_HEADER: claim.delivery_id,
            "User-Agent": "Sahay-Webhooks/1",
        }
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            assert self._client is not None
            response = await asyncio.wait_for(
                self._client.post(self.url, content=body, headers=headers), timeout=2 * self.timeout_s
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            error = type(exc).__name__
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        outcome, delay = await asyncio.to_thread(self._record, claim, status, error)
        fields: dict[str, Any] = {
            "delivery_id": claim.delivery_id,
            "queue_item_id": claim.queue_item_id,
            "attempt": claim.attempt,
            "status": status,
            "outcome": outcome,
            "latency_ms": latency_ms,
        }
        if error is not None:
            fields["error"] = error
        if delay is not None:
            fields["retry_in_s"] = round(delay, 3)
        level = logging.INFO if outcome == "delivered" else logging.ERROR if outcome == "failed" else logging.WARNING
        slog.log_event(self.log, "webhook_attempt", level, **fields)

    def _record(self, claim: _Claim, status: int | None, error: str | None) -> tuple[str, float | None]:
        """Write the attempt's outcome, only if this claim still holds the row (attempt number unchanged)."""
        now = self.clock()
        delay = None
        if error is None:
            outcome = "delivered"
            values: dict[str, Any] = {"state": "delivered", "delivered_at": now, "last_error": None}
        elif claim.attempt >= self.max_attempts:
            outcome = "failed"
            values = {"state": "failed", "last_error": error}
        else:
            outcome = "retry"
            delay = backoff_delay(claim.attempt, base=self.backoff_base_s, cap=self.backoff_cap_s, rng=self.rng)
            values = {"next_attempt_at": now + timedelta(seconds=delay), "last_error": error}
        with self._write.begin() as session:
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claim.id,
                    WebhookDelivery.state == "pending",
                    WebhookDelivery.attempts == claim.attempt,
                )
                .values(last_status=status, **values)
                .execution_options(synchronize_session=False)
            )
        return outcome, delay


def start_dispatcher(
    engine: Engine,
    settings: Any,
    log: logging.Logger,
    *,
    backoff_base_s: float = BACKOFF_BASE_S,
    backoff_cap_s: float = BACKOFF_CAP_S,
    poll_s: float = POLL_S,
    rng: Any = None,
    clock: Callable[[], datetime] = utcnow,
) -> _Dispatcher:
    """Start the outbox dispatcher in the running event loop; the returned handle's `await stop()` ends it.

    Raises WebhookConfigError (the start stops, with the message logged) when the webhook settings cannot work.
    Without SAHAY_WEBHOOK_URL it runs too, marking pending rows `skipped`. The keyword arguments are for tests."""
    try:
        target = check_settings(settings)
    except WebhookConfigError as exc:
        slog.log_event(log, "webhook_config_invalid", logging.ERROR, problem=str(exc))
        raise
    dispatcher = _Dispatcher(
        engine,
        settings,
        log,
        target,
        backoff_base_s=backoff_base_s,
        backoff_cap_s=backoff_cap_s,
        poll_s=poll_s,
        rng=rng if rng is not None else random.Random(),
        clock=clock,
    )
    if target is not None:
        slog.log_event(
            log,
            "webhooks_started",
            host=httpx.URL(target[0]).host,
            include_text=dispatcher.include_text,
            max_attempts=dispatcher.max_attempts,
        )
    return dispatcher
