"""Temperature scaling (Guo et al., 2017) fitted on validation, and the calibration error it reduces.

One scalar T divides the logits; it keeps the ranking, so it changes no label, only how much a probability
can be trusted. Label sets use the partial-label likelihood, so coarse validation rows can take part.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax


def partial_nll(logits: np.ndarray, masks: np.ndarray, temperature: float = 1.0) -> float:
    """Mean of -log sum_{c in S} p(c) under softmax(logits / T)."""
    logp = log_softmax(logits / temperature, axis=1)
    return float(-logsumexp(np.where(masks, logp, -np.inf), axis=1).mean())


def fit_temperature(logits: np.ndarray, masks: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises validation NLL (searched on log T)."""
    result = minimize_scalar(
        lambda log_t: partial_nll(logits, masks, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))


def calibrated_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(logits / temperature, axis=1)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins: sum over bins of |accuracy - confidence| weighted by the bin's share."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


def top_label_ece(probs: np.ndarray, masks: np.ndarray, bins: int = 10) -> float:
    """ECE of the top label on rows with a single fine label."""
    single = masks.sum(axis=1) == 1
    top = probs[single].argmax(axis=1)
    correct = masks[single][np.arange(single.sum()), top]
    return expected_calibration_error(probs[single].max(axis=1), correct, bins)
