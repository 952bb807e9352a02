"""`sahay train`: data splits -> a fitted, calibrated, documented model artifact directory.

The artifact holds the backend (weights, tokenizer), classifier.json (labels, temperature, operating points,
version), metrics.json (validation and held-out test figures per language), provenance.json and MODEL_CARD.md.
With distillation on, the configured model is the teacher and a smaller student learns from it; whichever is
the default (the student when it is within `distill.max_gap` of the teacher) goes to `out_dir`, the other
next to it. The serving model is then switched to int8 when that costs at most `int8_max_drop`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from data.normalize import normalize
from data.settings import PUBLIC_SOURCES
from data.taxonomy import LABELS
from data.transliterate import has_devanagari, to_latin
from eval.perturb import leetspeak, typos
from model.backends import e5_member
from model.card import write_model_card
from model.classifier import RiskClassifier
from model.config import TrainConfig
from model.labels import label_masks
from model.metrics import HARD_NEGATIVE_TAGS, evaluate

log = logging.getLogger(__name__)


LANGS = ("en", "hi", "hi-Latn")


@dataclass
class TrainResult:
    path: Path
    classifier: RiskClassifier
    metrics: dict
    seconds: float
    other_path: Path | None = None
    """With distillation: where the model that is not the default was saved."""


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


def with_transliterations(rows: Dataset) -> Dataset:
    """Add a romanised copy of each Devanagari text (as hi-Latn): Hinglish writers say the same things in
    Latin letters, and the hand-written Hinglish rows alone are few."""
    picked = [
        i
        for i, (lang, text) in enumerate(zip(rows["lang"], rows["text"], strict=True))
        if lang == "hi" and has_devanagari(text)
    ]
    if not picked:
        return rows
    copies = rows.select(picked).to_dict()
    copies |= {
        "id": [f"{i}~latn" for i in copies["id"]],
        "text": [to_latin(t) for t in copies["text"]],
        "lang": ["hi-Latn"] * len(picked),
        "source": [f"{src}+translit" for src in copies["source"]],
    }
    if "text_norm" in copies:
        copies["text_norm"] = [normalize(t) for t in copies["text"]]
    copies = Dataset.from_dict(copies, features=rows.features)
    return concatenate_datasets([rows, copies])


def split_public_holdout(train: Dataset, fraction: float, max_rows: int = 1000) -> tuple[Dataset, Dataset]:
    """Set aside a slice of the public sets' groups that no model trains on: the one check on real posts.

    Group-aware (a near-duplicate group is in or out as a whole) and stable (a hash of the group id), so every
    model, whatever its public-row cap, is measured on the same unseen texts.
    """
    sources = np.array(train["source"])
    public = np.isin(sources, PUBLIC_SOURCES)
    if fraction <= 0 or not public.any():
        return train, train.select([])
    digest = [int(hashlib.sha256(g.encode()).hexdigest()[:8], 16) / 2**32 for g in train["group"]]
    held = public & (np.array(digest) < fraction)
    held_idx = np.flatnonzero(held)
    if len(held_idx) > max_rows:  # still excluded from training, only fewer are scored
        held_idx = np.sort(np.random.default_rng(0).choice(held_idx, size=max_rows, replace=False))
    return train.select(np.flatnonzero(~held)), train.select(held_idx)


def with_obfuscations(rows: Dataset, share: float, seed: int) -> Dataset:
    """Respell a seeded `share` of the Latin-script texts in leetspeak or with typos (eval/perturb.py), in place:
    people respell risk words to slip past filters, and the normaliser undoes only the spellings it knows."""
    if share <= 0:
        return rows
    rng = random.Random(seed)
    texts = list(rows["text"])
    for i, lang in enumerate(rows["lang"]):
        if lang in ("en", "hi-Latn") and rng.random() < share:
            texts[i] = rng.choice((leetspeak, typos))(texts[i], rng)
    out = rows.remove_columns("text").add_column("text", texts)
    if "text_norm" in out.column_names:
        out = out.remove_columns("text_norm").add_column("text_norm", [normalize(t) for t in texts])
    return out.select_columns(rows.column_names).cast(rows.features)


def training_rows(train: Dataset, config: TrainConfig) -> Dataset:
    rows = select_training_rows(train, config.max_public_rows, config.seed)
    rows = with_transliterations(rows) if config.augment.transliterate else rows
    return with_obfuscations(rows, config.augment.obfuscate, config.seed)


def public_holdout_metrics(clf: RiskClassifier, holdout: Dataset) -> dict | None:
    """Signals on real public posts per source (their coarse label sets decide at_risk for most rows)."""
    if len(holdout) == 0:
        return None
    probs = clf.predict_proba(holdout["text"])
    thresholds = {s: clf.threshold(f"{s}.balanced") for s in ("at_risk", "urgent", "violating")}
    per_source = evaluate(probs, label_masks(holdout["label_set"]), holdout["source"], holdout["tags"], thresholds)
    return {source: {"n": b["n"], "at_risk": b["signals"]["at_risk"]} for source, b in per_source.items()}


def unlabelled_rows(pool: Dataset, rows: Dataset, n: int, seed: int) -> Dataset:
    """Up to `n` public texts not among the training rows, with the set of all labels (= no label), for the
    student to learn from its teacher alone."""
    if n <= 0:
        return pool.select([])
    used = set(rows["id"])
    candidates = [
        i
        for i, (src, rid) in enumerate(zip(pool["source"], pool["id"], strict=True))
        if src in PUBLIC_SOURCES and rid not in used
    ]
    if len(candidates) > n:
        candidates = sorted(np.random.default_rng(seed).choice(candidates, size=n, replace=False).tolist())
    picked = pool.select(candidates).to_dict()
    picked["label_set"] = [list(LABELS)] * len(candidates)
    picked["label"] = [None] * len(candidates)
    return Dataset.from_dict(picked, features=pool.features)


def sample_weights(rows: Dataset, hard_negative_weight: float) -> np.ndarray | None:
    """More weight on not-at-risk texts that look risky (figurative, news, grief, recovery, negation)."""
    if hard_negative_weight == 1.0:
        return None
    at_risk = {"ideation", "intent"}
    hard = [
        bool(set(tags) & set(HARD_NEGATIVE_TAGS)) and not (set(labels) & at_risk)
        for tags, labels in zip(rows["tags"], rows["label_set"], strict=True)
    ]
    return np.where(hard, hard_negative_weight, 1.0)


def make_classifier(config: TrainConfig) -> RiskClassifier:
    from model.backends.e5 import E5Backend
    from model.backends.tfidf import TfidfBackend

    if config.kind == "tfidf":
        backend = TfidfBackend(config.tfidf)
    elif config.kind == "ensemble":
        from model.backends.ensemble import EnsembleBackend

        backend = EnsembleBackend(config.ensemble, E5Backend(config.e5), TfidfBackend(config.tfidf))
    else:
        backend = E5Backend(config.e5)
    return RiskClassifier(backend, read_romanised=config.augment.read_romanised)


def split_metrics(clf: RiskClassifier, split: Dataset) -> dict:
    probs = clf.predict_proba(split["text"])
    thresholds = {s: clf.threshold(f"{s}.balanced") for s in ("at_risk", "urgent", "violating")}
    return evaluate(probs, label_masks(split["label_set"]), split["lang"], split["tags"], thresholds)


def headline(block: dict) -> dict[str, float]:
    """The figures the default-model choices compare: macro-F1 and at_risk F1 in each language."""
    out = {}
    for lang in LANGS:
        if lang in block:
            out[f"{lang}.macro_f1"] = block[lang]["labels"].get("macro_f1", 0.0)
            out[f"{lang}.at_risk_f1"] = block[lang]["signals"]["at_risk"]["f1"]
    return out


def largest_drop(reference: dict, candidate: dict) -> float:
    ref, cand = headline(reference), headline(candidate)
    return max((ref[k] - cand.get(k, 0.0) for k in ref), default=0.0)


def pooled_drop(reference: dict, candidate: dict) -> float:
    """The larger drop of macro-F1 and at_risk F1 over all languages together."""
    ref, cand = reference["overall"], candidate["overall"]
    return max(
        ref["labels"].get("macro_f1", 0.0) - cand["labels"].get("macro_f1", 0.0),
        ref["signals"]["at_risk"]["f1"] - cand["signals"]["at_risk"]["f1"],
    )


INT8_LANGUAGE_SLACK = 2.0
"""A language's own figures may drop by this many times `int8_max_drop`: with about 300 validation texts per
language, re-chosen thresholds alone move them by about 0.01 (README "int8")."""


def try_int8(clf: RiskClassifier, validation: Dataset, max_drop: float | None) -> dict | None:
    """Switch the e5 encoder to int8 (recalibrated on validation) when pooled validation macro-F1 and at_risk F1
    drop by at most `max_drop` and no language's by more than INT8_LANGUAGE_SLACK times that; the validation texts
    also choose which layers stay fp32 (`E5Config.int8_fp32_layers`)."""
    member = e5_member(clf.backend)
    if member is None or max_drop is None:
        return None
    fp32 = (split_metrics(clf, validation), clf.temperature, dict(clf.operating_points), clf.romanised_weight)
    member.quantize(validation["text_norm"])
    clf.calibrate(validation["text"], validation["label_set"])
    int8 = split_metrics(clf, validation)
    pooled, per_language = pooled_drop(fp32[0], int8), largest_drop(fp32[0], int8)
    adopted = pooled <= max_drop and per_language <= INT8_LANGUAGE_SLACK * max_drop
    fp32_nodes = member.config.int8_fp32_nodes
    if not adopted:
        member.dequantize()
        clf.temperature, clf.operating_points, clf.romanised_weight = fp32[1:]
    return {
        "adopted": adopted,
        "pooled_validation_drop": round(pooled, 4),
        "largest_language_drop": round(per_language, 4),
        "max_drop": max_drop,
        "max_language_drop": INT8_LANGUAGE_SLACK * max_drop,
        "fp32_nodes": fp32_nodes,
        "fp32": headline(fp32[0]),
        "int8": headline(int8),
    }


def fit_one(
    config: TrainConfig, rows: Dataset, validation: Dataset, progress: Progress, teacher=None
) -> RiskClassifier:
    clf = make_classifier(config)
    if teacher is not None and config.distill.init == "teacher":
        e5_member(clf.backend).start_from(e5_member(teacher.backend), config.distill.layers)
    clf.fit(
        rows["text"],
        rows["label_set"],
        eval_set=(validation["text"], validation["label_set"]),
        progress=progress,
        sample_weight=sample_weights(rows, config.hard_negative_weight),
        teacher=teacher,
    )
    return clf


def student_config(config: TrainConfig) -> TrainConfig:
    d = config.distill
    update = {"num_layers": d.student_layers, "distill_alpha": d.alpha, "distill_temperature": d.temperature}
    for key in ("epochs", "patience"):  # the student's own, else the teacher's
        if getattr(d, key) is not None:
            update[key] = getattr(d, key)
    e5 = config.e5.model_copy(update=update)
    return config.model_copy(update={"e5": e5})


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def save_artifact(
    out: Path,
    clf: RiskClassifier,
    metrics: dict,
    config: TrainConfig,
    rows: Dataset,
    splits: DatasetDict,
    seconds: float,
) -> None:
    clf.save(out)
    build_report = Path(config.data_dir) / "build_report.json"
    provenance = {
        "data_fingerprint": json.loads(build_report.read_text())["fingerprint"] if build_report.is_file() else None,
        "training_rows_per_source": dict(sorted(Counter(rows["source"]).items())),
        "validation_rows": len(splits["validation"]),
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


def model_metrics(clf: RiskClassifier, splits: DatasetDict) -> dict:
    return {
        "validation": split_metrics(clf, splits["validation"]),
        "test": split_metrics(clf, splits["test"]),
        "public_holdout": public_holdout_metrics(clf, splits["public_holdout"]),
        "operating_points": {k: v.to_dict() for k, v in clf.operating_points.items()},
        "temperature": clf.temperature,
        "romanised_weight": clf.romanised_weight,
        "training_log": clf.fit_log,
    }


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Fit, calibrate, evaluate and save; returns where the default artifact is."""
    start = time.time()
    splits = load_splits(config.data_dir)
    train_pool, splits["public_holdout"] = split_public_holdout(splits["train"], config.public_holdout_fraction)
    rows = training_rows(train_pool, config)
    validation = splits["validation"]
    distill = config.distill.enabled and config.kind != "tfidf"
    progress = progress or progress_bar()
    with progress:
        clf = fit_one(config, rows, validation, progress)
        if distill:
            teacher, teacher_seconds = clf, time.time() - start
            extra = unlabelled_rows(train_pool, rows, config.distill.unlabelled_rows, config.seed)
            student_rows = concatenate_datasets([rows, extra]) if len(extra) else rows
            student = fit_one(student_config(config), student_rows, validation, progress, teacher=teacher)
    out = Path(config.out_dir)
    if not distill:
        int8 = try_int8(clf, validation, config.int8_max_drop)
        metrics = {**model_metrics(clf, splits), "int8": int8}
        seconds = time.time() - start
        save_artifact(out, clf, metrics, config, rows, splits, seconds)
        return TrainResult(out, clf, metrics, seconds)

    student_seconds = time.time() - start - teacher_seconds
    figures = {"teacher": model_metrics(teacher, splits), "student": model_metrics(student, splits)}
    report = distillation_report(figures, config, teacher_seconds, student_seconds)
    chosen, other = (student, teacher) if report["student_is_default"] else (teacher, student)
    chosen_name, other_name = ("student", "teacher") if chosen is student else ("teacher", "student")
    configs = {"teacher": config, "student": student_config(config)}
    trained_on = {"teacher": rows, "student": student_rows}
    int8 = try_int8(chosen, validation, config.int8_max_drop)
    chosen_metrics = (
        {**model_metrics(chosen, splits), "int8": int8} if int8 and int8["adopted"] else figures[chosen_name]
    )
    chosen_metrics |= {"int8": int8, "distillation": report}
    other_out = out.with_name(f"{out.name}-{other_name}")
    seconds = time.time() - start
    save_artifact(
        other_out,
        other,
        {**figures[other_name], "distillation": report},
        configs[other_name],
        trained_on[other_name],
        splits,
        seconds,
    )
    save_artifact(out, chosen, chosen_metrics, configs[chosen_name], trained_on[chosen_name], splits, seconds)
    return TrainResult(out, chosen, chosen_metrics, seconds, other_out)


def distillation_report(figures: dict, config: TrainConfig, teacher_seconds: float, student_seconds: float) -> dict:
    """Teacher and student side by side (validation decides, test and the public hold-out are reported)."""
    table = {
        name: {
            "validation": headline(m["validation"]),
            "test": headline(m["test"]),
            "public_holdout_at_risk_f1": (m["public_holdout"] or {}).get("overall", {}).get("at_risk", {}).get("f1"),
        }
        for name, m in figures.items()
    }
    gap = largest_drop(figures["teacher"]["validation"], figures["student"]["validation"])
    return {
        "teacher_layers": config.e5.num_layers,
        "student_layers": config.distill.student_layers,
        "alpha": config.distill.alpha,
        "temperature": config.distill.temperature,
        "max_gap": config.distill.max_gap,
        "largest_validation_gap": round(gap, 4),
        "student_is_default": gap <= config.distill.max_gap,
        "teacher_seconds": round(teacher_seconds, 1),
        "student_seconds": round(student_seconds, 1),
        "figures": table,
    }
