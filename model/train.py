"""`sahay train`: data splits -> a fitted, calibrated, documented model artifact directory.

The artifact holds the backend (weights, tokenizer), classifier.json (labels, temperature, operating points,
version), metrics.json (validation and held-out test figures per language), provenance.json and MODEL_CARD.md.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from data.settings import PUBLIC_SOURCES
from model.card import write_model_card
from model.classifier import RiskClassifier
from model.config import TrainConfig
from model.labels import label_masks
from model.metrics import evaluate

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    path: Path
    classifier: RiskClassifier
    metrics: dict
    seconds: float


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def load_splits(data_dir: Path) -> DatasetDict:
    """The built splits, (re)built first when absent or stale (inputs changed since the build), so a model is
    never trained on an old copy of the seed corpus or the datasets."""
    from data.build import build_and_save, is_current, recorded_settings
    from data.settings import DataSettings

    if not is_current(data_dir):
        log.warning("data in %s is missing or older than its inputs: building it first", data_dir)
        build_and_save(recorded_settings(data_dir) or DataSettings(data_dir=data_dir))
    return load_from_disk(str(data_dir))


def select_training_rows(train: Dataset, max_public_rows: int | None, seed: int) -> Dataset:
    """All seed and export rows, plus at most `max_public_rows` drawn uniformly (seeded) from the public sets, so
    each source keeps its share, the hand-labelled data is not drowned and training stays within budget."""
    sources = np.array(train["source"])
    public = np.isin(sources, PUBLIC_SOURCES)
    keep = np.flatnonzero(~public)
    pub_idx = np.flatnonzero(public)
    if max_public_rows is None or len(pub_idx) <= max_public_rows:
        return train.select(np.sort(np.concatenate([keep, pub_idx])))
    chosen = np.random.default_rng(seed).choice(pub_idx, size=max_public_rows, replace=False)
    return train.select(np.sort(np.concatenate([keep, chosen])))


def make_classifier(config: TrainConfig) -> RiskClassifier:
    from model.backends.e5 import E5Backend
    from model.backends.tfidf import TfidfBackend

    if config.kind == "tfidf":
        return RiskClassifier(TfidfBackend(config.tfidf))
    if config.kind == "ensemble":
        from model.backends.ensemble import EnsembleBackend

        return RiskClassifier(EnsembleBackend(config.ensemble, E5Backend(config.e5), TfidfBackend(config.tfidf)))
    return RiskClassifier(E5Backend(config.e5))


def split_metrics(clf: RiskClassifier, split: Dataset) -> dict:
    probs = clf.predict_proba(split["text"])
    thresholds = {s: clf.threshold(f"{s}.balanced") for s in ("at_risk", "urgent", "violating")}
    return evaluate(probs, label_masks(split["label_set"]), split["lang"], split["tags"], thresholds)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Fit, calibrate, evaluate and save; returns where the artifact is."""
    start = time.time()
    splits = load_splits(config.data_dir)
    rows = select_training_rows(splits["train"], config.max_public_rows, config.seed)
    validation = splits["validation"]
    clf = make_classifier(config)
    progress = progress or progress_bar()
    with progress:
        clf.fit(
            rows["text"], rows["label_set"], eval_set=(validation["text"], validation["label_set"]), progress=progress
        )
    metrics = {
        "validation": split_metrics(clf, validation),
        "test": split_metrics(clf, splits["test"]),
        "operating_points": {k: v.to_dict() for k, v in clf.operating_points.items()},
        "temperature": clf.temperature,
        "training_log": clf.fit_log,
    }
    out = Path(config.out_dir)
    clf.save(out)
    seconds = time.time() - start
    build_report = Path(config.data_dir) / "build_report.json"
    provenance = {
        "data_fingerprint": json.loads(build_report.read_text())["fingerprint"] if build_report.is_file() else None,
        "training_rows_per_source": dict(sorted(Counter(rows["source"]).items())),
        "validation_rows": len(validation),
        "test_rows": len(splits["test"]),
        "config": json.loads(config.model_dump_json()),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "trained_seconds": round(seconds, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    write_model_card(out, clf, metrics, provenance)
    return TrainResult(out, clf, metrics, seconds)
