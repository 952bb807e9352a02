"""Retention: queue texts are purged after `SAHAY_RETENTION_DAYS` (placeholder until filled in this session)."""

from __future__ import annotations

from typing import Any


class _Stopped:
    async def stop(self) -> None:
        return None


def start_periodic_purge(engine: Any, settings: Any, log: Any) -> _Stopped:
    """Start the periodic purge task; the returned handle's `await stop()` ends it."""
    return _Stopped()
