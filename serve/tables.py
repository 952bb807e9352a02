"""The database tables (SQLAlchemy 2 declarative models). Change them only together with a migration in
serve/migrations/versions/; `migrate()` applies them. Types are portable: SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

Role = Literal["service", "moderator", "admin"]
"""service: classify; moderator: the moderation queue; admin: everything, including policy and keys."""
ROLES: tuple[str, ...] = get_args(Role)

QueueState = Literal["queued", "claimed", "decided"]
"""queued: waiting (a claim whose lease expired counts as queued again); claimed: a moderator holds a live lease;
decided: a moderator's decision is recorded (final)."""
QUEUE_STATES: tuple[str, ...] = get_args(QueueState)

DecisionAction = Literal[
    "resources_shown", "contacted_via_platform_channel", "escalated_per_policy", "content_removed", "no_action"
]
"""What the moderator did about a queued item (one per decision)."""
DECISION_ACTIONS: tuple[str, ...] = get_args(DecisionAction)

AuditEventType = Literal["enqueue", "list", "claim", "decision", "export", "purge"]
"""enqueue: an item entered the queue; list: the queue was listed (no content); claim: content was read
(the claim returns the text); decision: a decision was recorded; export: decided items' texts were read in bulk
and written to a file (`sahay queue export`); purge: retention set expired texts to NULL (`sahay queue purge` or
the service's periodic purge). Changing this list needs a migration (the CHECK constraint `ck_audit_events_event`;
see 0004_audit_events)."""
AUDIT_EVENTS: tuple[str, ...] = get_args(AuditEventType)

OutboxState = Literal["pending", "delivered", "failed", "skipped"]
"""pending: to be sent (again) at `next_attempt_at`; delivered: the receiver answered 2xx; failed: every attempt
failed (`webhook_max_attempts`); skipped: no webhook URL was configured when the dispatcher met it."""
OUTBOX_STATES: tuple[str, ...] = get_args(OutboxState)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so that later migrations (batch mode on SQLite) can find and alter them."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC: `timestamptz` on PostgreSQL, UTC text on SQLite (which has no
    time zones). Naive datetimes are refused, so local time cannot slip in; values come back aware, in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone (e.g. datetime.now(UTC))")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    """An API key. Only a SHA-256 hash of the key is kept; `key_id` is public (it is part of the key, shown in
    lists, used to revoke)."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('service', 'moderator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:  # never the hash
        return f"ApiKey(key_id={self.key_id!r}, role={self.role!r}, name={self.name!r})"


class QueueItem(Base):
    """An item the policy sent to human review. The author is kept only as a keyed HMAC (`author_hash`); `text`
    and `spans` are the content (read only through a claim, which is audited). Unique per (platform item id,
    model version): enqueueing the same item again returns the row already there."""

    __tablename__ = "queue_items"
    __table_args__ = (
        UniqueConstraint("item_id", "model_version"),
        CheckConstraint(_in("state", QUEUE_STATES), name="state"),
        CheckConstraint("priority >= 1 AND priority <= 5", name="priority"),
        CheckConstraint(f"decision_action IS NULL OR {_in('decision_action', DECISION_ACTIONS)}", name="action"),
        Index(None, "state", "priority", "sla_deadline", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(128))
    """The platform's id of the item (as sent to /v1/classify)."""
    author_hash: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256 (hex) of the platform's author id, keyed by SAHAY_PSEUDONYM_SECRET; never the raw id."""
    surface: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(16))
    """The language Sahay detected (en, hi, hi-Latn, other)."""
    text: Mapped[str | None] = mapped_column(Text)
    """The content; None once purged (retention)."""
    label: Mapped[str] = mapped_column(String(32))
    probabilities: Mapped[dict] = mapped_column(JSON)
    signals: Mapped[dict] = mapped_column(JSON)
    """at_risk, urgent, violating."""
    spans: Mapped[list | None] = mapped_column(JSON)
    """Explanation spans (they quote the text, so they are content too)."""
    rule: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(128))
    priority: Mapped[int] = mapped_column(Integer)
    """1 is the most urgent."""
    sla_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    """key_id of the moderator holding (or who last held) the lease."""
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_label: Mapped[str | None] = mapped_column(String(32))
    decision_action: Mapped[str | None] = mapped_column(String(40))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:  # never the text or the author hash
        return f"QueueItem(id={self.id!r}, state={self.state!r}, priority={self.priority!r}, label={self.label!r})"


class AuditEvent(Base):
    """One append-only audit record: who (key id and role), when, what (event type), on which queue item (None for
    events about many items: list, export, purge). Rows are only ever inserted, in the same transaction as the
    action they record (an export: once its file is written; see serve/export.py).

    Who: an API key's public id, or for actions without a key `cli:<login name>` (`sahay queue ...`, role admin)
    and `system:retention` (the service's periodic purge, role admin)."""

    __tablename__ = "audit_events"
    __table_args__ = (CheckConstraint(_in("event", AUDIT_EVENTS), name="event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    key_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    queue_item_id: Mapped[int | None] = mapped_column(ForeignKey("queue_items.id"), index=True)
    detail: Mapped[dict | None] = mapped_column(JSON)
    """Event specifics that are not content (e.g. the filters of a list, the decided label and action)."""


class WebhookDelivery(Base):
    """One outgoing webhook (the outbox): written in the transaction that enqueues an urgent item, so a crash or
    restart loses none, then sent by serve.webhooks' dispatcher until delivered or out of attempts. `payload` is
    what is sent, without the text (added at send time only if SAHAY_WEBHOOK_INCLUDE_TEXT is set, and read from
    the queue item, so that retention purges it there). `delivery_id` is sent as X-Sahay-Delivery: the same on
    every attempt, for the receiver to de-duplicate (delivery is at-least-once)."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("queue_item_id", "event"),
        CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(32), unique=True)
    queue_item_id: Mapped[int] = mapped_column(ForeignKey("queue_items.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON)
    """Ids, priority, label, signals, rule, versions, SLA deadline, author pseudonym; never the text."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts started so far (counted when an attempt is claimed)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When it is due; while an attempt runs, the end of that attempt's lease (a crashed sender's claim expires)."""
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    """HTTP status of the last attempt (None: no response)."""
    last_error: Mapped[str | None] = mapped_column(String(200))
    """Why the last attempt failed: `HTTP 503` or an exception type; never a response body or payload."""

    def __repr__(self) -> str:  # never the payload
        return f"WebhookDelivery(id={self.id!r}, state={self.state!r}, attempts={self.attempts!r})"
