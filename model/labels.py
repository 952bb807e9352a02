"""Label sets as boolean masks over `data.taxonomy.LABELS`: the form every loss and metric works on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data.taxonomy import LABEL_INDEX, LABELS, SIGNALS

N_LABELS = len(LABELS)
SIGNAL_MASKS: dict[str, np.ndarray] = {
    name: np.array([label in members for label in LABELS]) for name, members in SIGNALS.items()
}


def label_masks(label_sets: Sequence[Sequence[str]]) -> np.ndarray:
    """(n, 5) bool: row i marks the labels record i allows."""
    masks = np.zeros((len(label_sets), N_LABELS), dtype=bool)
    for i, labels in enumerate(label_sets):
        masks[i, [LABEL_INDEX[label] for label in labels]] = True
    if not masks.any(axis=1).all():
        raise ValueError("every record needs at least one label")
    return masks


def signal_scores(probs: np.ndarray) -> dict[str, np.ndarray]:
    """at_risk / urgent / violating for each row of (n, 5) probabilities."""
    return {name: probs[:, mask].sum(axis=1) for name, mask in SIGNAL_MASKS.items()}


def signal_targets(masks: np.ndarray, signal: str) -> np.ndarray:
    """1 / 0 where the label set decides the signal, -1 where it straddles it (left out of metrics)."""
    inside = masks[:, SIGNAL_MASKS[signal]].any(axis=1)
    outside = masks[:, ~SIGNAL_MASKS[signal]].any(axis=1)
    return np.where(inside & ~outside, 1, np.where(outside & ~inside, 0, -1))
