"""What every loader shares: reading files with line numbers, cleaning text, merging duplicates, reporting.

Loaders never drop a row silently: each dropped row is counted under a reason, and each malformed row is
kept in `bad_rows` with its file and line so the build can print and save it.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ftfy
from datasets import Dataset
from pydantic import ValidationError

from data.schema import FEATURES, Record

csv.field_size_limit(sys.maxsize)


class DataFileError(ValueError):
    """A file that cannot be read at all; the message names the file and line."""

    def __init__(self, path: Path | str, line: int | None, reason: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


@dataclass(frozen=True)
class BadRow:
    """A row that could not become a record."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class LoadReport:
    """What a loader read, kept, cleaned and refused."""

    source: str
    rows_read: int = 0
    dropped: Counter = field(default_factory=Counter)
    bad_rows: list[BadRow] = field(default_factory=list)
    cleaned: Counter = field(default_factory=Counter)

    def bad(self, file: Path | str, line: int, reason: str) -> None:
        self.bad_rows.append(BadRow(str(file), line, reason))
        self.dropped["malformed row"] += 1

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "dropped": dict(self.dropped),
            "cleaned": dict(self.cleaned),
            "bad_rows": [str(b) for b in self.bad_rows],
        }


@dataclass
class LoadResult:
    """Records of one source plus the report of how they were obtained."""

    records: list[Record]
    report: LoadReport

    def to_dataset(self) -> Dataset:
        """The records as a `datasets.Dataset` with the project's features (text_norm left empty)."""
        rows = [record_row(r) for r in self.records]
        return Dataset.from_list(rows, features=FEATURES)


def record_row(record: Record, text_norm: str = "") -> dict:
    """A record as a row of the built dataset."""
    row = record.model_dump()
    row["label"] = row["label"] or ""
    row["split"] = row["split"] or ""
    row["text_norm"] = text_norm
    return row


def clean_text(text: str | None, report: LoadReport) -> str:
    """Repair mojibake and stray whitespace in display text; counts each repair."""
    if text is None:
        return ""
    fixed = ftfy.fix_text(text)
    if fixed != text:
        report.cleaned["mojibake or encoding repaired"] += 1
    return fixed.strip()


def read_csv(
    path: Path, required: list[str], any_of: list[str] | None = None, delimiter: str = ","
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV as (line number of the row's first line, dict), checking the header.

    A header missing a required column (or all of `any_of`), or a file the csv module cannot parse in strict
    mode (e.g. a quote never closed), raises DataFileError naming the file and line.
    """
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFileError(path, 1, "file is empty (no header)") from None
        except csv.Error as exc:
            raise DataFileError(path, reader.line_num, f"cannot parse header: {exc}") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise DataFileError(path, 1, f"missing column(s) {missing}; header has {header}")
        if any_of and not set(any_of) & set(header):
            raise DataFileError(path, 1, f"needs one of the columns {any_of}; header has {header}")
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataFileError(path, start, f"cannot parse CSV: {exc}") from None
            if len(values) != len(header):
                yield start, {"__error__": f"expected {len(header)} fields, got {len(values)}"}
            else:
                yield start, dict(zip(header, values, strict=True))
            start = reader.line_num + 1


def make_record(report: LoadReport, file: Path | str, line: int, **fields) -> Record | None:
    """Validate a record; an invalid one becomes a bad row with the validation message."""
    try:
        return Record(**fields)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())
        report.bad(file, line, reasons)
        return None


def merge_duplicates(records: list[Record], report: LoadReport, key: Callable[[str], str]) -> list[Record]:
    """Collapse rows with the same text (after `key`) into one; conflicting labels become their union.

    The union is the honest label set for a text that one source labelled two ways: its true label is in
    one of them. The first occurrence keeps its id.
    """
    by_key: dict[str, Record] = {}
    for rec in records:
        k = key(rec.text)
        first = by_key.get(k)
        if first is None:
            by_key[k] = rec
            continue
        report.dropped["duplicate text"] += 1
        if first.label_set != rec.label_set:
            report.cleaned["conflicting duplicates merged into a label set"] += 1
            merged = sorted(set(first.label_set) | set(rec.label_set))
            by_key[k] = Record(**{**first.model_dump(), "label": None, "label_set": merged})
    return list(by_key.values())
