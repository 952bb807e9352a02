"""Urgent-item webhooks through a persisted outbox (placeholder until filled in this session)."""

from __future__ import annotations

from typing import Any


class _Stopped:
    async def stop(self) -> None:
        return None


def start_dispatcher(engine: Any, settings: Any, log: Any) -> _Stopped:
    """Start the outbox dispatcher; the returned handle's `await stop()` ends it."""
    return _Stopped()
