"""Shared helpers for the moderation-queue tests (serve/queue.py and what builds on it): actors, a fake clock, queue
entries with benign stand-in texts, enqueueing and deciding at a given time, and the test policies that send items
to the queue.

The `engine` fixture (a migrated engine on the `database_url` database) is in tests/serve/conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from serve.queue import AuditActor, Entry, Queue

SECRET = "test-pseudonym-secret-0123456789"
RAW_AUTHOR = "platform-user-8675309"
TEXT = "the bus was late again this morning"  # benign stand-in: tests never need real content
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def actor(key_id: str, role: str = "moderator") -> AuditActor:
    """Who acts on the queue: a key id and a role, as an API key (or the command line) would."""
    return AuditActor(key_id, role)


SERVICE = actor("aaaaaaaaaaaa", "service")
ASHA = actor("bbbbbbbbbbbb")
RAVI = actor("cccccccccccc")
ADMIN = actor("dddddddddddd", "admin")


class Clock:
    """The queue's injected clock: a fixed time that only moves when told."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 5, 10, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def make_entry(item_id: str = "p1", **overrides) -> Entry:
    """A queue entry (an `ideation` item at priority 2) with a benign stand-in text; any field may be overridden."""
    values = {
        "item_id": item_id,
        "surface": "post",
        "lang": "en",
        "label": "ideation",
        "probabilities": {"intent": 0.1, "promotion": 0.05, "ideation": 0.7, "informational": 0.1, "none": 0.05},
        "signals": {"at_risk": 0.8, "urgent": 0.1, "violating": 0.05},
        "rule": "at_risk",
        "policy_version": "2026-11-29.1+abcdef012345",
        "model_version": "m-1",
        "priority": 2,
        "sla_minutes": 60,
        "text": TEXT,
        "spans": [{"start": 4, "end": 7, "text": "bus", "weight": 0.5}],
        "author_id": None,
    }
    return Entry(**{**values, **overrides})


def named_entry(item_id: str, text: str | None = None, **overrides) -> Entry:
    """A queue entry with a benign stand-in text naming the item (so a leak would be recognisable)."""
    return make_entry(item_id, text=text or f"the bus to the market was late again, item {item_id}", **overrides)


def enqueue_at(engine, when: datetime, *entries: Entry) -> list[int]:
    """Enqueue `entries` as if at `when` (the queue's injected clock)."""
    return Queue(engine, pseudonym_secret=SECRET, clock=Clock(when)).enqueue(list(entries), SERVICE)


def decide_at(
    engine, when: datetime, queue_id: int, label: str, note: str | None = None, key: AuditActor = ASHA
) -> None:
    """Claim and decide `queue_id` as `key` at `when`."""
    queue = Queue(engine, pseudonym_secret=SECRET, clock=Clock(when))
    queue.claim(queue_id, key)
    queue.decide(queue_id, key, label, "resources_shown", note)


# --- policies that send items to the queue -----------------------------------------------------------------------


def enqueue_all_policy(
    version: str,
    *,
    rule: str = "queue_all",
    priority: int = 3,
    sla_minutes: int = 1440,
    search_first: bool = True,
) -> str:
    """Policy YAML that enqueues every item under `rule` at `priority`; with `search_first`, searches come first
    (priority 1, 15 minutes) under the rule `search_first`."""
    search = (
        "  - name: search_first\n"
        "    surfaces: [search]\n"
        "    actions:\n"
        "      - {type: enqueue, priority: 1, sla_minutes: 15}\n"
        if search_first
        else ""
    )
    return (
        f'version: "{version}"\n'
        "interstitials: {}\n"
        "rules:\n"
        f"{search}"
        f"  - name: {rule}\n"
        "    actions:\n"
        f"      - {{type: enqueue, priority: {priority}, sla_minutes: {sla_minutes}}}\n"
    )


ENQUEUE_ALL_POLICY = enqueue_all_policy("test-queue-all")
"""Searches at priority 1 (rule `search_first`), every other item at priority 3 (rule `queue_all`)."""


def write_enqueue_all_policy(directory: Path, policy: str = ENQUEUE_ALL_POLICY) -> Path:
    """Write `policy` to `directory`/policy.yaml (for SAHAY_POLICY_PATH); returns its path."""
    path = directory / "policy.yaml"
    path.write_text(policy, encoding="utf-8")
    return path
