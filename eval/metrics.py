"""Binary quality figures with bootstrap intervals, computed on resample weights so 1000 resamples stay cheap.

A bootstrap resample is a row of counts (how often each item was drawn), so every figure here takes a
(resamples, n) weight matrix and returns one value per resample: the point estimate is the all-ones row.
Sorting by score happens once per figure, not once per resample, and the same resamples serve every model,
so intervals of two models on one data set are paired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from sklearn.metrics import precision_recall_curve

from data.taxonomy import LABELS
from model.calibration import expected_calibration_error

FIGURES = ("precision", "recall", "f1", "pr_auc", "roc_auc")
"""The figures reported with an interval for every label and signal."""


def targets(masks: np.ndarray, members: np.ndarray) -> np.ndarray:
    """1 / 0 where a label set lies wholly inside / outside `members` (bool over LABELS), -1 where it straddles."""
    inside = masks[:, members].any(axis=1)
    outside = masks[:, ~members].any(axis=1)
    return np.where(inside & ~outside, 1, np.where(outside & ~inside, 0, -1))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    out = np.full(np.broadcast(num, den).shape, np.nan, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def threshold_figures(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and false-positive rate of boolean predictions, one value per weight row.

    NaN where a figure is undefined (recall of a set without positives, precision with nothing flagged), so a
    slice of figurative texts shows no recall rather than a misleading 0; F1 is 2TP / (2TP + FP + FN).
    """
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    tp = weights @ (y & pred)
    fp = weights @ (~y & pred)
    fn = weights @ (y & ~pred)
    tn = weights @ (~y & ~pred)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, fp + tn),
    }


def ranking_figures(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """PR-AUC (average precision, as sklearn computes it) and ROC-AUC, one value per weight row.

    NaN where a weight row has no positive or no negative: the figure is undefined there.
    """
    order = np.argsort(-np.asarray(score, float), kind="mergesort")
    s, yy, w = np.asarray(score, float)[order], np.asarray(y, float)[order], weights[:, order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each group of tied scores
    tp = np.cumsum(w * yy, axis=1)[:, ends]
    fp = np.cumsum(w * (1 - yy), axis=1)[:, ends]
    pos, neg = tp[:, -1:], fp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / pos
        precision = np.nan_to_num(_ratio(tp, tp + fp))  # 0/0 only before any weight, where the recall step is 0
        step = np.diff(np.concatenate([np.zeros_like(pos), recall], axis=1), axis=1)
        pr_auc = (step * precision).sum(axis=1)
        tpr = np.concatenate([np.zeros_like(pos), recall], axis=1)
        fpr = np.concatenate([np.zeros_like(neg), fp / neg], axis=1)
        roc_auc = ((fpr[:, 1:] - fpr[:, :-1]) * (tpr[:, 1:] + tpr[:, :-1]) / 2).sum(axis=1)
    undefined = (pos[:, 0] == 0) | (neg[:, 0] == 0)
    return {"pr_auc": np.where(undefined, np.nan, pr_auc), "roc_auc": np.where(undefined, np.nan, roc_auc)}


def binary_figures(y: np.ndarray, score: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """All of FIGURES (and fpr) for one target, one value per weight row; `y` holds only 0 and 1."""
    return threshold_figures(y, pred, weights) | ranking_figures(y, score, weights)


def point(y: np.ndarray, score: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """binary_figures on the data as it is (weights all one)."""
    return {k: float(v[0]) for k, v in binary_figures(y, score, pred, np.ones((1, len(y)))).items()}


def bootstrap_weights(n: int, n_boot: int, seed: int, max_cells: int = 4_000_000) -> Iterator[np.ndarray]:
    """Resample counts in chunks of (resamples, n) small enough for memory; the same seed gives the same draws."""
    rng = np.random.default_rng(seed)
    chunk = max(1, max_cells // max(n, 1))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(float)
        done += size


def bootstrap(
    stat: Callable[[np.ndarray], dict[str, np.ndarray]], n: int, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile interval of every figure `stat` returns for a (resamples, n) weight matrix.

    NaN resamples (a figure undefined on that draw) are ignored; a figure undefined on every draw gets NaN.
    """
    if n_boot <= 0 or n == 0:
        return {}
    parts: dict[str, list[np.ndarray]] = {}
    for weights in bootstrap_weights(n, n_boot, seed):
        for key, values in stat(weights).items():
            parts.setdefault(key, []).append(values)
    tail = 100 * (1 - level) / 2
    out = {}
    for key, chunks in parts.items():
        values = np.concatenate(chunks)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            out[key] = (float("nan"), float("nan"))
        else:
            low, high = np.percentile(values, [tail, 100 - tail])
            out[key] = (float(low), float(high))
    return out


def expected_alerts(recall: float, fpr: float, prevalence: float, per: int = 10_000) -> float:
    """Alerts among `per` items at a given prevalence: true alerts (prevalence * recall) plus false ones."""
    return per * (prevalence * recall + (1 - prevalence) * fpr)


def reliability(y: np.ndarray, score: np.ndarray, bins: int = 10) -> dict:
    """Equal-width bins of predicted probability with the observed rate in each, and the ECE over them."""
    y, score = np.asarray(y, float), np.asarray(score, float)
    which = np.clip(np.digitize(score, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            rows.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "n": int(sel.sum()),
                    "mean_score": float(score[sel].mean()),
                    "observed": float(y[sel].mean()),
                }
            )
    return {"ece": expected_calibration_error(score, y, bins), "bins": rows}


def pr_curve(y: np.ndarray, score: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    """Precision-recall curve, thinned to at most `max_points` points for plotting (the ends kept)."""
    if len(y) == 0 or not (np.any(y == 1) and np.any(y == 0)):
        return {"precision": [], "recall": []}
    precision, recall, _ = precision_recall_curve(y, score)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(max_points, len(precision))).round().astype(int))
    return {
        "precision": [round(float(p), 4) for p in precision[keep]],
        "recall": [round(float(r), 4) for r in recall[keep]],
    }


def confusion(masks: np.ndarray, probs: np.ndarray) -> list[list[int]]:
    """Counts[true][predicted] in LABELS order, on rows with one fine label (coarse sets have no single truth)."""
    single = masks.sum(axis=1) == 1
    matrix = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(matrix, (masks[single].argmax(axis=1), probs[single].argmax(axis=1)), 1)
    return matrix.tolist()
