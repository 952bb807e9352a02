"""Loader for the project's own seed corpus: data/seed/*.jsonl, written from scratch with fine labels."""

from __future__ import annotations

import json
from pathlib import Path

from data.loaders.common import DataFileError, LoadReport, LoadResult, make_record, merge_duplicates
from data.normalize import dedup_key

SEED_SOURCE = "seed"
SEED_FIELDS = {"id", "text", "label", "lang", "surface", "tags"}


def load_seed(seed_dir: Path) -> LoadResult:
    """Every *.jsonl file in `seed_dir`, in name order. Malformed lines become bad rows with file:line."""
    files = sorted(seed_dir.glob("*.jsonl"))
    if not files:
        raise DataFileError(seed_dir, None, "no seed corpus files (*.jsonl) found")
    report = LoadReport(SEED_SOURCE)
    records = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                report.rows_read += 1
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    report.bad(path, line_no, f"invalid JSON: {exc.msg}")
                    continue
                if not isinstance(row, dict) or set(row) != SEED_FIELDS:
                    keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                    report.bad(path, line_no, f"expected exactly the keys {sorted(SEED_FIELDS)}, got {keys}")
                    continue
                rec = make_record(report, path, line_no, source=SEED_SOURCE, label_set=[], **row)
                if rec is not None:
                    records.append(rec)
    return LoadResult(merge_duplicates(records, report, dedup_key), report)
