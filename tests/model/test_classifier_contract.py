"""RiskClassifier with the TF-IDF backend: fit / predict / save / load and the predict contract."""

import numpy as np
import pytest

from data.taxonomy import LABELS
from model.classifier import RiskClassifier
from tests.marker_texts import MARKERS


@pytest.fixture(scope="module")
def fitted(tiny_corpus, tmp_path_factory):
    (texts, labels), (val_texts, val_labels) = tiny_corpus
    # a few coarse rows with label sets, as the public data has
    texts = [*texts, "mervin golf hotel", "zorblat kilo lima"]
    labels = [*labels, ["ideation", "intent"], ["ideation", "intent"]]
    clf = RiskClassifier.baseline(min_df=1).fit(texts, labels, eval_set=(val_texts, val_labels))
    path = clf.save(tmp_path_factory.mktemp("artifact"))
    return clf, path


def test_learns_the_markers(fitted):
    clf, _ = fitted
    preds = clf.predict([f"golf {MARKERS[label]} hotel" for label in LABELS], explain=False)
    assert [p.label for p in preds] == list(LABELS)


def test_probabilities_signals_and_version(fitted):
    clf, _ = fitted
    [p] = clf.predict(["zorblat alpha bravo"])
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    assert p.at_risk == pytest.approx(p.probabilities["ideation"] + p.probabilities["intent"])
    assert p.urgent == pytest.approx(p.probabilities["intent"])
    assert p.violating == pytest.approx(p.probabilities["promotion"])
    assert p.model_version.startswith("tfidf-") and len(p.model_version) == len("tfidf-") + 12


def test_calibration_and_operating_points_come_from_validation(fitted):
    clf, _ = fitted
    assert clf.temperature != 1.0
    assert {"at_risk.high_recall", "at_risk.balanced", "urgent.high_recall", "violating.balanced"} <= set(
        clf.operating_points
    )


def test_explanations_slice_the_original_text(fitted):
    clf, _ = fitted
    text = "ALPHA   bravo,  ZORBLAT!!  charlie 🙂"
    [p] = clf.predict([text])
    assert p.spans, "the marker should explain the urgent score"
    for span in p.spans:
        assert text[span.start : span.end] == span.text
    assert any("ZORBLAT" in s.text for s in p.spans)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "🙂🙂🙂", "x" * 100_000, "mervin " * 20_000, "घर पे सब ठीक है but mervin yaar", "\u200b\u200b"],
)
def test_predict_contract_on_odd_inputs(fitted, text):
    clf, _ = fitted
    [p] = clf.predict([text])
    assert p.label in LABELS
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    assert p.lang in ("en", "hi", "hi-Latn", "other")
    for span in p.spans:
        assert text[span.start : span.end] == span.text


def test_save_load_round_trip_gives_identical_outputs(fitted, tiny_corpus):
    clf, path = fitted
    loaded = RiskClassifier.load(path)
    texts = tiny_corpus[1][0]
    assert np.array_equal(clf.predict_proba(texts), loaded.predict_proba(texts))
    assert loaded.version == clf.version
    assert loaded.operating_points == clf.operating_points


def test_load_refuses_a_directory_that_is_not_an_artifact(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Sahay model artifact"):
        RiskClassifier.load(tmp_path)


def test_empty_batch(fitted):
    clf, _ = fitted
    assert clf.predict([]) == []
    assert clf.predict_proba([]).shape == (0, 5)
