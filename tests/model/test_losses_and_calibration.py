import math

import numpy as np
import pytest
import torch

from model.calibration import (
    calibrated_probs,
    expected_calibration_error,
    fit_temperature,
    partial_nll,
    top_label_ece,
)
from model.labels import label_masks, signal_targets
from model.losses import class_weights_for, partial_label_loss


def test_partial_label_loss_matches_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0]])
    masks = torch.tensor([[True, False, True, False, False]])
    z = math.e**1 + math.e**2 + 3
    expected = -math.log((math.e**1 + 1) / z)
    assert partial_label_loss(logits, masks).item() == pytest.approx(expected, rel=1e-6)


def test_single_label_is_cross_entropy_and_weights_reweight_examples():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 2, 4, 1])
    masks = torch.nn.functional.one_hot(targets, 5).bool()
    ce = torch.nn.functional.cross_entropy(logits, targets)
    assert partial_label_loss(logits, masks).item() == pytest.approx(ce.item(), rel=1e-6)
    weights = torch.tensor([10.0, 1.0, 1.0, 1.0, 1.0])
    per = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    expected = (per * torch.tensor([10.0, 1.0, 1.0, 1.0])).sum() / 13.0
    assert partial_label_loss(logits, masks, weights).item() == pytest.approx(expected.item(), rel=1e-6)


def test_full_set_costs_nothing():
    logits = torch.randn(3, 5)
    assert partial_label_loss(logits, torch.ones(3, 5, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-6)


def test_class_weights_favour_rare_labels_and_spread_sets():
    masks = label_masks([["none"]] * 8 + [["intent"]] + [["ideation", "intent"]])
    w = class_weights_for(masks)  # effective rows: none 8, intent 1.5, ideation 0.5, others 0
    assert w[2] > w[0] > w[4]
    assert w[0] == np.float64(10 / (5 * 1.5)) and w[1] == 10.0  # absent labels are capped


def test_signal_targets_leave_undecided_sets_out():
    masks = label_masks([["ideation", "intent"], ["none"], ["none", "informational", "ideation"]])
    assert signal_targets(masks, "at_risk").tolist() == [1, 0, -1]


def _overconfident(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    logits = rng.normal(0, 1, (n, 5))
    logits[np.arange(n), y] += 1.0  # a weak, honest signal
    return logits * 4.0, label_masks([[["intent", "promotion", "ideation", "informational", "none"][i]] for i in y])


def test_temperature_scaling_lowers_ece_and_nll():
    logits, masks = _overconfident()
    t = fit_temperature(logits, masks)
    assert 2.5 < t < 6.0
    before = top_label_ece(calibrated_probs(logits, 1.0), masks)
    after = top_label_ece(calibrated_probs(logits, t), masks)
    assert after < before / 2
    assert partial_nll(logits, masks, t) < partial_nll(logits, masks, 1.0)


def test_ece_by_hand():
    confidence = np.array([0.9, 0.9, 0.6, 0.6])
    correct = np.array([1, 0, 1, 1])
    # bin 0.9: |0.5 - 0.9| = 0.4 on half the rows; bin 0.6: |1.0 - 0.6| = 0.4 on half
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.4)


def test_example_weights_multiply_the_class_weights():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2])
    masks = torch.nn.functional.one_hot(targets, 5).bool()
    per = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    example = torch.tensor([3.0, 1.0, 1.0])
    expected = (per * example).sum() / example.sum()
    assert partial_label_loss(logits, masks, example_weights=example).item() == pytest.approx(expected.item())


def test_distillation_loss_is_zero_at_the_teacher_and_pulls_towards_it():
    from model.losses import distillation_loss

    teacher = torch.tensor([[2.0, 0.0, -1.0, 0.5, 0.0]])
    assert float(distillation_loss(teacher.clone(), teacher, temperature=2.0)) < 1e-6
    student = torch.zeros(1, 5, requires_grad=True)
    loss = distillation_loss(student, teacher, temperature=2.0)
    assert loss.item() > 0
    loss.backward()
    # gradient descent raises the logit the teacher likes most and lowers the one it likes least
    assert student.grad[0, 0] < 0 < student.grad[0, 2]


def test_a_batch_with_no_labelled_rows_has_zero_label_loss():
    logits = torch.randn(3, 5, requires_grad=True)
    masks = torch.ones(3, 5, dtype=torch.bool)
    loss = partial_label_loss(logits, masks, example_weights=torch.zeros(3))
    assert loss.item() == 0.0 and torch.isfinite(loss)
