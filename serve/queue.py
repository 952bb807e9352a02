"""The moderation queue: items the policy sends to human review, claimed under a lease, decided, and audited.

`Queue(engine, lease_seconds=..., pseudonym_secret=...)` over a migrated database (`serve.db.migrate`):

- `enqueue(entries, actor)`: one transaction for a whole classify request; idempotent on (platform item id,
  model version) through the unique constraint and `INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL
  alike; the existing row's id is returned). Author ids are stored only as HMAC-SHA256 keyed by the pseudonym
  secret; without a secret an entry carrying an author id is refused before anything is written. A newly
  inserted urgent item (priority 1) gets its webhook outbox row in the same transaction (serve/webhooks.py).
- `list(actor, ...)`: priority first (1 = most urgent), then SLA deadline; no content (text and spans are read
  only through a claim, so that every read of content is audited). Keyset pagination with an opaque cursor.
- `claim(id, actor)`: one conditional UPDATE (`... WHERE state = 'queued' OR the lease expired OR this key holds
  it`) whose row count says whether it won, so two moderators never hold one item, without read-then-write.
  Returns the item with its content. Claiming again with the same key extends the lease.
- `decide(id, actor, label, action, note)`: only by the key holding a live lease; final.
- `audit(...)`: the audit records, newest first. Records are only ever inserted, in the transaction of the
  action they record (enqueue, list, claim = content read, decision); there is no code path that changes one.

An actor is anything with `key_id` and `role` (the API key record of the caller). Actions without an API key are
audited under `cli_actor()` (`cli:<login name>`, role admin: whoever runs `sahay queue ...` on the server holds
the database, so admin power) or `RETENTION_ACTOR` (`system:retention`, role admin: the service's periodic purge).
`record_audit` is the one writer of audit records; serve/retention.py (purge) and serve/export.py (export) use it
too.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from data.taxonomy import LABELS
from serve import webhooks
from serve.db import session_factory
from serve.tables import AUDIT_EVENTS, DECISION_ACTIONS, QUEUE_STATES, AuditEvent, QueueItem, utcnow

__all__ = [
    "DECISION_ACTIONS",
    "LEASE_SECONDS",
    "NOTE_MAX",
    "PSEUDONYM_SECRET_MISSING",
    "RETENTION_ACTOR",
    "AuditActor",
    "AuditRecord",
    "Conflict",
    "Content",
    "Entry",
    "InvalidCursor",
    "ItemView",
    "ModeratorDecision",
    "NotFound",
    "Page",
    "PseudonymSecretMissing",
    "Queue",
    "cli_actor",
    "entry_for",
    "pseudonymise",
    "record_audit",
]

LEASE_SECONDS = 300
NOTE_MAX = 2000
PAGE_MAX = 100
PSEUDONYM_SECRET_MISSING = (
    "author_id was given but this server has no pseudonym secret: the operator must set SAHAY_PSEUDONYM_SECRET "
    "(author ids are stored only as a keyed hash, never as sent); send the item without author_id meanwhile"
)


class Actor(Protocol):
    key_id: str
    role: str


KEY_ID_MAX = AuditEvent.__table__.c.key_id.type.length
"""The audit record's `key_id` column size (32)."""


@dataclass(frozen=True)
class AuditActor:
    """Who acted, for actions that no API key makes (the command line, the service itself)."""

    key_id: str
    role: str


RETENTION_ACTOR = AuditActor("system:retention", "admin")
"""The service's periodic retention purge."""


def cli_actor() -> AuditActor:
    """The operator running `sahay queue ...`: `cli:<login name>` (cut to the column size; `cli` when the login name
    cannot be told), role admin: the command line works on the database directly, so it has admin power."""
    try:
        user = getpass.getuser().strip()
    except Exception:  # no USER/LOGNAME and no passwd entry (OSError; KeyError before Python 3.13)
        user = ""
    return AuditActor(f"cli:{user}"[:KEY_ID_MAX] if user else "cli", "admin")


# ----------------------------------------------------------------------------------------------- errors


class PseudonymSecretMissing(ValueError):
    """An author id came in but no pseudonym secret is set; nothing was stored."""


class NotFound(LookupError):
    """No queue item with this id."""


class Conflict(Exception):
    """The item cannot be claimed or decided now; `frees_at`: when the lease holding it expires, if that is why."""

    def __init__(self, message: str, frees_at: datetime | None = None):
        super().__init__(message)
        self.frees_at = frees_at


class InvalidCursor(ValueError):
    """A pagination cursor that this queue did not hand out."""


# ----------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Entry:
    """One item to enqueue: what /v1/classify knew about it. `text`, `spans` and `author_id` are never shown in
    its repr."""

    item_id: str
    surface: str
    lang: str
    label: str
    probabilities: dict[str, float]
    signals: dict[str, float]
    rule: str | None
    policy_version: str
    model_version: str
    priority: int
    sla_minutes: int
    text: str = field(repr=False)
    spans: list[dict[str, Any]] = field(default_factory=list, repr=False)
    author_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Content:
    """What only a claim reveals (and audits): the text (None once purged), the explanation spans, and the
    author's pseudonym."""

    text: str | None
    spans: list[dict[str, Any]]
    author_pseudonym: str | None


@dataclass(frozen=True)
class ModeratorDecision:
    label: str
    action: str
    note: str | None
    decided_by: str
    decided_at: datetime


@dataclass(frozen=True)
class ItemView:
    """A queue item as shown. `state` is the effective state: a claim whose lease has expired reads `queued`
    (and has no `claimed_by` / `lease_expires_at`). `content` is set only by a claim."""

    id: int
    item_id: str
    surface: str
    lang: str
    label: str
    probabilities: dict[str, float]
    signals: dict[str, float]
    rule: str | None
    policy_version: str
    model_version: str
    priority: int
    sla_deadline: datetime
    created_at: datetime
    state: str
    claimed_by: str | None
    lease_expires_at: datetime | None
    decision: ModeratorDecision | None
    content: Content | None = None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    key_id: str
    role: str
    event: str
    queue_item_id: int | None
    detail: dict[str, Any] | None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass it back as `cursor` for the next page; None on the last page."""


# ----------------------------------------------------------------------------------------------- helpers


def pseudonymise(author_id: str, secret: bytes) -> str:
    """HMAC-SHA256 of the author id, hex: stable per secret, not reversible, not linkable without the secret."""
    return hmac.new(secret, author_id.encode("utf-8"), hashlib.sha256).hexdigest()


def entry_for(item: Any, prediction: dict[str, Any], decision: Any) -> Entry | None:
    """The queue entry for a classified item (a `ClassifyItem`, `Prediction.to_dict()`, a policy `Decision`), or
    None when the decision has no `enqueue` action."""
    action = next((a for a in decision.actions if a.type == "enqueue"), None)
    if action is None:
        return None
    return Entry(
        item_id=item.id,
        surface=item.surface,
        lang=prediction["lang"],
        label=prediction["label"],
        probabilities=dict(prediction["probabilities"]),
        signals={k: prediction[k] for k in ("at_risk", "urgent", "violating")},
        rule=decision.rule,
        policy_version=decision.policy_version,
        model_version=prediction["model_version"],
        priority=action.priority,
        sla_minutes=action.sla_minutes,
        text=item.text,
        spans=list(prediction.get("spans") or []),
        author_id=getattr(item, "author_id", None),
    )


_NO_CONTENT = (defer(QueueItem.text, raiseload=True), defer(QueueItem.spans, raiseload=True))
"""A list never loads content (and fails loudly if something tries)."""


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, shape: tuple[type, ...]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidCursor("invalid cursor: pass back the next_cursor of the previous page") from None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, shape, strict=True))
    ):
        raise InvalidCursor("invalid cursor: pass back the next_cursor of the previous page")
    return values


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise ValueError(f"limit must be between 1 and {PAGE_MAX}")
    return limit


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def record_audit(
    connection: Session | Connection,
    actor: Actor,
    event: str,
    detail: dict[str, Any] | None,
    now: datetime,
    *,
    queue_item_id: int | None = None,
) -> None:
    """The one way an audit record is written: an INSERT in the caller's transaction (a session or a connection),
    so that it commits or rolls back with the action it records. `detail` must hold no content (no text, spans,
    notes or author ids)."""
    if event not in AUDIT_EVENTS:
        raise ValueError(f"unknown audit event {event!r} (one of {', '.join(AUDIT_EVENTS)})")
    connection.execute(
        insert(AuditEvent).values(
            at=now, key_id=actor.key_id, role=actor.role, event=event, queue_item_id=queue_item_id, detail=detail
        )
    )


# ----------------------------------------------------------------------------------------------- the queue


class Queue:
    """The moderation queue in the database behind `engine` (migrated already). Thread-safe; every method is one
    transaction. `clock` returns the current time (timezone-aware); tests inject one."""

    def __init__(
        self,
        engine: Engine,
        *,
        lease_seconds: int = LEASE_SECONDS,
        pseudonym_secret: str | bytes | SecretStr | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        if lease_seconds < 1:
            raise ValueError("lease_seconds must be at least 1")
        if isinstance(pseudonym_secret, SecretStr):
            pseudonym_secret = pseudonym_secret.get_secret_value()
        if isinstance(pseudonym_secret, str):
            pseudonym_secret = pseudonym_secret.encode("utf-8")
        self.engine = engine
        self.lease = timedelta(seconds=lease_seconds)
        self._secret: bytes | None = pseudonym_secret or None
        self._clock = clock
        self._read = session_factory(engine)
        self._write = session_factory(engine, write=True)

    def __repr__(self) -> str:  # never the secret
        return f"Queue(lease={int(self.lease.total_seconds())}s, pseudonymises={self.pseudonymises})"

    @property
    def pseudonymises(self) -> bool:
        """Whether author ids can be taken (a pseudonym secret is set)."""
        return self._secret is not None

    def pseudonym(self, author_id: str) -> str:
        if self._secret is None:
            raise PseudonymSecretMissing(PSEUDONYM_SECRET_MISSING)
        return pseudonymise(author_id, self._secret)

    # --- enqueue ---------------------------------------------------------------------------------------------

    def enqueue(self, entries: Sequence[Entry], actor: Actor) -> list[int]:
        """Commit `entries` in one transaction; the queue item id of each, in order (an item already queued
        under the same platform id and model version keeps its row and id). Nothing is written if any entry
        cannot be (e.g. PseudonymSecretMissing)."""
        now = self._clock()
        values = [self._row_values(entry, now) for entry in entries]  # hashes first: fail before any write
        if not values:
            return []
        ids = []
        urgent = False
        with self._write.begin() as session:
            for row in values:
                queue_id, created = self._insert(session, row)
                if created:
                    self._record(session, actor, "enqueue", queue_id, {"priority": row["priority"]}, now)
                    urgent |= webhooks.add_to_outbox(session, queue_id, row, now)  # urgent items only
                ids.append(queue_id)
        if urgent:
            webhooks.wake()
        return ids

    def _row_values(self, entry: Entry, now: datetime) -> dict[str, Any]:
        if not 1 <= entry.priority <= 5:
            raise ValueError(f"priority must be 1-5, got {entry.priority}")
        return {
            "item_id": entry.item_id,
            "author_hash": self.pseudonym(entry.author_id) if entry.author_id is not None else None,
            "surface": entry.surface,
            "lang": entry.lang,
            "text": entry.text,
            "label": entry.label,
            "probabilities": dict(entry.probabilities),
            "signals": dict(entry.signals),
            "spans": list(entry.spans),
            "rule": entry.rule,
            "policy_version": entry.policy_version,
            "model_version": entry.model_version,
            "priority": entry.priority,
            "sla_deadline": now + timedelta(minutes=entry.sla_minutes),
            "created_at": now,
            "state": "queued",
        }

    @staticmethod
    def _insert(session: Session, values: dict[str, Any]) -> tuple[int, bool]:
        """INSERT ... ON CONFLICT (item_id, model_version) DO NOTHING; (id, True) if inserted, else the existing
        row's (id, False). PostgreSQL waits for a concurrent uncommitted insert of the same key and then sees it."""
        dialect = session.get_bind().dialect.name
        if dialect in ("sqlite", "postgresql"):
            make = sqlite.insert if dialect == "sqlite" else postgresql.insert
            statement = (
                make(QueueItem)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["item_id", "model_version"])
                .returning(QueueItem.id)
            )
            new_id = session.execute(statement).scalar_one_or_none()
            if new_id is not None:
                return new_id, True
        else:  # any other database: a savepoint around a plain insert
            try:
                with session.begin_nested():
                    return session.execute(
                        insert(QueueItem).values(**values).returning(QueueItem.id)
                    ).scalar_one(), True
            except IntegrityError:
                pass
        existing = session.scalar(
            select(QueueItem.id).where(
                QueueItem.item_id == values["item_id"], QueueItem.model_version == values["model_version"]
            )
        )
        if existing is None:  # the conflict was on something else
            raise RuntimeError("queue insert conflicted but no row has this item id and model version")
        return existing, False

    # --- list ------------------------------------------------------------------------------------------------

    def list(
        self,
        actor: Actor,
        *,
        surface: str | None = None,
        lang: str | None = None,
        label: str | None = None,
        state: str = "queued",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ItemView]:
        """Items in `state` (queued: waiting, expired leases included; claimed: held under a live lease;
        decided), most urgent first: priority, then SLA deadline, then id. No content."""
        if state not in QUEUE_STATES:
            raise ValueError(f"unknown state {state!r} (one of {', '.join(QUEUE_STATES)})")
        _check_limit(limit)
        now = self._clock()
        query = select(QueueItem).where(self._state_is(state, now))
        for column, value in ((QueueItem.surface, surface), (QueueItem.lang, lang), (QueueItem.label, label)):
            if value is not None:
                query = query.where(column == value)
        if cursor is not None:
            priority, deadline, last = _decode_cursor(cursor, (int, str, int))
            try:
                deadline = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidCursor("invalid cursor: pass back the next_cursor of the previous page") from None
            if deadline.tzinfo is None:
                raise InvalidCursor("invalid cursor: pass back the next_cursor of the previous page")
            query = query.where(
                or_(
                    QueueItem.priority > priority,
                    and_(QueueItem.priority == priority, QueueItem.sla_deadline > deadline),
                    and_(QueueItem.priority == priority, QueueItem.sla_deadline == deadline, QueueItem.id > last),
                )
            )
        query = query.order_by(QueueItem.priority, QueueItem.sla_deadline, QueueItem.id).limit(limit + 1)
        filters = {k: v for k, v in (("surface", surface), ("lang", lang), ("label", label)) if v is not None}
        with self._write.begin() as session:
            rows = session.scalars(query.options(*_NO_CONTENT)).all()
            shown = rows[:limit]
            detail = {"state": state, **filters, "count": len(shown), "ids": [r.id for r in shown]}
            self._record(session, actor, "list", None, detail, now)
            views = [self._view(r, now) for r in shown]
        next_cursor = None
        if len(rows) > limit:
            last_row = shown[-1]
            next_cursor = _encode_cursor([last_row.priority, _iso(last_row.sla_deadline), last_row.id])
        return Page(views, next_cursor)

    @staticmethod
    def _state_is(state: str, now: datetime):
        expired = and_(QueueItem.state == "claimed", QueueItem.lease_expires_at <= now)
        if state == "queued":
            return or_(QueueItem.state == "queued", expired)
        if state == "claimed":
            return and_(QueueItem.state == "claimed", QueueItem.lease_expires_at > now)
        return QueueItem.state == "decided"

    # --- claim and decide --------------------------------------------------------------------------------------

    def claim(self, queue_id: int, actor: Actor) -> ItemView:
        """Take (or extend) the lease on an item for `actor` and return it with its content; the read is audited.

        NotFound: no such item. Conflict: decided already, or another key holds a live lease (`frees_at`)."""
        now = self._clock()
        expires = now + self.lease
        claimable = or_(
            QueueItem.state == "queued",
            and_(
                QueueItem.state == "claimed",
                or_(QueueItem.lease_expires_at <= now, QueueItem.claimed_by == actor.key_id),
            ),
        )
        with self._write.begin() as session:
            result = session.execute(
                update(QueueItem)
                .where(QueueItem.id == queue_id, claimable)
                .values(state="claimed", claimed_by=actor.key_id, lease_expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                raise self._refusal(session, queue_id, actor, now)
            row = session.get(QueueItem, queue_id, populate_existing=True)
            self._record(session, actor, "claim", queue_id, {"lease_expires_at": _iso(expires)}, now)
            return self._view(row, now, content=True)

    def decide(self, queue_id: int, actor: Actor, label: str, action: str, note: str | None = None) -> ItemView:
        """Record the moderator's decision (confirmed or corrected `label`, one `action`, an optional `note`).
        Only the key holding a live lease may decide; a decision is final.

        ValueError: bad label, action or note. NotFound, Conflict: as for claim, plus "already decided" and
        "claim it first"."""
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r} (one of {', '.join(LABELS)})")
        if action not in DECISION_ACTIONS:
            raise ValueError(f"unknown action {action!r} (one of {', '.join(DECISION_ACTIONS)})")
        if note is not None and len(note) > NOTE_MAX:
            raise ValueError(f"note is longer than {NOTE_MAX} characters")
        now = self._clock()
        with self._write.begin() as session:
            result = session.execute(
                update(QueueItem)
                .where(
                    QueueItem.id == queue_id,
                    QueueItem.state == "claimed",
                    QueueItem.claimed_by == actor.key_id,
                    QueueItem.lease_expires_at > now,
                )
                .values(
                    state="decided",
                    lease_expires_at=None,
                    decision_label=label,
                    decision_action=action,
                    decision_note=note,
                    decided_by=actor.key_id,
                    decided_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                raise self._refusal(session, queue_id, actor, now, deciding=True)
            row = session.get(QueueItem, queue_id, populate_existing=True)
            detail = {"label": label, "action": action, "model_label": row.label, "note": note is not None}
            self._record(session, actor, "decision", queue_id, detail, now)
            return self._view(row, now)

    def _refusal(
        self, session: Session, queue_id: int, actor: Actor, now: datetime, *, deciding: bool = False
    ) -> Exception:
        row = session.get(QueueItem, queue_id, populate_existing=True)
        if row is None:
            return NotFound(f"no queue item {queue_id}")
        if row.state == "decided":
            return Conflict(f"queue item {queue_id} is already decided (by {row.decided_by} at {_iso(row.decided_at)})")
        live = row.state == "claimed" and row.lease_expires_at is not None and row.lease_expires_at > now
        if live and row.claimed_by != actor.key_id:
            return Conflict(
                f"queue item {queue_id} is claimed by another moderator (key {row.claimed_by}) until "
                f"{_iso(row.lease_expires_at)}; it returns to the queue then unless decided",
                frees_at=row.lease_expires_at,
            )
        if deciding:
            return Conflict(
                f"queue item {queue_id} is not claimed by this key under a live lease: claim it first "
                f"(a lease lasts {int(self.lease.total_seconds())} s)"
            )
        raise RuntimeError(f"claim of queue item {queue_id} failed for no known reason")  # pragma: no cover

    # --- audit -----------------------------------------------------------------------------------------------

    @staticmethod
    def _record(
        session: Session, actor: Actor, event: str, queue_id: int | None, detail: dict | None, now: datetime
    ) -> None:
        record_audit(session, actor, event, detail, now, queue_item_id=queue_id)

    def audit(
        self, *, queue_item_id: int | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[AuditRecord]:
        """Audit records, newest first; only those about `queue_item_id` if given."""
        _check_limit(limit)
        query = select(AuditEvent)
        if queue_item_id is not None:
            query = query.where(AuditEvent.queue_item_id == queue_item_id)
        if cursor is not None:
            (before,) = _decode_cursor(cursor, (int,))
            query = query.where(AuditEvent.id < before)
        query = query.order_by(AuditEvent.id.desc()).limit(limit + 1)
        with self._read() as session:
            rows = session.scalars(query).all()
        shown = rows[:limit]
        records = [AuditRecord(r.id, r.at, r.key_id, r.role, r.event, r.queue_item_id, r.detail) for r in shown]
        return Page(records, _encode_cursor([shown[-1].id]) if len(rows) > limit else None)

    # --- views -----------------------------------------------------------------------------------------------

    @staticmethod
    def _view(row: QueueItem, now: datetime, *, content: bool = False) -> ItemView:
        live = row.state == "claimed" and row.lease_expires_at is not None and row.lease_expires_at > now
        state = "queued" if row.state == "claimed" and not live else row.state
        decision = None
        if row.state == "decided":
            decision = ModeratorDecision(
                row.decision_label, row.decision_action, row.decision_note, row.decided_by, row.decided_at
            )
        return ItemView(
            id=row.id,
            item_id=row.item_id,
            surface=row.surface,
            lang=row.lang,
            label=row.label,
            probabilities=dict(row.probabilities),
            signals=dict(row.signals),
            rule=row.rule,
            policy_version=row.policy_version,
            model_version=row.model_version,
            priority=row.priority,
            sla_deadline=row.sla_deadline,
            created_at=row.created_at,
            state=state,
            claimed_by=row.claimed_by if live else None,
            lease_expires_at=row.lease_expires_at if live else None,
            decision=decision,
            content=Content(row.text, list(row.spans or []), row.author_hash) if content else None,
        )
