"""Bulk scoring on one machine (`sahay score`): a file or a saved `datasets` dataset in, a directory of shards out.

    OUTPUT/part-00000.<fmt>, part-00001.<fmt>, ...   the input's columns + the model's and the policy's columns
    OUTPUT/rejects.jsonl                              {"row", "reason", "id"?} per unusable row; never the text
    OUTPUT/_manifest.json                             input fingerprint, model and policy versions, options,
                                                      and per finished shard its row range, counts and bytes
    OUTPUT/_SUCCESS                                   written last, when every shard is done

Streaming: rows are read in order (JSONL line by line, CSV with the csv module, Parquet by record batch, a
`datasets` dataset memory-mapped in batches) and held one shard at a time, so memory is flat in the input's size.
Shard k holds input rows [k * shard_size, (k + 1) * shard_size) (0-based positions, rejects included).

Resumable: a shard is written to a hidden temporary file and renamed, then recorded in the manifest (the commit
point). A re-run skips recorded shards whose file is present with the recorded size, and recomputes the rest. A
manifest for another input, model, policy or options refuses the run unless `overwrite`.

`score_batch` is the pure per-batch function (checked rows in, scored rows out) and `check_row` says why a row
cannot be scored; `write_shard` runs both over one shard and writes it. Another engine (serve/score_ray.py, Ray
Data) reuses these three, `InputReader.plan` (each shard's row range and byte offset) and `InputReader.read` (the
rows from one such offset), so its output is the same, file for file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from data.taxonomy import LABELS

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS"
REJECTS_NAME = "rejects.jsonl"
REJECTS_DIR = "_rejects"
MANIFEST_FORMAT = 1
INPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
OUTPUT_FORMATS = ("jsonl", "parquet", "csv")
DEFAULT_SHARD_SIZE = 10_000
DEFAULT_BATCH_SIZE = 64
DEFAULT_MAX_CHARS = 100_000
"""Longer texts are rejected; the model itself reads only the first `model.classifier.MAX_CHARS` (20,000)."""

PROB_COLUMNS = tuple(f"p_{label}" for label in LABELS)
SCORE_COLUMNS = (
    "label",
    *PROB_COLUMNS,
    "at_risk",
    "urgent",
    "violating",
    "lang",
    "model_version",
    "actions",
    "rule",
    "policy_version",
    "decision",
)
"""Columns added to each row; `spans` follows when explaining. An input column of the same name is kept as
`input_<name>` (e.g. a platform export's own `label`)."""

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_FINGERPRINT_BYTES = 1 << 16


class ScoreError(ValueError):
    """A usage problem (missing input, unknown format, missing column, conflicting earlier output)."""


@dataclass(frozen=True)
class ScoreOptions:
    text_column: str = "text"
    surface_column: str | None = None
    country_column: str | None = None
    id_column: str = "id"
    surface: str = "post"
    max_chars: int = DEFAULT_MAX_CHARS
    explain: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    shard_size: int = DEFAULT_SHARD_SIZE
    format: str = "jsonl"

    def output_identity(self) -> dict:
        """The options that change what is written (batch size does not)."""
        d = asdict(self)
        d.pop("batch_size")
        return d


@dataclass
class ScoreSummary:
    output: Path
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    shards: int = 0
    shards_skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "output": str(self.output)}

    def add(self, entry: dict) -> None:
        """Count a shard's manifest entry (freshly written or found done)."""
        self.scored += entry["scored"]
        self.rejected += entry["rejected"]
        for reason, n in entry.get("reasons", {}).items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


@dataclass(frozen=True)
class ShardSpec:
    """Shard `index` holds input rows [start, end); for JSONL and CSV, row `start` begins at byte `offset`."""

    index: int
    start: int
    end: int
    offset: int = 0


# ----------------------------------------------------------------------------------------------- rows


def check_row(row: Mapping[str, Any], options: ScoreOptions) -> str | None:
    """Why the row cannot be scored (a short reason, never quoting the text), or None."""
    if "__error__" in row:
        return str(row["__error__"])
    text = row.get(options.text_column)
    if text is None:
        return "missing text"
    if not isinstance(text, str):
        return f"text is not a string ({type(text).__name__})"
    if not text.strip():
        return "empty text"
    if len(text) > options.max_chars:
        return f"text longer than {options.max_chars} characters ({len(text)})"
    from serve.policy import SURFACES

    surface = _surface(row, options)
    if surface not in SURFACES:
        return f"unknown surface {str(surface)[:40]!r} (allowed: {', '.join(SURFACES)})"
    country = _country(row, options)
    if country is not None and not (isinstance(country, str) and _COUNTRY.match(country)):
        return f"bad country {str(country)[:40]!r} (want an ISO 3166-1 alpha-2 code)"
    return None


def _surface(row: Mapping[str, Any], options: ScoreOptions) -> Any:
    value = row.get(options.surface_column) if options.surface_column else None
    return options.surface if value is None or value == "" else value


def _country(row: Mapping[str, Any], options: ScoreOptions) -> Any:
    value = row.get(options.country_column) if options.country_column else None
    return None if value is None or value == "" else value


def score_batch(
    classifier,
    policy,
    thresholds: Mapping[str, float],
    rows: Sequence[Mapping[str, Any]],
    options: ScoreOptions = ScoreOptions(),
) -> list[dict]:
    """Score rows that passed `check_row`: each comes back as its columns plus SCORE_COLUMNS (and `spans`).

    Pure apart from the model: the same rows give the same output whatever the batch or engine."""
    if not rows:
        return []
    predictions = classifier.predict([r[options.text_column] for r in rows], explain=options.explain)
    out = []
    for row, pred in zip(rows, predictions, strict=True):
        signals = {"at_risk": pred.at_risk, "urgent": pred.urgent, "violating": pred.violating}
        decision = policy.decide(signals, thresholds, _surface(row, options), _country(row, options))
        scored = {(f"input_{k}" if k in SCORE_COLUMNS or k == "spans" else k): v for k, v in row.items()}
        scored.update(
            {
                "label": pred.label,
                **{f"p_{label}": pred.probabilities[label] for label in LABELS},
                **signals,
                "lang": pred.lang,
                "model_version": pred.model_version,
                "actions": ",".join(decision.action_names),
                "rule": decision.rule,
                "policy_version": decision.policy_version,
                "decision": json.dumps(decision.to_dict(), separators=(",", ":")),
            }
        )
        if options.explain:
            scored["spans"] = json.dumps([s.to_dict() for s in pred.spans], separators=(",", ":"))
        out.append(scored)
    return out


# ----------------------------------------------------------------------------------------------- input


def input_format(path: Path) -> str:
    if path.is_dir():
        return "datasets"
    fmt = INPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ScoreError(
            f"{path}: unknown input format {path.suffix!r}; use .jsonl, .csv, .parquet or a directory "
            "written by datasets' save_to_disk"
        )
    return fmt


def fingerprint(path: Path) -> str:
    """Size, modification time and the first and last 64 KiB of each file (cheap, and changes with an edit)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file.relative_to(path) if path.is_dir() else file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        )
        with file.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            if stat.st_size > _FINGERPRINT_BYTES:
                fh.seek(max(_FINGERPRINT_BYTES, stat.st_size - _FINGERPRINT_BYTES))
                digest.update(fh.read())
    return digest.hexdigest()[:32]


class InputReader:
    """Rows of the input in order, as dicts (`{"__error__": reason}` for a row that cannot be parsed)."""

    def __init__(self, path: Path, options: ScoreOptions):
        self.path = path
        self.options = options
        if not path.exists():
            raise ScoreError(f"input {path} does not exist")
        self.format = input_format(path)
        self.total: int | None = None
        self._dataset = None
        columns = self._columns()
        if columns is not None:
            needed = [options.text_column, options.surface_column, options.country_column]
            missing = [c for c in needed if c and c not in columns]
            if missing:
                raise ScoreError(f"{path}: missing column(s) {missing}; the input has {sorted(columns)}")

    def _columns(self) -> list[str] | None:
        if self.format == "csv":
            with self.path.open(encoding="utf-8-sig", newline="") as fh:
                try:
                    return next(csv.reader(fh))
                except StopIteration:
                    raise ScoreError(f"{self.path}: file is empty (no header)") from None
                except csv.Error as exc:
                    raise ScoreError(f"{self.path}: cannot parse the header: {exc}") from None
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                meta = pq.ParquetFile(self.path)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise ScoreError(f"{self.path}: cannot read Parquet: {exc}") from None
            self.total = meta.metadata.num_rows
            return meta.schema_arrow.names
        if self.format == "datasets":
            from datasets import Dataset, load_from_disk

            try:
                ds = load_from_disk(str(self.path))
            except Exception as exc:  # FileNotFoundError, or a directory of something else
                raise ScoreError(f"{self.path}: not a dataset saved with save_to_disk ({exc})") from None
            if not isinstance(ds, Dataset):
                raise ScoreError(
                    f"{self.path} holds several splits ({', '.join(ds)}); pass one, e.g. {self.path / next(iter(ds))}"
                )
            self._dataset = ds
            self.total = len(ds)
            return list(ds.column_names)
        return None  # JSONL: checked on the first row

    def __iter__(self) -> Iterator[dict]:
        return self.read()

    def read(self, start: int = 0, offset: int = 0) -> Iterator[dict]:
        """The rows from row `start` to the end; for JSONL and CSV, `offset` is where row `start` begins (`plan`)."""
        if self.format == "jsonl":
            yield from self._jsonl(offset, check=start == 0)
        elif self.format == "csv":
            yield from self._csv(offset)
        elif self.format == "parquet":
            yield from self._parquet(start)
        else:
            ds = self._dataset if start == 0 else self._dataset.select(range(start, len(self._dataset)))
            for batch in ds.iter(batch_size=self.options.batch_size * 16):
                columns = list(batch)
                yield from (dict(zip(columns, values, strict=True)) for values in zip(*batch.values(), strict=True))

    def shard_rows(self, spec: ShardSpec) -> list[dict]:
        """The rows of one shard of `plan`, read on their own (a worker's share of the input)."""
        rows = list(islice(self.read(spec.start, spec.offset), spec.end - spec.start))
        if len(rows) != spec.end - spec.start:
            raise ScoreError(f"{self.path}: shard {spec.index} ends early; did the input change during the run?")
        return rows

    def plan(self, shard_size: int) -> list[ShardSpec]:
        """Every shard's row range, and for JSONL and CSV its byte offset, so that a worker can read one shard alone.

        Parquet and `datasets` record their row counts; a JSONL or CSV file takes one pass that splits it into rows
        the way `read` does (JSONL lines, CSV records) without parsing them, apart from JSONL's first row check."""
        if self.format in ("jsonl", "csv"):
            starts, total = [], 0
            for n, offset in enumerate(self._jsonl_offsets() if self.format == "jsonl" else self._csv_offsets()):
                if n % shard_size == 0:
                    starts.append((n, offset))
                total = n + 1
        else:
            total = self.total or 0
            starts = [(n, 0) for n in range(0, total, shard_size)]
        ends = [n for n, _ in starts[1:]] + [total]
        return [ShardSpec(i, n, end, offset) for i, ((n, offset), end) in enumerate(zip(starts, ends, strict=True))]

    def _check_first(self, row: dict) -> None:
        needed = [self.options.text_column, self.options.surface_column, self.options.country_column]
        missing = [c for c in needed if c and c not in row]
        if missing:
            raise ScoreError(f"{self.path}: the first row has no column(s) {missing}; it has {sorted(row)}")

    def _jsonl(self, offset: int = 0, check: bool = True) -> Iterator[dict]:
        first = check
        with self.path.open(encoding="utf-8") as fh:
            if offset:
                fh.seek(offset)  # a byte position at a line start: a valid cookie for a stateless decoder
            for line in fh:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield {"__error__": f"invalid JSON: {exc.msg}"}
                    continue
                if not isinstance(row, dict):
                    yield {"__error__": "a line must hold a JSON object"}
                    continue
                if first:
                    self._check_first(row)
                    first = False
                yield row

    def _jsonl_offsets(self) -> Iterator[int]:
        """Where each row (non-blank line) begins; lines split as `_jsonl` splits them (universal newlines)."""
        position, first = 0, True
        with self.path.open(encoding="utf-8", newline="") as fh:
            for line in fh:
                start = position
                position += len(line) if line.isascii() else len(line.encode("utf-8"))
                if not line.strip():
                    continue
                if first:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        row = None
                    if isinstance(row, dict):
                        self._check_first(row)
                        first = False
                yield start

    def _csv(self, offset: int = 0) -> Iterator[dict]:
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, strict=True))
            if not offset:
                yield from self._csv_rows(fh, header)
                return
        with self.path.open(encoding="utf-8", newline="") as fh:
            fh.seek(offset)
            yield from self._csv_rows(fh, header)

    @staticmethod
    def _csv_rows(lines, header: list[str]) -> Iterator[dict]:
        reader = csv.reader(lines, strict=True)
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # the csv module cannot resynchronise after e.g. an unclosed quote: the rest is one bad row
                yield {"__error__": f"cannot parse CSV: {exc}"}
                return
            if len(values) != len(header):
                yield {"__error__": f"expected {len(header)} fields, got {len(values)}"}
            else:
                yield dict(zip(header, values, strict=True))

    def _csv_offsets(self) -> Iterator[int]:
        """Where each record after the header begins: the csv module reads whole lines, one record at a time."""
        with self.path.open("rb") as raw:
            position = len(codecs.BOM_UTF8) if raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else 0
        with self.path.open(encoding="utf-8-sig", newline="") as fh:

            def counted() -> Iterator[str]:
                nonlocal position
                for line in fh:
                    position += len(line) if line.isascii() else len(line.encode("utf-8"))
                    yield line

            reader = csv.reader(counted(), strict=True)
            next(reader)  # the header
            while True:
                start = position
                try:
                    next(reader)
                except StopIteration:
                    return
                except csv.Error:
                    yield start  # one bad row, the last (as `_csv` reads it)
                    return
                yield start

    def _parquet(self, start: int) -> Iterator[dict]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        groups, skip = [], start
        for g in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(g).num_rows
            if not groups and skip >= rows:
                skip -= rows
            else:
                groups.append(g)
        if not groups:
            return
        for batch in parquet.iter_batches(batch_size=self.options.batch_size * 16, row_groups=groups):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            yield from batch.slice(skip).to_pylist()
            skip = 0


# ----------------------------------------------------------------------------------------------- output


def shard_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> int:
    """Write via a hidden temporary file in the same folder, fsync, rename; returns the size. Nothing half-written
    is ever left under the final name; the temporary file is removed on any failure (Ctrl-C included)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _write_rows(path: Path, rows: list[dict], fmt: str) -> None:
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
    elif fmt == "csv":
        columns = list(dict.fromkeys(k for row in rows for k in row))
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: json.dumps(v, ensure_ascii=False, default=_json_default) if isinstance(v, dict | list) else v
                        for k, v in row.items()
                    }
                )
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise ScoreError(_parquet_refusal(rows)) from None  # never arrow's message: it may quote a value
        pq.write_table(table, path)


def _parquet_refusal(rows: list[dict]) -> str:
    """Why Parquet cannot hold these rows, naming the column, not its values."""
    for column in dict.fromkeys(k for row in rows for k in row):
        kinds = sorted({type(row[column]).__name__ for row in rows if row.get(column) is not None})
        if len(kinds) > 1:
            return (
                f"cannot write Parquet: column {column!r} holds {' and '.join(kinds)} values in different rows; "
                "use --format jsonl, or give the column one type"
            )
    return "cannot write these rows as Parquet; use --format jsonl"


def _write_json(path: Path, value: Any) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n"))


def _owned(output: Path) -> list[Path]:
    """Files of ours in OUTPUT (what --overwrite removes; nothing else is touched)."""
    names = [MANIFEST_NAME, SUCCESS_NAME, REJECTS_NAME]
    found = [output / n for n in names if (output / n).exists()]
    found += [p for p in output.glob("part-*") if p.is_file()]
    found += [p for p in output.glob(".*.tmp") if p.is_file()]
    if (output / REJECTS_DIR).is_dir():
        found.append(output / REJECTS_DIR)
    return found


def _clear(output: Path) -> None:
    import shutil

    for p in _owned(output):
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _prepare_output(output: Path, identity: dict, overwrite: bool) -> dict:
    """The manifest to continue from (a fresh one when starting); refuses a conflicting earlier run."""
    fresh = {"format_version": MANIFEST_FORMAT, **identity, "shards": {}, "complete": False}
    if output.exists() and not output.is_dir():
        raise ScoreError(f"--out {output} is a file; OUTPUT is a directory of shards")
    if not output.exists():
        output.mkdir(parents=True)
        return fresh
    manifest_file = output / MANIFEST_NAME
    if not manifest_file.is_file():
        if any(output.iterdir()):
            if overwrite and _owned(output):
                _clear(output)
            if any(output.iterdir()):
                raise ScoreError(f"--out {output} is not empty and holds no {MANIFEST_NAME}; choose another folder")
        return fresh
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        if not overwrite:
            raise ScoreError(f"{manifest_file} is unreadable ({exc}); re-run with --overwrite to start again") from None
        _clear(output)
        return fresh
    changed = [k for k in identity if manifest.get(k) != identity[k]]
    if changed:
        if not overwrite:
            raise ScoreError(
                f"{output} holds a run with a different {', '.join(changed)}; its shards cannot be reused. "
                "Re-run with --overwrite to replace them, or choose another --out"
            )
        _clear(output)
        return fresh
    for p in output.glob(".*.tmp"):  # left by a killed run
        p.unlink()
    return manifest


def shard_intact(output: Path, entry: dict | None) -> bool:
    """Whether the files a manifest entry names are there with the recorded sizes."""
    if not entry:
        return False
    part = output / entry["file"]
    rejects = output / REJECTS_DIR / shard_name(int(entry["file"][5:10]), "jsonl")
    return (
        part.is_file()
        and part.stat().st_size == entry["bytes"]
        and (entry["rejected"] == 0 or (rejects.is_file() and rejects.stat().st_size == entry["rejects_bytes"]))
    )


# ----------------------------------------------------------------------------------------------- the run


def check_options(options: ScoreOptions) -> None:
    """Refuse options no engine can honour (before anything is read or written)."""
    from serve.policy import SURFACES

    if options.format not in OUTPUT_FORMATS:
        raise ScoreError(f"unknown output format {options.format!r} (use {', '.join(OUTPUT_FORMATS)})")
    if options.surface not in SURFACES:
        raise ScoreError(f"unknown surface {options.surface!r} (allowed: {', '.join(SURFACES)})")
    if options.shard_size < 1 or options.batch_size < 1 or options.max_chars < 1:
        raise ScoreError("--shard-size, --batch-size and --max-chars must be at least 1")


def run_identity(input: Path, reader: InputReader, model_version: str, policy_version: str, options) -> dict:
    """What an OUTPUT was written for; a run with another identity cannot reuse its shards. The engine is not part
    of it: both write the same files, so a run started by one can be finished by the other."""
    return {
        "input": {"path": str(input.resolve()), "format": reader.format, "fingerprint": fingerprint(input)},
        "model_version": model_version,
        "policy_version": policy_version,
        "options": options.output_identity(),
    }


def start_output(output: Path, identity: dict, overwrite: bool) -> dict:
    """The manifest to continue from; refuses a conflicting earlier run (see `_prepare_output`)."""
    manifest = _prepare_output(output, identity, overwrite)
    (output / SUCCESS_NAME).unlink(missing_ok=True)
    return manifest


def done_entry(output: Path, manifest: dict, index: int, start: int, end: int) -> dict | None:
    """The manifest entry of shard `index` when it is done for rows [start, end) and its files are intact."""
    entry = manifest["shards"].get(f"{index:05d}")
    if shard_intact(output, entry) and entry["start"] == start and entry["end"] == end:
        return entry
    return None


def commit_shard(output: Path, manifest: dict, index: int, entry: dict) -> None:
    """Record a written shard: the manifest, rewritten atomically, is the commit point."""
    manifest["shards"][f"{index:05d}"] = entry
    _write_json(output / MANIFEST_NAME, manifest)


def finish_output(output: Path, manifest: dict, summary: ScoreSummary) -> None:
    """rejects.jsonl from the shards' rejects, the manifest marked complete, then _SUCCESS."""
    # shards beyond the input's end (it cannot have shrunk with the same fingerprint, but be safe)
    for key in [k for k in manifest["shards"] if int(k) >= summary.shards]:
        del manifest["shards"][key]
    _assemble_rejects(output, manifest)
    manifest["complete"] = True
    manifest["summary"] = {
        k: v for k, v in summary.to_dict().items() if k in ("rows", "scored", "rejected", "shards", "reasons")
    }
    _write_json(output / MANIFEST_NAME, manifest)
    (output / SUCCESS_NAME).write_text("")


def score_file(
    input: str | Path,
    output: str | Path,
    *,
    model,
    policy=None,
    options: ScoreOptions = ScoreOptions(),
    overwrite: bool = False,
    progress: bool = False,
) -> ScoreSummary:
    """Score INPUT into the directory OUTPUT (see the module's docstring); resumes a run interrupted earlier.

    `model`: a RiskClassifier or an artifact path; `policy`: a Policy, a policy file, or None for the shipped one.
    Raises ScoreError for a usage problem (before anything is written, or for a shard Parquet cannot hold)."""
    from model.classifier import RiskClassifier
    from serve.policy import Policy, load_policy
    from serve.settings import SERVE_DIR

    input, output = Path(input), Path(output)
    check_options(options)
    reader = InputReader(input, options)
    classifier = model if isinstance(model, RiskClassifier) else RiskClassifier.load(model)
    if not isinstance(policy, Policy):
        policy = load_policy(policy or SERVE_DIR / "policy.yaml")
    policy.check_operating_points(set(classifier.operating_points))
    thresholds = {k: p.threshold for k, p in classifier.operating_points.items()}
    identity = run_identity(input, reader, classifier.version, policy.version_tag, options)
    manifest = start_output(output, identity, overwrite)
    summary = ScoreSummary(output=output)

    bar = progress_bar(reader.total) if progress else None
    try:
        for index, rows in enumerate(_shards(reader, options.shard_size)):
            start = index * options.shard_size
            summary.shards += 1
            summary.rows += len(rows)
            entry = done_entry(output, manifest, index, start, start + len(rows))
            if entry is not None:
                summary.shards_skipped += 1
            else:
                entry = write_shard(output, index, start, rows, classifier, policy, thresholds, options)
                commit_shard(output, manifest, index, entry)
            summary.add(entry)
            if bar is not None:
                bar[0].advance(bar[1], len(rows))
        finish_output(output, manifest, summary)
    finally:
        if bar is not None:
            bar[0].stop()
    return summary


def progress_bar(total: int | None):
    """A Rich progress bar of rows on stderr: (progress, task)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True)
    )
    progress.start()
    return progress, progress.add_task("rows", total=total)


def _shards(rows: Iterator[dict], size: int) -> Iterator[list[dict]]:
    shard: list[dict] = []
    for row in rows:
        shard.append(row)
        if len(shard) == size:
            yield shard
            shard = []
    if shard:
        yield shard


def write_shard(
    output: Path, index: int, start: int, rows: list[dict], classifier, policy, thresholds, options: ScoreOptions
) -> dict:
    """Check, score and write one shard (rows from input row `start` on) and its rejects; its manifest entry.

    Writes atomically, so running it twice for the same shard (a retried worker) is harmless."""
    good: list[dict] = []
    rejects: list[dict] = []
    reasons: dict[str, int] = {}
    for offset, row in enumerate(rows):
        reason = check_row(row, options)
        if reason is None:
            good.append(row)
            continue
        record = {"row": start + offset, "reason": reason}
        row_id = row.get(options.id_column)
        if row_id is not None:
            record["id"] = row_id
        rejects.append(record)
        kind = reason.split(" (")[0].split(":")[0]
        reasons[kind] = reasons.get(kind, 0) + 1
    scored: list[dict] = []
    for i in range(0, len(good), options.batch_size):
        scored.extend(score_batch(classifier, policy, thresholds, good[i : i + options.batch_size], options))
    name = shard_name(index, options.format)
    rejects_bytes = 0
    if rejects:
        (output / REJECTS_DIR).mkdir(exist_ok=True)
        rejects_bytes = _atomic_write(
            output / REJECTS_DIR / shard_name(index, "jsonl"), lambda tmp: _write_rows(tmp, rejects, "jsonl")
        )
    size = _atomic_write(output / name, lambda tmp: _write_rows(tmp, scored, options.format))
    return {
        "file": name,
        "start": start,
        "end": start + len(rows),
        "scored": len(scored),
        "rejected": len(rejects),
        "reasons": reasons,
        "bytes": size,
        "rejects_bytes": rejects_bytes,
    }


def _assemble_rejects(output: Path, manifest: dict) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            for key in sorted(manifest["shards"]):
                if manifest["shards"][key]["rejected"]:
                    out.write((output / REJECTS_DIR / shard_name(int(key), "jsonl")).read_bytes())

    _atomic_write(output / REJECTS_NAME, write)


def read_output(output: str | Path) -> list[dict]:
    """Every scored row of a finished OUTPUT, in input order (for tests and small outputs)."""
    output = Path(output)
    manifest = json.loads((output / MANIFEST_NAME).read_text())
    rows: list[dict] = []
    for key in sorted(manifest["shards"]):
        path = output / manifest["shards"][key]["file"]
        if path.suffix == ".jsonl":
            rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
        elif path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                rows.extend(csv.DictReader(fh))
        else:
            import pyarrow.parquet as pq

            rows.extend(pq.read_table(path).to_pylist())
    return rows
