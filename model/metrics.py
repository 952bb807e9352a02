"""Quality figures a model is judged by, per language: label F1, signal F1 and false alarms on hard negatives.

Rows whose label set does not decide a figure are left out of it: a label's F1 uses single-label rows, a
signal's uses rows whose set lies wholly inside or outside the signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from data.taxonomy import LABELS
from model.labels import signal_scores, signal_targets

HARD_NEGATIVE_TAGS = ("figurative", "news", "grief", "recovery", "negation")


def label_metrics(probs: np.ndarray, masks: np.ndarray) -> dict:
    """Per-label precision / recall / F1 and macro-F1 on rows with one fine label."""
    single = masks.sum(axis=1) == 1
    if not single.any():
        return {"n": 0}
    y_true, y_pred = masks[single].argmax(axis=1), probs[single].argmax(axis=1)
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=range(len(LABELS)), zero_division=0)
    return {
        "n": int(single.sum()),
        "macro_f1": float(f1_score(y_true, y_pred, labels=range(len(LABELS)), average="macro", zero_division=0)),
        "accuracy": float((y_true == y_pred).mean()),
        "per_label": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, label in enumerate(LABELS)
        },
    }


def signal_metrics(probs: np.ndarray, masks: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Precision / recall / F1 of each signal at its threshold, on the rows that decide it."""
    scores = signal_scores(probs)
    out = {}
    for signal, threshold in thresholds.items():
        truth = signal_targets(masks, signal)
        keep = truth >= 0
        y, pred = truth[keep], scores[signal][keep] >= threshold
        tp, fp, fn = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[signal] = {
            "threshold": threshold,
            "n": int(keep.sum()),
            "positives": int((y == 1).sum()),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    return out


def false_alarm_rate(probs: np.ndarray, masks: np.ndarray, tags: Sequence[Sequence[str]], threshold: float) -> dict:
    """Share of not-at-risk rows tagged as hard negatives (figurative, news, ...) that at_risk flags."""
    at_risk = signal_scores(probs)["at_risk"] >= threshold
    negative = signal_targets(masks, "at_risk") == 0
    hard = np.array([bool(set(t) & set(HARD_NEGATIVE_TAGS)) for t in tags], dtype=bool)
    sel = negative & hard
    return {"n": int(sel.sum()), "rate": float(at_risk[sel].mean()) if sel.any() else 0.0}


def evaluate(
    probs: np.ndarray,
    masks: np.ndarray,
    langs: Sequence[str],
    tags: Sequence[Sequence[str]],
    thresholds: dict[str, float],
) -> dict:
    """All figures, overall and per language."""
    langs = np.asarray(langs)
    tags = list(tags)

    def block(sel: np.ndarray) -> dict:
        return {
            "n": int(sel.sum()),
            "labels": label_metrics(probs[sel], masks[sel]),
            "signals": signal_metrics(probs[sel], masks[sel], thresholds),
            "hard_negative_false_at_risk": false_alarm_rate(
                probs[sel], masks[sel], [tags[i] for i in np.flatnonzero(sel)], thresholds["at_risk"]
            ),
        }

    result = {"overall": block(np.ones(len(langs), dtype=bool))}
    for lang in sorted(set(langs.tolist())):
        result[lang] = block(langs == lang)
    return result
