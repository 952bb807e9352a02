import numpy as np

from model.labels import label_masks
from model.metrics import evaluate, label_metrics
from model.operating_points import choose_operating_points, choose_threshold


def test_high_recall_threshold_meets_target_and_is_the_highest_such():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 500)
    scores = np.clip(truth * 0.3 + rng.random(500) * 0.7, 0, 1)
    threshold, _, recall, _ = choose_threshold(scores, truth, "recall", 0.95)
    assert recall >= 0.95
    assert ((scores >= threshold) & (truth == 1)).sum() / truth.sum() >= 0.95
    higher = np.sort(scores[scores > threshold])
    if len(higher):
        nxt = higher[0]
        assert ((scores >= nxt) & (truth == 1)).sum() / truth.sum() < 0.95


def test_balanced_threshold_maximises_f1_by_brute_force():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 300)
    scores = np.clip(truth * 0.4 + rng.random(300) * 0.6, 0, 1)
    _, _, _, f1 = choose_threshold(scores, truth, "f1", None)

    def f1_at(t):
        pred = scores >= t
        tp = (pred & (truth == 1)).sum()
        return 2 * tp / (pred.sum() + truth.sum())

    assert abs(f1 - max(f1_at(t) for t in np.unique(scores))) < 1e-9


def test_operating_points_cover_the_named_points():
    probs = np.full((4, 5), 0.2)
    probs[0] = [0.7, 0.0, 0.2, 0.05, 0.05]
    probs[1] = [0.0, 0.8, 0.0, 0.1, 0.1]
    masks = label_masks([["intent"], ["promotion"], ["none"], ["informational"]])
    points = choose_operating_points(probs, masks)
    assert {"at_risk.high_recall", "at_risk.balanced", "urgent.high_recall", "violating.balanced"} <= set(points)
    assert points["at_risk.balanced"].recall == 1.0


def test_high_recall_point_is_never_less_sensitive_than_the_balanced_one():
    # Perfectly separable scores: max F1 is reached at the lowest positive score (recall 1.0), while the highest
    # threshold meeting recall 0.95 would sit above it.
    rng = np.random.default_rng(3)
    positives, negatives = 0.6 + 0.4 * rng.random(100), 0.5 * rng.random(100)
    probs = np.zeros((200, 5))
    probs[:100, 2] = positives  # ideation
    probs[100:, 2] = negatives
    probs[:, 4] = 1 - probs[:, 2]  # none
    masks = label_masks([["ideation"]] * 100 + [["none"]] * 100)
    points = choose_operating_points(probs, masks)
    assert points["at_risk.balanced"].recall == 1.0
    assert points["at_risk.high_recall"].threshold <= points["at_risk.balanced"].threshold
    assert points["at_risk.high_recall"].recall >= 0.95
    assert points["at_risk.high_recall"].target_recall == 0.95


def test_label_metrics_by_hand():
    probs = np.eye(5)[[0, 0, 2, 4]]
    masks = label_masks([["intent"], ["ideation"], ["ideation"], ["none"]])
    m = label_metrics(probs, masks)
    assert m["per_label"]["intent"]["precision"] == 0.5 and m["per_label"]["intent"]["recall"] == 1.0
    assert m["per_label"]["ideation"]["recall"] == 0.5
    assert m["accuracy"] == 0.75


def test_evaluate_per_language_and_hard_negative_false_alarms():
    probs = np.array([[0.1, 0.0, 0.8, 0.05, 0.05], [0.0, 0.0, 0.6, 0.2, 0.2], [0.0, 0.0, 0.1, 0.1, 0.8]])
    masks = label_masks([["ideation"], ["none"], ["none"]])
    result = evaluate(
        probs,
        masks,
        ["en", "hi", "hi"],
        [[], ["figurative"], ["figurative"]],
        {"at_risk": 0.5, "urgent": 0.5, "violating": 0.5},
    )
    assert result["hi"]["hard_negative_false_at_risk"] == {"n": 2, "rate": 0.5}
    assert result["en"]["signals"]["at_risk"]["recall"] == 1.0
    assert result["overall"]["n"] == 3
