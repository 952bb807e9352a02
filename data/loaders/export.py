"""Loader for a platform's own labelled export (CSV, JSONL or Parquet), e.g. its moderators' decisions.

Required columns: `text`, and `label` or `label_set` (a list, or a string "a|b"). Optional: `id`, `lang`
(detected when absent), `surface` (default post), `group`, `tags`, `source`. Other columns are ignored
and named in the report. A row that cannot be used is reported with its file and line (for Parquet: row
number) and counted; it is never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data.langid import detect_lang
from data.loaders.common import DataFileError, LoadReport, LoadResult, make_record, merge_duplicates, read_csv
from data.normalize import dedup_key

KNOWN_COLUMNS = {"id", "text", "label", "label_set", "lang", "surface", "group", "tags", "source"}
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def _rows(path: Path, report: LoadReport) -> Iterator[tuple[int, dict[str, Any]]]:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataFileError(path, None, f"unsupported export format {path.suffix!r}; use .csv, .jsonl or .parquet")
    if fmt == "csv":
        yield from read_csv(path, ["text"], any_of=["label", "label_set"])
    elif fmt == "jsonl":
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield line_no, {"__error__": f"invalid JSON: {exc.msg}"}
                    continue
                yield line_no, row if isinstance(row, dict) else {"__error__": "a line must hold a JSON object"}
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataFileError(path, None, f"cannot read Parquet: {exc}") from None
        for row_no, row in enumerate(table.to_pylist(), start=1):
            yield row_no, row


def _as_list(value: Any) -> list[str]:
    """A label set or tag list from a list, a JSON list string, or a 'a|b' / 'a,b' string."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return _as_list(json.loads(text))
        except json.JSONDecodeError:
            pass
    for sep in ("|", ",", ";"):
        if sep in text:
            return [p.strip() for p in text.split(sep) if p.strip()]
    return [text] if text else []


def load_export(path: Path) -> LoadResult:
    """Load one export file; raises DataFileError (naming the file) when the file itself is unusable."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, None, "export file not found")
    report = LoadReport(f"export:{path.name}")
    records, ignored = [], set()
    saw_label_column = False
    for line, row in _rows(path, report):
        report.rows_read += 1
        if "__error__" in row:
            report.bad(path, line, row["__error__"])
            continue
        ignored |= set(row) - KNOWN_COLUMNS
        labels = _as_list(row.get("label_set")) or _as_list(row.get("label"))
        saw_label_column |= "label" in row or "label_set" in row
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            report.bad(path, line, "missing or empty text")
            continue
        if not labels:
            report.bad(path, line, "missing label (give `label` or `label_set`)")
            continue
        rec = make_record(
            report,
            path,
            line,
            id=str(row.get("id") or f"{path.stem}:{line}"),
            text=text.strip(),
            label_set=labels,
            lang=row.get("lang") or detect_lang(text),
            surface=row.get("surface") or "post",
            group=str(row.get("group") or ""),
            tags=_as_list(row.get("tags")),
            source=str(row.get("source") or f"export:{path.name}"),
        )
        if rec is not None:
            records.append(rec)
    if report.rows_read and not saw_label_column:
        raise DataFileError(path, 1, "no `label` or `label_set` column")
    if ignored:
        report.cleaned[f"ignored columns: {', '.join(sorted(ignored))}"] += 1
    return LoadResult(merge_duplicates(records, report, dedup_key), report)
