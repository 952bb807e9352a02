"""`sahay data build`: every source -> one deduplicated, leak-free, stratified DatasetDict on disk.

Steps: load sources (seed, platform exports, public folders) -> exact de-duplication across sources
(seed > exports > public, in that order of trust) -> near-duplicate removal and grouping (MinHash LSH) ->
group-aware stratified split -> model-input normalisation -> save, with a report of every drop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from data.dedup import UnionFind, near_duplicate_pairs
from data.loaders import PUBLIC_NAMES, DataFileError, LoadReport, LoadResult, load_export, load_public, load_seed
from data.loaders.common import record_row
from data.normalize import dedup_key, normalize
from data.schema import FEATURES, SPLITS, Record, label_key
from data.settings import DataSettings
from data.split import assign_splits

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """The built splits and what happened on the way."""

    dataset: DatasetDict
    reports: list[LoadReport]
    missing_sources: list[str] = field(default_factory=list)
    removed: Counter = field(default_factory=Counter)
    groups_merged: int = 0
    fingerprint: str = ""

    @property
    def bad_rows(self):
        return [b for r in self.reports for b in r.bad_rows]

    def to_dict(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "rows": {s: len(self.dataset[s]) for s in SPLITS},
            "missing_sources": self.missing_sources,
            "removed_across_sources": dict(self.removed),
            "near_duplicate_groups_merged": self.groups_merged,
            "sources": [r.to_dict() for r in self.reports],
        }


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    )


def load_sources(settings: DataSettings, progress: Progress) -> tuple[list[LoadResult], list[str]]:
    """Seed first, then exports, then public folders (that order is the order of trust)."""
    results, missing = [], []
    task = progress.add_task("loading sources", total=2 + len(settings.exports) + len(PUBLIC_NAMES) - 1)
    results.append(load_seed(settings.seed_dir))
    progress.advance(task)
    for path in settings.exports:
        results.append(load_export(path))
        progress.advance(task)
    for name in PUBLIC_NAMES:
        try:
            results.append(load_public(name, settings.datasets_dir))
        except FileNotFoundError:
            missing.append(name)
            log.warning("dataset folder %s not found in %s: skipped", name, settings.datasets_dir)
        progress.advance(task)
    return results, missing


def build(settings: DataSettings | None = None, progress: Progress | None = None) -> BuildResult:
    """Build the splits in memory (see `build_and_save` to write them)."""
    settings = settings or DataSettings()
    progress = progress or _progress()
    with progress:
        results, missing = load_sources(settings, progress)
        records: list[Record] = [r for res in results for r in res.records]
        removed: Counter = Counter()

        # exact duplicates across sources: the first (most trusted) occurrence stays
        task = progress.add_task("exact de-duplication", total=len(records))
        keys, kept, seen = [], [], {}
        for rec in records:
            key = dedup_key(rec.text)
            progress.advance(task)
            if not key:
                removed["no text left after normalisation"] += 1
                continue
            if key in seen:
                removed[f"exact duplicate of a {seen[key]} record"] += 1
                continue
            seen[key] = rec.source
            keys.append(key)
            kept.append(rec)
        records = kept

        # near duplicates: remove the very close ones, tie the rest into groups
        task = progress.add_task("near-duplicate hashing", total=len(records))
        pairs = near_duplicate_pairs(
            keys,
            settings.near_duplicate_threshold,
            settings.minhash_permutations,
            advance=lambda n: progress.advance(task, n),
        )
        drop = set()
        for i, j, sim in pairs:
            if sim >= settings.duplicate_threshold and i not in drop:
                drop.add(j)
        if drop:
            removed[f"near duplicate (Jaccard >= {settings.duplicate_threshold})"] = len(drop)

        uf = UnionFind(len(records))
        first_of_group: dict[str, int] = {}
        for i, rec in enumerate(records):
            if rec.group in first_of_group:
                uf.union(first_of_group[rec.group], i)
            else:
                first_of_group[rec.group] = i
        merged = 0
        for i, j, _ in pairs:
            if uf.find(i) != uf.find(j):
                merged += 1
                uf.union(i, j)
        survivors = [i for i in range(len(records)) if i not in drop]
        groups = [records[uf.find(i)].group for i in survivors]
        chosen = [records[i] for i in survivors]
        train_only = set(settings.train_only_sources)
        forced = [r.split or ("train" if r.source in train_only else None) for r in chosen]
        strata = [f"{r.lang}/{label_key(r.label_set)}" for r in chosen]
        splits = assign_splits(
            groups, strata, forced, settings.validation_fraction, settings.test_fraction, settings.split_seed
        )

        task = progress.add_task("normalising model input", total=len(chosen))
        rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
        for rec, group, split in zip(chosen, groups, splits, strict=True):
            row = record_row(rec, normalize(rec.text))
            row["group"], row["split"] = group, split
            rows[split].append(row)
            progress.advance(task)
    for split_rows in rows.values():
        split_rows.sort(key=lambda r: r["id"])
    dataset = DatasetDict({s: Dataset.from_list(rows[s], features=FEATURES) for s in SPLITS})
    digest = hashlib.sha256()
    for s in SPLITS:
        for row in rows[s]:
            digest.update(f"{s}\t{row['id']}\t{'|'.join(row['label_set'])}\n".encode())
    return BuildResult(dataset, [res.report for res in results], missing, removed, merged, digest.hexdigest()[:16])


def inputs_fingerprint(settings: DataSettings) -> str:
    """A hash of everything a build reads (seed, export and dataset files, split settings): equal hashes mean
    an existing build is current, so `sahay train` can tell a stale build from a fresh one."""
    digest = hashlib.sha256()
    knobs = settings.model_dump(exclude={"data_dir", "datasets_dir", "seed_dir", "exports"})
    digest.update(json.dumps(knobs, sort_keys=True, default=str).encode())
    folders = [Path(settings.datasets_dir) / name for name in PUBLIC_NAMES]
    files = sorted(Path(settings.seed_dir).glob("*.jsonl")) + [Path(p) for p in settings.exports]
    files += sorted(f for folder in folders if folder.is_dir() for f in folder.iterdir() if f.is_file())
    for file in files:
        digest.update(f"{file.name}\t".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest() if file.is_file() else b"missing")
    return digest.hexdigest()[:16]


def recorded_settings(data_dir: Path) -> DataSettings | None:
    """The settings an existing build in `data_dir` was made with (None when there is no build)."""
    report = Path(data_dir) / "build_report.json"
    if not report.is_file() or not (Path(data_dir) / "dataset_dict.json").is_file():
        return None
    stored = json.loads(report.read_text()).get("settings")
    return DataSettings(**{**stored, "data_dir": data_dir}) if stored else None


def is_current(data_dir: Path) -> bool:
    """Whether `data_dir` holds a build whose inputs (as recorded with it) are unchanged since."""
    settings = recorded_settings(data_dir)
    if settings is None:
        return False
    report = json.loads((Path(data_dir) / "build_report.json").read_text())
    return report.get("inputs_fingerprint") == inputs_fingerprint(settings)


def build_and_save(settings: DataSettings | None = None, progress: Progress | None = None) -> BuildResult:
    """Build and write `data_dir`: the DatasetDict, build_report.json and rejects.jsonl.

    Written to a new folder that then takes the old one's place: datasets memory-maps its files, so a training
    run that loaded the old splits would otherwise read the new files' bytes under the old row layout."""
    settings = settings or DataSettings()
    result = build(settings, progress)
    out = Path(settings.data_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        result.dataset.save_to_disk(str(staging))
        report = {
            **result.to_dict(),
            "inputs_fingerprint": inputs_fingerprint(settings),
            "settings": settings.model_dump(mode="json"),
        }
        (staging / "build_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        with (staging / "rejects.jsonl").open("w", encoding="utf-8") as fh:
            for bad in result.bad_rows:
                line = {"file": bad.file, "line": bad.line, "reason": bad.reason}
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        _replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _replace_dir(new: Path, target: Path) -> None:
    """Put `new` at `target`; the old folder is renamed away first and deleted (open files of it stay readable)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "BuildResult",
    "DataFileError",
    "build",
    "build_and_save",
    "inputs_fingerprint",
    "is_current",
    "recorded_settings",
]
