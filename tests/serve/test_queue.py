"""The moderation queue (serve/queue.py) against a database URL: idempotent enqueue, ordering, filters, leases,
decisions, the audit log and pseudonymised authors.

Every test takes its database from the `database_url` fixture of tests/serve/conftest.py (a fresh, empty
database), so each runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from serve.queue import (
    PSEUDONYM_SECRET_MISSING,
    AuditActor,
    Conflict,
    InvalidCursor,
    NotFound,
    PseudonymSecretMissing,
    Queue,
    entry_for,
    pseudonymise,
)
from serve.tables import AuditEvent, Base, QueueItem
from tests.serve.queue_helpers import ADMIN, ASHA, RAVI, RAW_AUTHOR, SECRET, SERVICE, TEXT, Clock, actor
from tests.serve.queue_helpers import make_entry as entry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(engine, clock) -> Queue:
    return Queue(engine, lease_seconds=300, pseudonym_secret=SECRET, clock=clock)


def count(engine, table) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(table)).all())


def events(queue: Queue, **kwargs) -> list:
    return queue.audit(limit=100, **kwargs).items


# --- schema -----------------------------------------------------------------------------------------------------


def test_migrations_create_the_queue_tables_and_match_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        assert {"queue_items", "audit_events"} <= set(inspect(conn).get_table_names())
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


# --- enqueue ----------------------------------------------------------------------------------------------------


def test_enqueue_is_idempotent_on_item_id_and_model_version(queue, engine):
    first = queue.enqueue([entry("p1")], SERVICE)
    again = queue.enqueue([entry("p1", priority=1, sla_minutes=15)], SERVICE)
    assert again == first and count(engine, QueueItem) == 1
    with engine.connect() as conn:
        assert conn.execute(select(QueueItem.priority)).scalar_one() == 2  # the first row stays as it was
    other_model = queue.enqueue([entry("p1", model_version="m-2")], SERVICE)
    assert other_model != first and count(engine, QueueItem) == 2
    assert [e.event for e in events(queue)] == ["enqueue", "enqueue"]  # a repeat is not a new enqueue


def test_one_batch_is_one_transaction_and_duplicates_inside_it_share_a_row(queue, engine):
    ids = queue.enqueue([entry("a"), entry("b"), entry("a")], SERVICE)
    assert ids[0] == ids[2] != ids[1] and count(engine, QueueItem) == 2
    assert queue.enqueue([], SERVICE) == []


def test_concurrent_enqueues_of_one_item_make_one_row(queue, engine):
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(queue.enqueue([entry("same")], SERVICE))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len({tuple(r) for r in results}) == 1
    assert count(engine, QueueItem) == 1


def test_sla_deadline_and_created_time_come_from_the_clock(queue, clock):
    queue.enqueue([entry("p1", sla_minutes=15)], SERVICE)
    (item,) = queue.list(ASHA).items
    assert item.created_at == clock.now and item.sla_deadline == clock.now + timedelta(minutes=15)
    assert item.created_at.tzinfo is not None


def test_the_author_is_stored_only_as_a_keyed_hash(queue, engine):
    queue.enqueue([entry("p1", author_id=RAW_AUTHOR), entry("p2", author_id=RAW_AUTHOR)], SERVICE)
    expected = pseudonymise(RAW_AUTHOR, SECRET.encode())
    with engine.connect() as conn:
        hashes = conn.execute(select(QueueItem.author_hash)).scalars().all()
        dump = repr(
            [tuple(r) for t in ("queue_items", "audit_events") for r in conn.execute(text(f"SELECT * FROM {t}"))]
        )
    assert hashes == [expected, expected] and len(expected) == 64
    assert RAW_AUTHOR not in dump
    assert pseudonymise(RAW_AUTHOR, b"another-secret-0123456") != expected
    assert queue.claim(1, ASHA).content.author_pseudonym == expected


def test_an_author_id_without_a_secret_is_refused_and_nothing_is_written(engine, clock):
    queue = Queue(engine, pseudonym_secret=None, clock=clock)
    assert not queue.pseudonymises
    with pytest.raises(PseudonymSecretMissing, match="SAHAY_PSEUDONYM_SECRET"):
        queue.enqueue([entry("p1"), entry("p2", author_id=RAW_AUTHOR)], SERVICE)
    assert count(engine, QueueItem) == 0
    assert "SAHAY_PSEUDONYM_SECRET" in PSEUDONYM_SECRET_MISSING
    assert queue.enqueue([entry("p1")], SERVICE)  # without an author id an item is fine


def test_reprs_never_show_text_author_or_secret(queue):
    e = entry("p1", author_id=RAW_AUTHOR)
    assert TEXT not in repr(e) and RAW_AUTHOR not in repr(e)
    assert SECRET not in repr(queue)


def test_entry_for_takes_the_enqueue_action_of_a_decision():
    from serve.policy import Action, Decision
    from serve.schemas import ClassifyItem

    item = ClassifyItem(id="x1", text=TEXT, surface="chat", author_id="u1")
    prediction = {
        "label": "intent",
        "probabilities": {"intent": 0.9},
        "at_risk": 0.9,
        "urgent": 0.9,
        "violating": 0.0,
        "spans": [],
        "lang": "en",
        "model_version": "m-1",
    }
    enqueue = Decision([Action("interstitial", kind="author_support"), Action("enqueue", None, 1, 15)], "urgent", "v")
    got = entry_for(item, prediction, enqueue)
    assert (got.priority, got.sla_minutes, got.rule, got.author_id, got.surface) == (1, 15, "urgent", "u1", "chat")
    assert entry_for(item, prediction, Decision([Action("none")], None, "v")) is None


# --- list -------------------------------------------------------------------------------------------------------


def test_list_orders_by_priority_then_sla_deadline(queue, clock):
    queue.enqueue([entry("low", priority=3, sla_minutes=1440)], SERVICE)
    clock.advance(minutes=1)
    queue.enqueue([entry("mid-late", priority=2, sla_minutes=60)], SERVICE)
    clock.advance(minutes=1)
    queue.enqueue([entry("urgent", priority=1, sla_minutes=15)], SERVICE)
    queue.enqueue([entry("mid-early", priority=2, sla_minutes=30)], SERVICE)
    assert [i.item_id for i in queue.list(ASHA).items] == ["urgent", "mid-early", "mid-late", "low"]


def test_list_has_no_content(queue):
    queue.enqueue([entry("p1", author_id=RAW_AUTHOR)], SERVICE)
    (item,) = queue.list(ASHA).items
    assert item.content is None and TEXT not in repr(item)


def test_list_filters(queue):
    queue.enqueue(
        [
            entry("a", surface="post", lang="en", label="ideation"),
            entry("b", surface="search", lang="hi", label="intent", priority=1, sla_minutes=15),
            entry("c", surface="chat", lang="hi-Latn", label="promotion"),
        ],
        SERVICE,
    )
    assert [i.item_id for i in queue.list(ASHA, surface="search").items] == ["b"]
    assert [i.item_id for i in queue.list(ASHA, lang="hi-Latn").items] == ["c"]
    assert [i.item_id for i in queue.list(ASHA, label="ideation").items] == ["a"]
    assert queue.list(ASHA, surface="post", label="intent").items == []


def test_list_by_state_and_expired_leases_count_as_queued(queue, clock):
    a, b, c = queue.enqueue([entry("a"), entry("b"), entry("c")], SERVICE)
    queue.claim(a, ASHA)
    queue.claim(b, ASHA)
    queue.decide(b, ASHA, "ideation", "resources_shown")
    assert [i.id for i in queue.list(ASHA).items] == [c]
    assert [(i.id, i.state, i.claimed_by) for i in queue.list(ASHA, state="claimed").items] == [
        (a, "claimed", ASHA.key_id)
    ]
    assert [(i.id, i.state) for i in queue.list(ASHA, state="decided").items] == [(b, "decided")]
    clock.advance(seconds=301)
    listed = queue.list(ASHA).items
    assert [(i.id, i.state, i.claimed_by, i.lease_expires_at) for i in listed] == [
        (a, "queued", None, None),
        (c, "queued", None, None),
    ]
    assert queue.list(ASHA, state="claimed").items == []


def test_list_pages_with_a_cursor(queue):
    queue.enqueue([entry(f"p{i}", priority=1 + i % 3, sla_minutes=15 * (1 + i % 3)) for i in range(7)], SERVICE)
    everything = [i.id for i in queue.list(ASHA, limit=100).items]
    seen, cursor = [], None
    while True:
        page = queue.list(ASHA, limit=3, cursor=cursor)
        seen += [i.id for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == everything and len(seen) == 7


@pytest.mark.parametrize("cursor", ["", "not-base64!", "W10", "WzEsIngiLDFd", "eyJhIjoxfQ", "WzEsIjIwMjYiLHRydWVd"])
def test_bad_cursors_and_limits_are_refused(queue, cursor):
    with pytest.raises(InvalidCursor, match="cursor"):
        queue.list(ASHA, cursor=cursor)
    with pytest.raises(InvalidCursor, match="cursor"):
        queue.audit(cursor=cursor)
    with pytest.raises(ValueError, match="limit"):
        queue.list(ASHA, limit=101)
    with pytest.raises(ValueError, match="state"):
        queue.list(ASHA, state="gone")


# --- claim ------------------------------------------------------------------------------------------------------


def test_claim_returns_content_and_holds_a_lease(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    item = queue.claim(qid, ASHA)
    assert item.content.text == TEXT and item.content.spans[0]["text"] == "bus"
    assert (item.state, item.claimed_by, item.lease_expires_at) == (
        "claimed",
        ASHA.key_id,
        clock.now + timedelta(seconds=300),
    )


def test_two_moderators_never_hold_one_item(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    held = queue.claim(qid, ASHA)
    with pytest.raises(Conflict, match="claimed by another moderator") as info:
        queue.claim(qid, RAVI)
    assert info.value.frees_at == held.lease_expires_at
    assert held.lease_expires_at.isoformat().replace("+00:00", "Z") in str(info.value)


def test_an_expired_lease_can_be_claimed_by_anyone(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    queue.claim(qid, ASHA)
    clock.advance(seconds=300)
    item = queue.claim(qid, RAVI)
    assert item.claimed_by == RAVI.key_id
    with pytest.raises(Conflict):
        queue.decide(qid, ASHA, "none", "no_action")  # the first lease is gone


def test_claiming_again_extends_the_lease(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    first = queue.claim(qid, ASHA)
    clock.advance(seconds=200)
    second = queue.claim(qid, ASHA)
    assert second.lease_expires_at == first.lease_expires_at + timedelta(seconds=200)


def test_claim_unknown_or_decided(queue):
    with pytest.raises(NotFound):
        queue.claim(999, ASHA)
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    queue.claim(qid, ASHA)
    queue.decide(qid, ASHA, "ideation", "resources_shown")
    with pytest.raises(Conflict, match="already decided"):
        queue.claim(qid, RAVI)


def test_concurrent_claims_have_one_winner(queue, engine):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    keys = [actor(f"{i:012x}") for i in range(8)]
    won: list[str] = []
    lost: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(keys))

    def run(key: AuditActor) -> None:
        barrier.wait()
        try:
            queue.claim(qid, key)
            won.append(key.key_id)
        except Conflict:
            lost.append(key.key_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(won) == 1 and len(lost) == len(keys) - 1
    with engine.connect() as conn:
        assert conn.execute(select(QueueItem.claimed_by)).scalar_one() == won[0]


# --- decide -----------------------------------------------------------------------------------------------------


def test_decision_flow(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    queue.claim(qid, ASHA)
    clock.advance(seconds=10)
    done = queue.decide(qid, ASHA, "informational", "no_action", "context: a news article")
    assert done.state == "decided" and done.claimed_by is None
    assert (done.decision.label, done.decision.action, done.decision.note) == (
        "informational",
        "no_action",
        "context: a news article",
    )
    assert (done.decision.decided_by, done.decision.decided_at) == (ASHA.key_id, clock.now)
    assert done.label == "ideation"  # the model's label stays; the decision holds the moderator's
    with pytest.raises(Conflict, match="already decided"):
        queue.decide(qid, ASHA, "none", "no_action")


def test_only_the_lease_holder_decides_while_the_lease_lives(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    with pytest.raises(Conflict, match="claim it first"):
        queue.decide(qid, ASHA, "none", "no_action")
    queue.claim(qid, ASHA)
    with pytest.raises(Conflict, match="claimed by another moderator"):
        queue.decide(qid, RAVI, "none", "no_action")
    clock.advance(seconds=301)
    with pytest.raises(Conflict, match="claim it first"):
        queue.decide(qid, ASHA, "none", "no_action")
    with pytest.raises(NotFound):
        queue.decide(999, ASHA, "none", "no_action")


@pytest.mark.parametrize(
    ("label", "action", "note", "message"),
    [
        ("sad", "no_action", None, "unknown label"),
        ("none", "banned", None, "unknown action"),
        ("none", "no_action", "x" * 2001, "note is longer"),
    ],
)
def test_bad_decisions_are_refused(queue, label, action, note, message):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    queue.claim(qid, ASHA)
    with pytest.raises(ValueError, match=message):
        queue.decide(qid, ASHA, label, action, note)


# --- audit ------------------------------------------------------------------------------------------------------


def test_every_content_read_and_decision_is_audited_with_who_when_what(queue, clock):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    clock.advance(seconds=1)
    queue.list(ASHA, surface="post")
    clock.advance(seconds=1)
    queue.claim(qid, ASHA)
    clock.advance(seconds=1)
    queue.decide(qid, ASHA, "none", "no_action", "fine")
    log = events(queue)
    assert [(e.event, e.key_id, e.role, e.queue_item_id) for e in log] == [
        ("decision", ASHA.key_id, "moderator", qid),
        ("claim", ASHA.key_id, "moderator", qid),
        ("list", ASHA.key_id, "moderator", None),
        ("enqueue", SERVICE.key_id, "service", qid),
    ]
    assert [e.at for e in log] == sorted((e.at for e in log), reverse=True) and log[0].at == clock.now
    assert log[0].detail == {"label": "none", "action": "no_action", "model_label": "ideation", "note": True}
    assert log[2].detail["surface"] == "post" and log[2].detail["ids"] == [qid]
    assert TEXT not in repr(log) and "fine" not in repr(log)  # no content in the audit log


def test_refused_actions_leave_no_audit_record(queue):
    (qid,) = queue.enqueue([entry("p1")], SERVICE)
    queue.claim(qid, ASHA)
    with pytest.raises(Conflict):
        queue.claim(qid, RAVI)
    with pytest.raises(Conflict):
        queue.decide(qid, RAVI, "none", "no_action")
    assert [e.event for e in events(queue)] == ["claim", "enqueue"]


def test_audit_filters_by_item_and_pages(queue):
    a, b = queue.enqueue([entry("a"), entry("b")], SERVICE)
    for _ in range(3):
        queue.claim(a, ADMIN)
    assert {e.queue_item_id for e in events(queue, queue_item_id=b)} == {b}
    assert [e.role for e in events(queue, queue_item_id=a)] == ["admin", "admin", "admin", "service"]
    first = queue.audit(limit=2)
    second = queue.audit(limit=2, cursor=first.next_cursor)
    rest = queue.audit(limit=2, cursor=second.next_cursor)
    ids = [e.id for p in (first, second, rest) for e in p.items]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5 and rest.next_cursor is None


def test_audit_records_are_only_ever_inserted():
    import inspect as pyinspect

    import serve.queue

    source = pyinspect.getsource(serve.queue)
    assert "update(AuditEvent" not in source and "delete(" not in source
    assert source.count("insert(AuditEvent)") == 1


def test_the_queue_rows_hold_what_the_issue_lists(queue, engine, clock):
    (qid,) = queue.enqueue([replace(entry("p1"), author_id=RAW_AUTHOR)], SERVICE)
    with engine.connect() as conn:
        row = conn.execute(select(QueueItem).where(QueueItem.id == qid)).one()._mapping
    assert row["item_id"] == "p1" and row["surface"] == "post" and row["lang"] == "en" and row["text"] == TEXT
    assert row["label"] == "ideation" and row["signals"]["at_risk"] == 0.8 and row["spans"][0]["end"] == 7
    assert row["rule"] == "at_risk" and row["policy_version"].startswith("2026") and row["model_version"] == "m-1"
    assert row["priority"] == 2 and row["state"] == "queued"
    assert count(engine, AuditEvent) == 1
