"""Run scorers (model artifacts, later peers) on one labelled set and gather every figure the report shows.

A scorer only has to give an at_risk score per text (`Scorer`); one that also gives the five label
probabilities (a Sahay model) gets label rows, urgent / violating, a confusion matrix and explanations too.
Every model is scored on the same rows and the same bootstrap resamples, so their columns compare.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from data.taxonomy import LABELS, SIGNALS
from eval.dataset import EvalData, EvalInputError
from eval.metrics import (
    FIGURES,
    binary_figures,
    bootstrap,
    confusion,
    expected_alerts,
    point,
    pr_curve,
    reliability,
    targets,
)
from eval.scorers import FunctionScorer, ModelScorer, Scored, Scorer, score
from eval.slices import make_slices
from model.calibration import top_label_ece
from model.labels import SIGNAL_MASKS

SIGNAL_NAMES = tuple(SIGNALS)

__all__ = ["EvalData", "EvalInputError", "FunctionScorer", "ModelScorer", "Scored", "Scorer", "evaluate", "score"]


# -- figures -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One row group of the report: a label (one-vs-rest, argmax decides) or a signal (threshold decides)."""

    kind: str
    name: str
    truth: np.ndarray

    def scores(self, s: Scored) -> tuple[np.ndarray, np.ndarray] | None:
        """(score, prediction) of a scorer for this target, or None when the scorer cannot give it."""
        if self.kind == "signal":
            if self.name not in s.signals:
                return None
            values = s.signals[self.name]
            return values, values >= s.thresholds[self.name]
        if s.probs is None:
            return None
        i = LABELS.index(self.name)
        return s.probs[:, i], s.probs.argmax(axis=1) == i


def make_targets(masks: np.ndarray) -> list[Target]:
    signal_targets = [Target("signal", name, targets(masks, SIGNAL_MASKS[name])) for name in SIGNAL_NAMES]
    label_targets = [
        Target("label", name, targets(masks, np.arange(len(LABELS)) == i)) for i, name in enumerate(LABELS)
    ]
    return signal_targets + label_targets


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def target_figures(target: Target, scored: list[Scored], n_boot: int, seed: int) -> dict:
    """Figures of every scorer on one target, with paired bootstrap intervals."""
    keep = target.truth >= 0
    y = target.truth[keep]
    inputs = {s.name: pair for s in scored if (pair := target.scores(s)) is not None}

    def stat(weights: np.ndarray) -> dict[str, np.ndarray]:
        w = weights[:, keep]
        out = {}
        for name, (values, pred) in inputs.items():
            for fig, v in binary_figures(y, values[keep], pred[keep], w).items():
                out[f"{name}\0{fig}"] = v
        return out

    intervals = bootstrap(stat, len(target.truth), n_boot, seed) if inputs else {}
    models = {}
    for name, (values, pred) in inputs.items():
        points = point(y, values[keep], pred[keep])
        models[name] = {
            fig: {
                "value": _finite(points[fig]),
                "low": _finite(intervals.get(f"{name}\0{fig}", (math.nan,))[0]),
                "high": _finite(intervals.get(f"{name}\0{fig}", (math.nan, math.nan))[1]),
            }
            for fig in FIGURES
        }
        models[name]["fpr"] = _finite(points["fpr"])
    return {"n": int(keep.sum()), "positives": int((y == 1).sum()), "models": models}


def slice_figures(data: EvalData, scored: list[Scored], signal_targets: list[Target]) -> list[dict]:
    """Point figures of every signal in every slice (slices are small: no intervals, n shows the weight)."""
    rows = []
    for sl in make_slices(data.langs, data.surfaces, data.sources, data.tags, data.texts):
        row = {"kind": sl.kind, "value": sl.value, "n": sl.n, "signals": {}}
        for target in signal_targets:
            keep = sl.mask & (target.truth >= 0)
            y = target.truth[keep]
            entry = {"n": int(keep.sum()), "positives": int((y == 1).sum()), "models": {}}
            for s in scored:
                pair = target.scores(s)
                if pair is None or not keep.any():
                    continue
                figures = point(y, pair[0][keep], pair[1][keep])
                entry["models"][s.name] = {k: _finite(v) for k, v in figures.items()}
            row["signals"][target.name] = entry
        rows.append(row)
    return rows


def operating_point_rows(scored: Scored, truth: dict[str, np.ndarray], prevalence: float) -> list[dict]:
    """Each stored operating point measured on this set, with the alerts it would raise per 10,000 items."""
    rows = []
    for name, (signal, threshold) in sorted(scored.points.items()):
        if signal not in scored.signals:
            continue
        keep = truth[signal] >= 0
        y, values = truth[signal][keep], scored.signals[signal][keep]
        figures = point(y, values, values >= threshold)
        rows.append(
            {
                "point": name,
                "signal": signal,
                "threshold": float(threshold),
                "precision": _finite(figures["precision"]),
                "recall": _finite(figures["recall"]),
                "fpr": _finite(figures["fpr"]),
                "alerts_per_10k": _finite(expected_alerts(figures["recall"], figures["fpr"], prevalence)),
            }
        )
    return rows


def error_rows(data: EvalData, s: Scored, truth: np.ndarray, n_errors: int) -> dict[str, list[dict]]:
    """The most confident at_risk misses and false alarms, with explanation spans when the scorer has them."""
    values, threshold = s.signals["at_risk"], s.thresholds["at_risk"]
    missed = np.flatnonzero((truth == 1) & (values < threshold))
    false_alarm = np.flatnonzero((truth == 0) & (values >= threshold))
    chosen = {
        "false_negatives": missed[np.argsort(values[missed], kind="stable")][:n_errors],
        "false_positives": false_alarm[np.argsort(-values[false_alarm], kind="stable")][:n_errors],
    }
    every = [int(i) for rows in chosen.values() for i in rows]
    spans = dict(zip(every, s.explain([data.texts[i] for i in every]), strict=True)) if s.explain and every else {}
    return {
        kind: [
            {
                "index": int(i),
                "id": data.ids[i],
                "lang": data.langs[i],
                "surface": data.surfaces[i],
                "label_set": data.label_sets[i],
                "tags": data.tags[i],
                "at_risk": float(values[i]),
                "threshold": float(threshold),
                "spans": spans.get(int(i), []),
            }
            for i in rows
        ]
        for kind, rows in chosen.items()
    }


def evaluate(
    scorers: Sequence[Scorer],
    data: EvalData,
    prevalence: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
    n_errors: int = 20,
    bins: int = 10,
    on_step: Callable[[str], None] | None = None,
) -> dict:
    """Every figure of every scorer on `data`, as a JSON-ready dict (no texts: errors name rows by id/index)."""
    step = on_step or (lambda _message: None)
    scored = []
    for scorer in scorers:
        step(f"scoring {len(data)} texts with {scorer.name}")
        scored.append(score(scorer, data))
    all_targets = make_targets(data.masks)
    signal_targets = [t for t in all_targets if t.kind == "signal"]
    truth = {t.name: t.truth for t in signal_targets}
    result: dict = {
        "settings": {
            "data": data.description,
            "n": len(data),
            "prevalence": prevalence,
            "bootstrap": n_boot,
            "seed": seed,
            "errors": n_errors,
            "bins": bins,
        },
        "data": {
            "labels": dict(Counter("|".join(s) for s in data.label_sets).most_common()),
            "langs": dict(Counter(data.langs).most_common()),
        },
        "models": [
            {"name": s.name, **s.info, "thresholds": s.thresholds, "has_labels": s.probs is not None} for s in scored
        ],
    }
    step(f"bootstrapping {n_boot} resamples")
    result["signals"] = {t.name: target_figures(t, scored, n_boot, seed) for t in signal_targets}
    result["labels"] = {t.name: target_figures(t, scored, n_boot, seed) for t in all_targets if t.kind == "label"}
    result["operating_points"] = {s.name: operating_point_rows(s, truth, prevalence) for s in scored}
    result["confusion"] = {s.name: confusion(data.masks, s.probs) for s in scored if s.probs is not None}
    result["top_label_ece"] = {s.name: top_label_ece(s.probs, data.masks, bins) for s in scored if s.probs is not None}
    result["curves"], result["calibration"] = {}, {}
    for t in signal_targets:
        keep = t.truth >= 0
        have = [s for s in scored if t.name in s.signals]
        result["curves"][t.name] = {s.name: pr_curve(t.truth[keep], s.signals[t.name][keep]) for s in have}
        result["calibration"][t.name] = {
            s.name: reliability(t.truth[keep], s.signals[t.name][keep], bins) for s in have
        }
    step("slicing")
    result["slices"] = slice_figures(data, scored, signal_targets)
    step("explaining errors")
    result["errors"] = {s.name: error_rows(data, s, truth["at_risk"], n_errors) for s in scored}
    return result
