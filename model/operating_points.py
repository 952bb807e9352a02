"""Named thresholds on the derived signals, chosen on validation and stored in the artifact.

`high_recall` is the highest threshold whose validation recall still meets the target (support is shown to
almost everyone at risk, at the cost of more false alarms); `balanced` maximises F1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from sklearn.metrics import precision_recall_curve

from model.labels import signal_scores, signal_targets

POINTS: dict[str, tuple[str, str, float | None]] = {
    "at_risk.high_recall": ("at_risk", "recall", 0.95),
    "at_risk.balanced": ("at_risk", "f1", None),
    "urgent.high_recall": ("urgent", "recall", 0.90),
    "urgent.balanced": ("urgent", "f1", None),
    "violating.high_recall": ("violating", "recall", 0.90),
    "violating.balanced": ("violating", "f1", None),
}
"""name -> (signal, criterion, recall target)."""


@dataclass(frozen=True)
class OperatingPoint:
    signal: str
    threshold: float
    precision: float
    recall: float
    f1: float
    criterion: str
    target_recall: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def choose_threshold(scores: np.ndarray, truth: np.ndarray, criterion: str, target: float | None) -> tuple[float, ...]:
    """(threshold, precision, recall, f1) on decided rows for one criterion."""
    keep = truth >= 0
    y, s = truth[keep], scores[keep]
    if y.sum() == 0 or y.sum() == len(y):
        return 0.5, float("nan"), float("nan"), float("nan")
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    if criterion == "recall":
        ok = np.flatnonzero(recall >= target)
        i = ok[-1]  # thresholds ascend: the last that still meets the target is the highest
    else:
        i = int(np.argmax(f1))
    return float(thresholds[i]), float(precision[i]), float(recall[i]), float(f1[i])


def choose_operating_points(probs: np.ndarray, masks: np.ndarray) -> dict[str, OperatingPoint]:
    """Every point in POINTS, from calibrated validation probabilities and label masks."""
    scores = signal_scores(probs)
    points = {}
    for name, (signal, criterion, target) in POINTS.items():
        threshold, p, r, f = choose_threshold(scores[signal], signal_targets(masks, signal), criterion, target)
        points[name] = OperatingPoint(signal, threshold, p, r, f, criterion, target)
    for name, point in points.items():
        # When the max-F1 point already passes the recall target, the "highest threshold that meets it" lies
        # above it; a high-recall point must never be less sensitive than the balanced one, so it takes its place.
        balanced = points.get(f"{point.signal}.balanced")
        if point.criterion == "recall" and balanced is not None and balanced.threshold < point.threshold:
            points[name] = replace(balanced, criterion="recall", target_recall=point.target_recall)
    return points
