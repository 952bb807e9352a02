"""Moderation queue routes (role moderator; admin passes too) and the audit log (role admin).

The list never carries content; `POST /v1/queue/{id}/claim` is the only way to read an item's text and spans,
and each claim is an audit record. Handlers are plain `def`, so their database work runs in the threadpool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from serve.auth import require_role
from serve.keys import KeyRecord
from serve.queue import NOTE_MAX, PAGE_MAX, Conflict, InvalidCursor, NotFound, Queue
from serve.schemas import ErrorResponse, Span, Surface
from serve.tables import AuditEventType, DecisionAction, QueueState

router = APIRouter(tags=["queue"])

Label = Literal["intent", "promotion", "ideation", "informational", "none"]
DetectedLang = Literal["en", "hi", "hi-Latn", "other"]
QUEUE_ID_MAX = 2**31 - 1
"""Queue ids are 32-bit integers (PostgreSQL `integer`)."""

_AUTH = {
    401: {"description": "Missing, unknown or revoked API key", "model": ErrorResponse},
    403: {"description": "The key's role may not do this", "model": ErrorResponse},
}
_NOT_FOUND = {404: {"description": "No such queue item", "model": ErrorResponse}}
_BAD_CURSOR = {422: {"description": "Bad parameters or cursor", "model": ErrorResponse}}


class ModeratorDecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: Label
    action: DecisionAction
    note: str | None
    decided_by: str
    """key_id of the moderator's key."""
    decided_at: datetime


class QueueEntry(BaseModel):
    """A queue item without content."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: str
    """The platform's id of the item."""
    surface: Surface
    lang: DetectedLang
    label: Label
    """The model's label."""
    signals: dict[str, float]
    rule: str | None
    """The policy rule that sent the item here."""
    priority: int
    """1 is the most urgent."""
    sla_deadline: datetime
    created_at: datetime
    state: QueueState
    """queued (an expired lease counts as queued), claimed (a live lease) or decided."""
    claimed_by: str | None
    """key_id holding the live lease, if any."""
    lease_expires_at: datetime | None
    decision: ModeratorDecisionOut | None


class QueueList(BaseModel):
    items: list[QueueEntry]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class ContentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    text: str | None
    """The text; null once purged by retention."""
    spans: list[Span]
    """The parts of the text that drove the scores."""
    author_pseudonym: str | None
    """Keyed HMAC of the platform's author id (the same author gives the same pseudonym)."""


class ClaimedItem(QueueEntry):
    """A claimed item, with its content; reading it is an audit record."""

    probabilities: dict[str, float]
    policy_version: str
    model_version: str
    content: ContentOut


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label
    """The label the moderator confirms or corrects to."""
    action: DecisionAction
    """What was done: resources_shown, contacted_via_platform_channel, escalated_per_policy, content_removed or
    no_action."""
    note: str | None = Field(None, max_length=NOTE_MAX)


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    key_id: str
    """Who: the API key's public id; `cli:<login name>` for `sahay queue purge|export`, `system:retention` for the
    service's periodic purge."""
    role: str
    """The key's role at the time (admin for the command line and the service itself)."""
    event: AuditEventType
    """enqueue, list, claim (content read), decision, export (decided texts read in bulk by `sahay queue export`)
    or purge (expired texts removed by retention)."""
    queue_item_id: int | None
    detail: dict[str, Any] | None


class AuditList(BaseModel):
    events: list[AuditOut]
    next_cursor: str | None


def _queue(request: Request) -> Queue:
    queue = getattr(request.app.state, "queue", None)
    if queue is None:
        raise HTTPException(status_code=503, detail="the moderation queue is not available yet")
    return queue


def _conflict(exc: Conflict) -> HTTPException:
    headers = None
    if exc.frees_at is not None:
        wait = max(1, int((exc.frees_at - datetime.now(exc.frees_at.tzinfo)).total_seconds()) + 1)
        headers = {"Retry-After": str(wait)}
    return HTTPException(status_code=409, detail=str(exc), headers=headers)


@router.get("/v1/queue", response_model=QueueList, responses={**_AUTH, **_BAD_CURSOR})
def list_queue(
    request: Request,
    key: KeyRecord = Depends(require_role("moderator")),
    surface: Surface | None = None,
    lang: DetectedLang | None = None,
    label: Label | None = None,
    state: QueueState = "queued",
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    cursor: str | None = Query(None, max_length=200),
) -> QueueList:
    """The queue, most urgent first (priority, then SLA deadline). No text: claim an item to read it."""
    try:
        page = _queue(request).list(
            key, surface=surface, lang=lang, label=label, state=state, limit=limit, cursor=cursor
        )
    except InvalidCursor as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return QueueList(items=[QueueEntry.model_validate(v) for v in page.items], next_cursor=page.next_cursor)


@router.post(
    "/v1/queue/{queue_id}/claim",
    response_model=ClaimedItem,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {"description": "Decided, or claimed by another key until the time named", "model": ErrorResponse},
    },
)
def claim_item(
    request: Request,
    key: KeyRecord = Depends(require_role("moderator")),
    queue_id: int = Path(ge=1, le=QUEUE_ID_MAX),
) -> ClaimedItem:
    """Lease the item to this key (SAHAY_LEASE_SECONDS) and return it with its text; claiming again extends the
    lease. An item leased to another key is 409 until its lease expires."""
    try:
        view = _queue(request).claim(queue_id, key)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except Conflict as exc:
        raise _conflict(exc) from None
    return ClaimedItem.model_validate(view)


@router.post(
    "/v1/queue/{queue_id}/decision",
    response_model=QueueEntry,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {"description": "Already decided, or this key holds no live lease on it", "model": ErrorResponse},
    },
)
def decide_item(
    body: DecisionIn,
    request: Request,
    key: KeyRecord = Depends(require_role("moderator")),
    queue_id: int = Path(ge=1, le=QUEUE_ID_MAX),
) -> QueueEntry:
    """Record the decision on an item this key has claimed (live lease): the label, the action and a note."""
    try:
        view = _queue(request).decide(queue_id, key, body.label, body.action, body.note)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except Conflict as exc:
        raise _conflict(exc) from None
    return QueueEntry.model_validate(view)


@router.get(
    "/v1/audit",
    response_model=AuditList,
    dependencies=[Depends(require_role("admin"))],
    responses={**_AUTH, **_BAD_CURSOR},
)
def list_audit(
    request: Request,
    queue_item_id: int | None = Query(None, ge=1, le=QUEUE_ID_MAX),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    cursor: str | None = Query(None, max_length=200),
) -> AuditList:
    """The audit log, newest first: who (key id, role), when, what (enqueue, list, claim, decision, export,
    purge), on which item. Append-only."""
    try:
        page = _queue(request).audit(queue_item_id=queue_item_id, limit=limit, cursor=cursor)
    except InvalidCursor as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return AuditList(events=[AuditOut.model_validate(r) for r in page.items], next_cursor=page.next_cursor)
