"""The partial-label loss: -log sum_{c in S} p(c), so a label set trains the head without a guessed label.

For a single label it is ordinary cross-entropy. Class weights reweight examples by the mean weight of the
labels their set allows, so rare labels (intent, promotion) are not drowned by the coarse public sets.
"""

from __future__ import annotations

import numpy as np
import torch

from model.labels import N_LABELS


def partial_label_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    example_weights: torch.Tensor | None = None,
):
    """Weighted mean of -log sum_{c in S} softmax(logits)_c; masks is (n, 5) bool.

    An example's weight is the mean class weight over its set times its own weight (e.g. more for fine labels).
    """
    log_p = torch.log_softmax(logits, dim=-1)
    set_log_p = torch.logsumexp(log_p.masked_fill(~masks, float("-inf")), dim=-1)
    loss = -set_log_p
    weights = torch.ones_like(loss)
    if class_weights is not None:
        weights = weights * (masks.float() * class_weights).sum(-1) / masks.sum(-1)
    if example_weights is not None:
        weights = weights * example_weights
    return (loss * weights).sum() / weights.sum().clamp(min=1e-12)  # 0 for a batch of unlabelled rows


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 2.0,
    example_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: T^2 * KL(teacher_T || student_T), per example, weighted mean.

    The T^2 factor keeps its gradients on the scale of the hard-label loss whatever the temperature.
    """
    log_student = torch.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = torch.log_softmax(teacher_logits / temperature, dim=-1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(-1) * temperature**2
    weights = torch.ones_like(kl) if example_weights is None else example_weights
    return (kl * weights).sum() / weights.sum()


def class_weights_for(masks: np.ndarray, cap: float = 10.0) -> np.ndarray:
    """Inverse effective frequency: a set spreads one example evenly over its labels."""
    mass = (masks / masks.sum(axis=1, keepdims=True)).sum(axis=0)
    weights = len(masks) / (N_LABELS * np.maximum(mass, 1e-6))
    return np.clip(weights, 1.0 / cap, cap)
