"""Request and response models of the classification API. Requests forbid unknown fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Surface = Literal["post", "comment", "search", "chat", "bio", "caption"]
Lang = Literal["en", "hi", "hi-Latn"]


class ClassifyItem(BaseModel):
    """One text to classify. Pass `context={"max_text_chars": n}` to `model_validate` to bound the text."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    text: str
    surface: Surface
    lang: Lang | None = None
    """The caller's language tag, if known; the response carries the language Sahay detected."""
    country: str | None = Field(None, pattern=r"^[A-Za-z]{2}$")
    """ISO 3166-1 alpha-2 country code (for the policy slice); never anything finer."""
    author_id: str | None = Field(None, min_length=1, max_length=256)
    """The platform's id of the author, if the item may go to the moderation queue. Never stored: the queue keeps
    only a keyed HMAC of it (SAHAY_PSEUDONYM_SECRET; without that setting an item with author_id is refused)."""

    @field_validator("text")
    @classmethod
    def _text_bounds(cls, text: str, info: ValidationInfo) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        limit = (info.context or {}).get("max_text_chars")
        if limit is not None and len(text) > limit:
            raise ValueError(f"text is longer than {limit} characters")
        return text


class ClassifyRequest(BaseModel):
    """The envelope: items are parsed loosely here and validated one by one, so one bad item fails alone."""

    model_config = ConfigDict(extra="forbid")

    items: list[Any] = Field(min_length=1)


class Span(BaseModel):
    start: int
    end: int
    text: str
    weight: float


class PolicyAction(BaseModel):
    type: Literal["interstitial", "enqueue", "limit_distribution", "none"]
    kind: str | None = None
    """Interstitial kind: author_support, search_support or viewer_warning."""
    priority: int | None = None
    """Queue priority (1 = most urgent)."""
    sla_minutes: int | None = None
    """How soon a human should look at the queued item."""


class PolicyDecision(BaseModel):
    actions: list[PolicyAction]
    rule: str | None
    """The policy rule that fired (None: no rule, no action)."""
    policy_version: str


class ItemResult(BaseModel):
    id: str
    label: str
    probabilities: dict[str, float]
    at_risk: float
    urgent: float
    violating: float
    spans: list[Span]
    lang: str
    decision: PolicyDecision
    model_version: str
    queue_item_id: int | None = None
    """The moderation queue item (committed before this response was sent) when the policy enqueued the item."""


class ItemError(BaseModel):
    id: str | None
    error: str


class ClassifyResponse(BaseModel):
    model_version: str
    results: list[ItemResult | ItemError]


class ErrorResponse(BaseModel):
    detail: str
