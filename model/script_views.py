"""A Devanagari text read twice: as written and romanised, its two calibrated readings averaged.

Training adds a romanised copy of every Devanagari text (`augment.transliterate`), so the model knows both
spellings of the same Hindi; reading a Devanagari text in both at inference is a two-view ensemble that
costs one more forward pass for those texts only, and only where the first reading is unsure. The weight of
the romanised reading is chosen on validation (0 turns it off), never fixed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from data.transliterate import has_devanagari, to_latin
from model.labels import signal_scores
from model.metrics import label_metrics

WEIGHTS = (0.0, 0.25, 0.5)
"""Candidate weights of the romanised reading; above 0.5 it would outweigh the text as written."""
SURE = 0.05
"""A text whose as-written at_risk and violating both lie within this of 0 or 1 is not read again: on the
session-7 validation split that kept the two-reading figures (hi macro-F1 0.915 vs 0.917, at_risk F1 0.941 vs
0.937) and read 29% of Devanagari test texts twice instead of all of them."""


def devanagari_rows(texts: Sequence[str]) -> list[int]:
    return [i for i, text in enumerate(texts) if has_devanagari(text)]


def unsure_rows(texts: Sequence[str], probs: np.ndarray) -> list[int]:
    """The Devanagari texts whose as-written at_risk or violating is not already within SURE of 0 or 1."""
    scores = signal_scores(probs)
    unsure = np.zeros(len(probs), dtype=bool)
    for signal in ("at_risk", "violating"):
        unsure |= (scores[signal] > SURE) & (scores[signal] < 1.0 - SURE)
    return [i for i in devanagari_rows(texts) if unsure[i]]


def romanised(texts: Sequence[str]) -> list[str]:
    return [to_latin(text) for text in texts]


def mix(probs: np.ndarray, rows: Sequence[int], romanised_probs: np.ndarray, weight: float) -> np.ndarray:
    """`probs` with the given rows replaced by (1 - weight) * as written + weight * romanised."""
    out = np.array(probs, dtype=float, copy=True)
    if weight and len(rows):
        out[list(rows)] = (1.0 - weight) * out[list(rows)] + weight * romanised_probs
    return out


def choose_weight(
    probs: np.ndarray,
    masks: np.ndarray,
    rows: Sequence[int],
    romanised_probs: np.ndarray,
    weights: Sequence[float] = WEIGHTS,
) -> tuple[float, dict[str, float]]:
    """The weight with the highest validation macro-F1 (the smallest on a tie), and every weight's figure."""
    scores = {}
    for weight in weights:
        block = label_metrics(mix(probs, rows, romanised_probs, weight), masks)
        scores[f"{weight:g}"] = round(float(block.get("macro_f1", 0.0)), 4)
    best = max(weights, key=lambda w: (scores[f"{w:g}"], -w))
    return float(best), scores


def read_both(texts: Sequence[str], weight: float, probs_of: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Calibrated probabilities of `texts` through `probs_of`, unsure Devanagari texts read in both scripts."""
    probs = probs_of(list(texts))
    rows = unsure_rows(texts, probs) if weight else []
    if not rows:
        return probs
    return mix(probs, rows, probs_of(romanised([texts[i] for i in rows])), weight)
