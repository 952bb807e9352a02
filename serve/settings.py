"""Serving settings from the environment (prefix `SAHAY_`), e.g. `SAHAY_MODEL_PATH`, `SAHAY_MAX_ITEMS`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVE_DIR = Path(__file__).resolve().parent


class ServeSettings(BaseSettings):
    """What the classification service needs; nothing here identifies a user, a device or a network."""

    model_config = SettingsConfigDict(env_prefix="SAHAY_", extra="ignore")

    model_path: Path = Path("artifacts/model")
    """Artifact directory written by `RiskClassifier.save` / `sahay train`; loaded once at startup."""
    max_items: int = Field(64, ge=1)
    """Most items in one request; more is refused with 413."""
    max_text_chars: int = Field(5000, ge=1)
    """Longest text of one item; a longer one gets its own error entry."""
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Largest request body; bigger is refused with 413 before it is parsed."""
    policy_path: Path = SERVE_DIR / "policy.yaml"
    """Versioned policy (signal x operating point x surface x country -> actions); validated at start."""
    helplines_path: Path = SERVE_DIR / "helplines.yaml"
    """Helpline directory: each entry with its source and last-verified date."""
    show_unverified_helplines: bool = False
    """Entries not yet verified are hidden unless this is set."""
    database_url: str = "sqlite:///var/sahay.db"
    """Where API keys (and the moderation queue) are kept: SQLite (WAL) by default, PostgreSQL in production."""
    pseudonym_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 that pseudonymises author ids before they are stored in the moderation queue (at
    least 16 characters; e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`). Unset: an item that
    carries `author_id` is refused with a per-item error, since the raw id is never stored. Keep it stable:
    changing it changes every author's pseudonym."""
    lease_seconds: int = Field(300, ge=1, le=24 * 3600)
    """How long a moderator's claim on a queue item lasts; an expired lease returns the item to the queue."""
    retention_days: int = Field(30, ge=1)
    """Queue texts (and spans) are purged this many days after they were enqueued; decisions stay, without text."""
    purge_interval_s: int = Field(3600, ge=1)
    """How often the running service purges expired texts (besides `sahay queue purge`)."""
    webhook_url: str | None = None
    """The platform's own safety-team endpoint for urgent queue items (https; unset: no notifications)."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key that signs every webhook body (required when webhook_url is set)."""
    webhook_include_text: bool = False
    """Send the item's text in the webhook (off by default: ids, priority, label and SLA only)."""
    webhook_max_attempts: int = Field(8, ge=1)
    """Delivery attempts (exponential backoff) before an outbox entry is marked failed."""
    webhook_timeout_s: float = Field(5.0, gt=0)
    """Timeout of one delivery attempt."""
    queue_max: int = Field(256, ge=1)
    """Most texts waiting for the model; a request that would pass it gets 503 with Retry-After."""
    batch_wait_ms: float = Field(5.0, ge=0)
    """How long the first waiting text waits for others to share its forward pass."""
    max_batch: int = Field(64, ge=1)
    """Most texts in one forward pass."""
    threads: int | None = Field(None, ge=0)
    """The encoder's inference threads (`SAHAY_THREADS`). Unset or 0: every core but one, which is left to the event
    loop (HTTP, JSON, validation, policy): on 2 cores one inference thread served 126 req/s at concurrency 8
    against 94.5 with two, run back to back (README "Serving", benchmark)."""

    shutdown_grace_s: int = Field(30, ge=1)
    """On SIGTERM: stop accepting, finish accepted work for at most this long, then exit."""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: str = "INFO"

    def inference_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) - 1)

    @field_validator("pseudonym_secret")
    @classmethod
    def _secret_strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # SAHAY_PSEUDONYM_SECRET= (empty) counts as unset
        if len(value.get_secret_value()) < 16:
            raise ValueError("SAHAY_PSEUDONYM_SECRET must be at least 16 characters (use a long random string)")
        return value

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> ServeSettings:
        if self.queue_max < self.max_items:
            raise ValueError(
                f"SAHAY_QUEUE_MAX ({self.queue_max}) must be at least SAHAY_MAX_ITEMS ({self.max_items}): "
                "otherwise a full request could never be accepted"
            )
        return self


def describe_settings_error(exc: ValidationError) -> str:
    """The problems of a settings error by variable, never echoing a value (some are secrets)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        name = "SAHAY_" + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "settings"
        parts.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
