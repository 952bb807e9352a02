"""Decided queue items as labelled data, in the platform-export format of `sahay data build --export FILE`
(data/loaders/export.py), so that a platform retrains on its moderators' labels.

One row per decided platform item: `id` (the platform's item id), `text`, `label` (the moderator's final label:
confirmed or corrected), `lang` (the language Sahay detected), `surface`. Never the author's pseudonym, the note,
the model's scores or anything else. Items whose text was purged (retention) cannot be training data: they are
skipped and counted. An item decided under two model versions (two queue rows) is written once, with its latest
decision.

The file holds raw texts: it is written owner-only (0600) and replaced atomically.

Reading texts in bulk is audited (issue #6): each export writes one `export` audit record (who: `actor`; when;
how many items were written and skipped, the `since` filter, the format and the file's path; never a text). The
record is committed only once the file is complete: the rows go to a temporary file (fsynced), then one
transaction inserts the record and moves the file into place, so an export whose file cannot be written leaves no
record, and one whose record cannot be committed leaves no file at `out`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, select

from serve.db import immediate
from serve.queue import Actor, record_audit
from serve.tables import QueueItem, utcnow

__all__ = ["COLUMNS", "FORMATS", "ExportResult", "Format", "export_decided", "format_for"]

Format = Literal["jsonl", "csv"]
FORMATS: dict[str, Format] = {".jsonl": "jsonl", ".csv": "csv"}
"""The suffixes `sahay data build --export` reads each format from (it chooses the parser by suffix)."""
COLUMNS = ("id", "text", "label", "lang", "surface")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: Format
    written: int
    """Rows written: decided items with their text."""
    skipped_purged: int
    """Decided items whose text was purged already (not exportable)."""
    skipped_superseded: int
    """Older decisions of a platform item decided again under another model version."""


def format_for(path: Path, fmt: str | None = None) -> Format:
    """The format to write `path` in: `fmt` if given, else from the suffix; ValueError when the suffix would make
    `sahay data build` read it differently (it picks the parser by suffix)."""
    by_suffix = FORMATS.get(Path(path).suffix.lower())
    if fmt is not None and fmt not in FORMATS.values():
        raise ValueError(f"unknown format {fmt!r} (jsonl or csv)")
    if by_suffix is None:
        raise ValueError(f"{path}: the file name must end in .jsonl or .csv (`sahay data build` reads by suffix)")
    if fmt is not None and fmt != by_suffix:
        raise ValueError(f"{path}: format {fmt} does not match the suffix {Path(path).suffix} (use .{fmt})")
    return by_suffix


def _decided(engine: Engine, since: datetime | None) -> Iterator[tuple]:
    query = (
        select(
            QueueItem.id,
            QueueItem.item_id,
            QueueItem.text,
            QueueItem.decision_label,
            QueueItem.lang,
            QueueItem.surface,
            QueueItem.decided_at,
        )
        .where(QueueItem.state == "decided")
        .order_by(QueueItem.decided_at, QueueItem.id)
    )
    if since is not None:
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValueError("since must be timezone-aware")
        query = query.where(QueueItem.decided_at >= since)
    with engine.connect() as connection:
        yield from connection.execution_options(yield_per=1000).execute(query)


def export_decided(
    engine: Engine, out: Path, *, actor: Actor, fmt: str | None = None, since: datetime | None = None
) -> ExportResult:
    """Write the decided items (decided at or after `since`, if given) to `out` (.jsonl or .csv), audited as
    `actor` (`serve.queue.cli_actor()` for the command line)."""
    out = Path(out)
    fmt = format_for(out, fmt)
    latest: dict[str, tuple[str | None, str, str, str]] = {}  # item id -> (text, label, lang, surface)
    superseded = 0
    for _, item_id, text, label, lang, surface, _ in _decided(engine, since):
        if item_id in latest:
            superseded += 1
            del latest[item_id]  # re-inserted below: rows stay in the order of their latest decision
        latest[item_id] = (text, label, lang, surface)
    rows = [
        {"id": item_id, "text": text, "label": label, "lang": lang, "surface": surface}
        for item_id, (text, label, lang, surface) in latest.items()
        if text is not None
    ]
    result = ExportResult(out, fmt, len(rows), len(latest) - len(rows), superseded)
    detail = {
        "count": result.written,
        "skipped_purged": result.skipped_purged,
        "skipped_superseded": result.skipped_superseded,
        "since": since.astimezone(UTC).isoformat().replace("+00:00", "Z") if since is not None else None,
        "format": fmt,
        "path": str(out.resolve()),
    }
    tmp = _write_temporary(out, fmt, rows)
    replaced = committed = False
    try:
        with immediate(engine).begin() as connection:
            record_audit(connection, actor, "export", detail, utcnow())
            os.replace(tmp, out)  # inside the transaction: a failed move rolls the record back
            replaced = True
        committed = True
    finally:
        if not replaced:
            Path(tmp).unlink(missing_ok=True)
        elif not committed:  # the file is in place but its record did not commit: take the texts back
            out.unlink(missing_ok=True)
    return result


def _write_temporary(out: Path, fmt: Format, rows: list[dict[str, str]]) -> Path:
    """The rows in a temporary file next to `out` (owner-only, fsynced); the caller moves it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if fmt == "jsonl":
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                writer = csv.DictWriter(fh, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)
