"""`serve.export.export_decided`: decided queue items as platform-export data that the data package accepts.

Exactly the decided items, with the moderator's final label; never author ids, pseudonyms or notes; purged texts
skipped and counted; each export is one audit record (counts, filter, format; never a text), written only once the
file is. Runs on SQLite and PostgreSQL (`database_url`). Texts are benign stand-ins.
"""

from __future__ import annotations

import csv
import json
import random
import stat
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from data.build import build
from data.loaders import load_export
from data.schema import SPLITS
from data.settings import DataSettings
from data.taxonomy import LABELS
from serve import export as export_module
from serve.db import make_engine, migrate
from serve.export import export_decided, format_for
from serve.queue import AuditActor, Queue, pseudonymise
from serve.queue_api import AuditOut
from serve.retention import purge_expired
from tests.serve.queue_helpers import ASHA, RAW_AUTHOR, SECRET, SERVICE, T0, Clock, decide_at, enqueue_at
from tests.serve.queue_helpers import named_entry as entry

HOUR = timedelta(hours=1)
OPERATOR = AuditActor("cli:ops", "admin")
HINDI = "बारिश की वजह से आज का मैच रद्द हो गया, कल फिर खेलेंगे"  # "the match was called off for rain"


def populate(engine) -> SimpleNamespace:
    """Decided, queued, claimed, purged and re-queued items; returns what the export should hold."""
    ids = enqueue_at(
        engine,
        T0,
        entry("old", author_id=RAW_AUTHOR),  # decided, then its text is purged
    )
    old = ids[0]
    decide_at(engine, T0 + HOUR, old, "none")
    now = T0 + 40 * timedelta(days=1)
    assert purge_expired(engine, 30, now=now).count == 1
    a, b, queued, claimed, twice_m1 = enqueue_at(
        engine,
        now,
        entry("a", author_id=RAW_AUTHOR),
        entry("b", text=HINDI, lang="hi", surface="comment"),
        entry("q"),
        entry("c"),
        entry("twice"),
    )
    (twice_m2,) = enqueue_at(engine, now + HOUR, entry("twice", model_version="m-2"))
    decide_at(engine, now + HOUR, a, "none", note="confirmed harmless: talks about a late bus")  # corrected
    decide_at(engine, now + 2 * HOUR, b, "informational")
    decide_at(engine, now + 3 * HOUR, twice_m1, "ideation")
    decide_at(engine, now + 4 * HOUR, twice_m2, "informational")  # the latest decision of the platform item wins
    Queue(engine, pseudonym_secret=SECRET, clock=Clock(now + 5 * HOUR)).claim(claimed, ASHA)
    expected = {
        "a": {"id": "a", "text": entry("a").text, "label": "none", "lang": "en", "surface": "post"},
        "b": {"id": "b", "text": HINDI, "label": "informational", "lang": "hi", "surface": "comment"},
        "twice": {
            "id": "twice",
            "text": entry("twice").text,
            "label": "informational",
            "lang": "en",
            "surface": "post",
        },
    }
    return SimpleNamespace(expected=expected, now=now, queued=queued)


def test_jsonl_export_holds_exactly_the_decided_items_with_final_labels(engine, tmp_path):
    state = populate(engine)
    out = tmp_path / "decided.jsonl"
    result = export_decided(engine, out, actor=OPERATOR)
    assert (result.written, result.skipped_purged, result.skipped_superseded, result.format) == (3, 1, 1, "jsonl")
    lines = out.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == ["a", "b", "twice"]  # in order of decision
    assert {r["id"]: r for r in rows} == state.expected
    raw = out.read_text(encoding="utf-8")
    assert RAW_AUTHOR not in raw and pseudonymise(RAW_AUTHOR, SECRET.encode()) not in raw
    assert "late bus" not in raw and "confirmed harmless" not in raw  # notes stay in the database
    assert HINDI in raw  # UTF-8, not \u escapes
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds raw texts: owner only

    loaded = load_export(out)  # what `sahay data check` / `sahay data build --export` run
    assert loaded.report.bad_rows == [] and loaded.report.rows_read == 3
    assert {r.id: (r.label, r.lang, r.surface) for r in loaded.records} == {
        k: (v["label"], v["lang"], v["surface"]) for k, v in state.expected.items()
    }
    assert not any("ignored columns" in reason for reason in loaded.report.cleaned)


def test_csv_export_is_accepted_too_and_since_filters_by_decision_time(engine, tmp_path):
    state = populate(engine)
    out = tmp_path / "decided.csv"
    result = export_decided(engine, out, actor=OPERATOR, since=state.now + 2 * HOUR)
    assert (result.written, result.skipped_purged, result.format) == (2, 0, "csv")
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["id"]: r for r in rows} == {k: state.expected[k] for k in ("b", "twice")}
    loaded = load_export(out)
    assert loaded.report.bad_rows == [] and {r.id for r in loaded.records} == {"b", "twice"}


def test_an_empty_queue_exports_an_empty_file(engine, tmp_path):
    out = tmp_path / "sub" / "none.jsonl"
    result = export_decided(engine, out, actor=OPERATOR)
    assert result.written == 0 and out.read_text() == ""


def export_records(engine) -> list:
    """The `export` audit records, oldest first, as GET /v1/audit shows them (Queue.audit)."""
    return [r for r in reversed(Queue(engine).audit(limit=100).items) if r.event == "export"]


def test_each_export_is_one_audit_record_with_counts_only(engine, tmp_path):
    state = populate(engine)
    assert export_records(engine) == []  # enqueue, claim, decide and purge are not exports
    out = tmp_path / "decided.jsonl"
    export_decided(engine, out, actor=OPERATOR)
    since = state.now + 2 * HOUR
    export_decided(engine, tmp_path / "later.csv", actor=AuditActor("cli:ravi", "admin"), since=since)
    first, second = export_records(engine)
    assert (first.event, first.key_id, first.role, first.queue_item_id) == ("export", "cli:ops", "admin", None)
    assert first.detail == {
        "count": 3,
        "skipped_purged": 1,
        "skipped_superseded": 1,
        "since": None,
        "format": "jsonl",
        "path": str(out.resolve()),
    }
    assert (second.key_id, second.detail["count"], second.detail["format"]) == ("cli:ravi", 2, "csv")
    assert second.detail["since"] == "2026-04-10T11:00:00Z" == since.isoformat().replace("+00:00", "Z")
    assert first.at.tzinfo is not None and second.at >= first.at
    for record in (first, second):  # never content
        assert not any(row["text"] in repr(record) for row in state.expected.values())
        assert RAW_AUTHOR not in repr(record) and "late bus" not in repr(record)
        assert AuditOut.model_validate(record).event == "export"  # GET /v1/audit's model takes the new type

    export_decided(engine, tmp_path / "again.jsonl", actor=OPERATOR, since=state.now + 10 * HOUR)
    assert export_records(engine)[-1].detail["count"] == 0  # an export of nothing is still recorded


def test_a_failed_export_leaves_no_record_and_an_unrecorded_export_no_file(engine, tmp_path, monkeypatch):
    populate(engine)
    folder = tmp_path / "exports"
    folder.mkdir()
    blocker = folder / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(OSError):
        export_decided(engine, blocker / "decided.jsonl", actor=OPERATOR)  # the file cannot be written
    assert export_records(engine) == []

    def refuse(*args, **kwargs):
        raise RuntimeError("the audit record cannot be written")

    monkeypatch.setattr(export_module, "record_audit", refuse)
    out = folder / "decided.jsonl"
    with pytest.raises(RuntimeError, match="audit record"):
        export_decided(engine, out, actor=OPERATOR)
    assert not out.exists() and list(folder.iterdir()) == [blocker]  # no file, no temporary left behind
    assert export_records(engine) == []


def test_format_must_match_the_suffix(tmp_path):
    assert format_for(tmp_path / "x.JSONL") == "jsonl" and format_for(tmp_path / "x.csv", "csv") == "csv"
    for path, fmt in ((tmp_path / "x.txt", None), (tmp_path / "x.jsonl", "csv"), (tmp_path / "x.csv", "parquet")):
        with pytest.raises(ValueError):
            format_for(path, fmt)


def test_data_build_takes_the_export(tmp_path):
    """`sahay data build --export FILE` on a small seed (as tests/unit/test_build.py does): the exported items land
    in the splits with the moderators' labels."""
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    migrate(engine)
    try:
        queue = Queue(engine, pseudonym_secret=SECRET, clock=Clock(datetime.now(UTC)))
        texts = {
            "exp-1": ("the tram broke down near the old bridge so we walked home", "en"),
            "exp-2": (HINDI, "hi"),
            "exp-3": ("kal raat ki party mein gaane bahut acche the yaar", "hi-Latn"),
        }
        ids = queue.enqueue([entry(k, text=t, lang=lang) for k, (t, lang) in texts.items()], SERVICE)
        for queue_id, label in zip(ids, ("none", "informational", "none"), strict=True):
            queue.claim(queue_id, ASHA)
            queue.decide(queue_id, ASHA, label, "no_action")
        out = tmp_path / "decided.jsonl"
        assert export_decided(engine, out, actor=OPERATOR).written == 3
    finally:
        engine.dispose()

    seed = tmp_path / "seed"
    seed.mkdir()
    rng = random.Random(0)
    words = sorted(
        {"".join(rng.choice(["ka", "ri", "mo", "ten", "sul", "vi", "nex", "lu"]) for _ in range(3)) for _ in range(300)}
    )
    seed_rows = [
        {
            "id": f"{lang}-{label}-{k}",
            "text": " ".join(rng.choice(words) for _ in range(9)),
            "label": label,
            "lang": lang,
            "surface": "post",
            "tags": [],
        }
        for lang in ("en", "hi", "hi-Latn")
        for label in LABELS
        for k in range(6)
    ]
    (seed / "mini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in seed_rows))
    empty = tmp_path / "no-public-data"
    empty.mkdir()
    result = build(DataSettings(seed_dir=seed, datasets_dir=empty, exports=[out], data_dir=tmp_path / "built"))
    assert result.bad_rows == []
    built = {
        row["id"]: row for split in SPLITS for row in result.dataset[split] if row["source"] == "export:decided.jsonl"
    }
    assert {k: v["label"] for k, v in built.items()} == {"exp-1": "none", "exp-2": "informational", "exp-3": "none"}
    assert {k: v["lang"] for k, v in built.items()} == {k: lang for k, (_, lang) in texts.items()}
