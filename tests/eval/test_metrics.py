"""Evaluation figures against hand-computed values and sklearn, the bootstrap, and slice counts."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from data.taxonomy import LABELS
from eval.metrics import (
    binary_figures,
    bootstrap,
    confusion,
    expected_alerts,
    point,
    pr_curve,
    ranking_figures,
    reliability,
    targets,
    threshold_figures,
)
from eval.slices import length_bucket, make_slices
from model.labels import SIGNAL_MASKS, label_masks


def test_threshold_figures_match_hand_counts():
    # tp = 2 (rows 0, 4), fp = 1 (row 2), fn = 1 (row 1), tn = 1 (row 3)
    y = np.array([1, 1, 0, 0, 1])
    pred = np.array([1, 0, 1, 0, 1], dtype=bool)
    figures = threshold_figures(y, pred, np.ones((1, 5)))
    assert figures["precision"][0] == pytest.approx(2 / 3)
    assert figures["recall"][0] == pytest.approx(2 / 3)
    assert figures["f1"][0] == pytest.approx(2 / 3)
    assert figures["fpr"][0] == pytest.approx(1 / 2)


def test_undefined_figures_are_nan_not_zero():
    no_positives = threshold_figures(np.array([0, 0]), np.array([True, False]), np.ones((1, 2)))
    assert math.isnan(no_positives["recall"][0]) and no_positives["precision"][0] == 0.0
    assert no_positives["f1"][0] == 0.0 and no_positives["fpr"][0] == 0.5
    nothing_flagged = threshold_figures(np.array([1, 0]), np.array([False, False]), np.ones((1, 2)))
    assert math.isnan(nothing_flagged["precision"][0]) and nothing_flagged["recall"][0] == 0.0
    ranking = ranking_figures(np.array([0, 0]), np.array([0.2, 0.7]), np.ones((1, 2)))
    assert math.isnan(ranking["pr_auc"][0]) and math.isnan(ranking["roc_auc"][0])


def test_ranking_figures_match_a_hand_computed_example():
    # thresholds 0.8, 0.4, 0.35: (P, R) = (1, .5), (.5, .5), (2/3, 1) -> AP = .5 * 1 + .5 * 2/3
    # positives rank above negatives in 3 of 4 pairs -> ROC-AUC = .75
    y, score = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    figures = ranking_figures(y, score, np.ones((1, 4)))
    assert figures["pr_auc"][0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert figures["roc_auc"][0] == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_figures_agree_with_sklearn_including_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    score = np.round(rng.random(60) * 0.5 + 0.4 * y, 1)  # rounding makes many ties
    figures = ranking_figures(y, score, np.ones((1, 60)))
    assert figures["pr_auc"][0] == pytest.approx(average_precision_score(y, score))
    assert figures["roc_auc"][0] == pytest.approx(roc_auc_score(y, score))


def test_weights_act_as_repeated_rows():
    """A bootstrap resample is a weight row: it must equal the data with rows repeated that often."""
    rng = np.random.default_rng(3)
    y, score = rng.integers(0, 2, 30), rng.random(30)
    pred = score > 0.5
    counts = rng.integers(0, 4, 30)
    counts[0], counts[1] = 1, 1
    y[0], y[1] = 0, 1
    weighted = binary_figures(y, score, pred, counts[None, :].astype(float))
    repeated = point(np.repeat(y, counts), np.repeat(score, counts), np.repeat(pred, counts))
    for name, value in repeated.items():
        assert weighted[name][0] == pytest.approx(value), name


def test_reliability_ece_matches_hand_computation():
    # bin [0.1, 0.2): mean score 0.1, observed 0.5 -> |0.4| * 1/2; bin [0.9, 1]: 0.9 vs 1 -> |0.1| * 1/2
    result = reliability(np.array([0, 1, 1, 1]), np.array([0.1, 0.1, 0.9, 0.9]), bins=10)
    assert result["ece"] == pytest.approx(0.25)
    assert [(b["n"], b["observed"]) for b in result["bins"]] == [(2, 0.5), (2, 1.0)]


def test_expected_alerts_per_ten_thousand():
    # 10,000 * (0.01 * 0.8 + 0.99 * 0.02) = 80 true alerts + 198 false ones
    assert expected_alerts(recall=0.8, fpr=0.02, prevalence=0.01) == pytest.approx(278.0)
    assert expected_alerts(recall=1.0, fpr=0.0, prevalence=0.05, per=1000) == pytest.approx(50.0)


def _stat(y, score):
    return lambda w: binary_figures(y, score, score >= 0.5, w)


def test_bootstrap_intervals_contain_the_point_and_repeat_with_the_seed():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.clip(0.35 * y + rng.random(200) * 0.65, 0, 1)
    estimate = point(y, score, score >= 0.5)
    first = bootstrap(_stat(y, score), 200, n_boot=200, seed=7)
    assert first == bootstrap(_stat(y, score), 200, n_boot=200, seed=7)
    assert first != bootstrap(_stat(y, score), 200, n_boot=200, seed=8)
    for name in ("precision", "recall", "f1", "pr_auc", "roc_auc"):
        low, high = first[name]
        assert low <= estimate[name] <= high, name
        assert high - low < 0.3, name


def test_bootstrap_is_empty_without_resamples():
    assert bootstrap(lambda w: {"x": w.sum(axis=1)}, 10, n_boot=0, seed=0) == {}


def test_targets_leave_straddling_label_sets_out():
    masks = label_masks([["intent"], ["ideation", "intent"], ["none"], ["ideation", "informational"]])
    assert targets(masks, SIGNAL_MASKS["at_risk"]).tolist() == [1, 1, 0, -1]
    assert targets(masks, SIGNAL_MASKS["urgent"]).tolist() == [1, -1, 0, 0]


def test_confusion_counts_single_label_rows_only():
    masks = label_masks([["intent"], ["intent"], ["none"], ["ideation", "none"]])
    probs = np.eye(len(LABELS))[[0, 2, 4, 4]]
    matrix = np.array(confusion(masks, probs))
    assert matrix.sum() == 3
    assert matrix[0, 0] == 1 and matrix[0, 2] == 1 and matrix[4, 4] == 1


def test_pr_curve_is_thinned_but_keeps_its_ends():
    rng = np.random.default_rng(1)
    y, score = rng.integers(0, 2, 1000), rng.random(1000)
    curve = pr_curve(y, score, max_points=50)
    assert len(curve["recall"]) <= 50
    assert curve["recall"][0] == 1.0 and curve["recall"][-1] == 0.0
    assert pr_curve(np.zeros(5), np.ones(5)) == {"precision": [], "recall": []}


def test_length_buckets_have_sharp_edges():
    assert [length_bucket("x" * n) for n in (0, 49, 50, 149, 150, 299, 300)] == [
        "<50 chars",
        "<50 chars",
        "50-149 chars",
        "50-149 chars",
        "150-299 chars",
        "150-299 chars",
        "300+ chars",
    ]


def test_slices_count_rows():
    langs = ["en", "hi", "hi-Latn", "en", "en"]
    surfaces = ["post", "chat", "chat", "search", "post"]
    sources = ["seed", "seed", "export", "seed", "seed"]
    tags = [["figurative", "emoji"], [], ["emoji"], ["code_mixed", "emoji"], ["news"]]
    texts = ["a" * 10, "b" * 60, "c" * 200, "d" * 400, "e" * 20]
    counts = {(s.kind, s.value): s.n for s in make_slices(langs, surfaces, sources, tags, texts)}
    assert counts == {
        ("lang", "en"): 3,
        ("lang", "hi"): 1,
        ("lang", "hi-Latn"): 1,
        ("surface", "post"): 2,
        ("surface", "chat"): 2,
        ("surface", "search"): 1,
        ("source", "seed"): 4,
        ("source", "export"): 1,
        ("tag", "figurative"): 1,
        ("tag", "news"): 1,
        ("tag", "emoji"): 3,
        ("tag", "code_mixed"): 1,
        ("length", "<50 chars"): 2,
        ("length", "50-149 chars"): 1,
        ("length", "150-299 chars"): 1,
        ("length", "300+ chars"): 1,
    }
    order = [(s.kind, s.value) for s in make_slices(langs, surfaces, sources, tags, texts) if s.kind == "tag"]
    assert order[:2] == [("tag", "figurative"), ("tag", "news")]  # hard negatives first
