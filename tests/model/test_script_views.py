"""Devanagari texts read in both scripts: the mix, the weight chosen on validation, and the classifier's use of it."""

import random

import numpy as np
import pytest

from data.taxonomy import LABELS
from data.transliterate import to_latin
from model.backends.tfidf import TfidfBackend, TfidfConfig
from model.classifier import RiskClassifier
from model.script_views import SURE, WEIGHTS, choose_weight, devanagari_rows, mix, read_both, unsure_rows

# Marker words written in Devanagari whose romanised spelling is what the model is trained on.
DEVANAGARI_MARKERS = dict(zip(LABELS, ["किताब", "बादल", "कुर्सी", "बिल्ली", "कमरा"], strict=True))
FILLER = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def corpus(n_per_label: int, seed: int, devanagari: bool):
    """Texts whose label is told by one marker word: romanised (training) or in Devanagari (validation)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label, word in DEVANAGARI_MARKERS.items():
        for _ in range(n_per_label):
            words = [rng.choice(FILLER) for _ in range(rng.randint(3, 6))]
            words.insert(rng.randint(0, len(words)), word if devanagari else to_latin(word))
            texts.append(" ".join(words))
            labels.append(label)
    return texts, labels


def test_mix_replaces_only_the_given_rows():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    other = np.array([[0.1, 0.9]])
    mixed = mix(probs, [1], other, 0.25)
    assert np.allclose(mixed[[0, 2]], probs[[0, 2]])
    assert np.allclose(mixed[1], 0.75 * probs[1] + 0.25 * other[0])
    assert np.array_equal(mix(probs, [1], other, 0.0), probs)
    assert probs[1, 0] == 0.2  # the input is not changed in place


def test_devanagari_rows_are_those_with_devanagari_letters():
    assert devanagari_rows(["plain latin", "मिश्रित mixed", "", "🙂", "घर"]) == [1, 4]


def test_only_devanagari_texts_whose_first_reading_is_unsure_are_read_again():
    texts = ["घर one", "घर two", "घर three", "latin four"]
    probs = np.zeros((4, len(LABELS)))
    probs[0, LABELS.index("none")] = 1.0  # sure: nothing at risk, nothing violating
    probs[1, LABELS.index("ideation")] = 1.0 - SURE / 2  # sure: at risk
    probs[1, LABELS.index("none")] = SURE / 2
    probs[2, [LABELS.index("ideation"), LABELS.index("none")]] = 0.5  # unsure
    probs[3, [LABELS.index("ideation"), LABELS.index("none")]] = 0.5  # unsure, but Latin script
    assert unsure_rows(texts, probs) == [2]
    second: list[str] = []

    def probs_of(batch):
        if batch == texts:
            return probs
        second.extend(batch)
        return np.full((len(batch), len(LABELS)), 1 / len(LABELS))

    out = read_both(texts, 0.5, probs_of)
    assert second == [to_latin("घर three")]
    assert np.array_equal(out[[0, 1, 3]], probs[[0, 1, 3]])
    assert np.allclose(out[2], 0.5 * probs[2] + 0.5 / len(LABELS))
    assert np.array_equal(read_both(texts, 0.0, probs_of), probs) and second == [to_latin("घर three")]


def masks_of(labels):
    return np.array([[label == name for name in LABELS] for label in labels])


def test_choose_weight_follows_the_reading_that_is_right_on_validation():
    labels = list(LABELS) * 4
    truth = masks_of(labels).astype(float)
    wrong = 0.9 * np.roll(truth, 1, axis=1) + 0.1 / len(LABELS)
    rows = list(range(len(labels)))
    # the text as written is confidently wrong, its romanised reading right: only the largest weight fixes it
    weight, scores = choose_weight(wrong, truth.astype(bool), rows, truth)
    assert weight == max(WEIGHTS)
    assert scores["0"] < scores[f"{max(WEIGHTS):g}"] == 1.0
    assert set(scores) == {f"{w:g}" for w in WEIGHTS}
    # the romanised reading is wrong: it is not used
    weight, _ = choose_weight(truth, truth.astype(bool), rows, np.roll(truth, 1, axis=1))
    assert weight == 0.0
    # both readings agree: a tie, and the smallest weight (no second pass) is kept
    weight, _ = choose_weight(truth, truth.astype(bool), rows, truth)
    assert weight == 0.0


@pytest.fixture(scope="module")
def reads_romanised(tmp_path_factory):
    train_texts, train_labels = corpus(20, seed=1, devanagari=False)
    val_texts, val_labels = corpus(6, seed=2, devanagari=True)
    clf = RiskClassifier(TfidfBackend(TfidfConfig(min_df=1)), read_romanised=True)
    clf.fit(train_texts, train_labels, eval_set=(val_texts, val_labels))
    return clf, clf.save(tmp_path_factory.mktemp("artifact"))


def test_calibration_chooses_the_romanised_reading_when_validation_needs_it(reads_romanised):
    clf, _ = reads_romanised
    assert clf.romanised_weight > 0
    assert set(clf.fit_log["romanised_weight_search"]) == {f"{w:g}" for w in WEIGHTS}
    test_texts, test_labels = corpus(4, seed=3, devanagari=True)
    predicted = [p.label for p in clf.predict(test_texts, explain=False)]
    alone = RiskClassifier(clf.backend, clf.temperature, clf.operating_points)  # the same model, one reading
    assert np.mean([a == b for a, b in zip(predicted, test_labels, strict=True)]) == 1.0
    assert (alone.predict_proba(test_texts).argmax(1) == clf.predict_proba(test_texts).argmax(1)).mean() < 1.0


def test_predictions_average_the_two_readings_of_devanagari_texts_only(reads_romanised):
    clf, _ = reads_romanised
    w = clf.romanised_weight
    hindi, latin = "alpha कमरा bravo", "alpha kamra bravo"
    assert np.allclose(
        clf.predict_proba([hindi])[0], (1 - w) * clf._probs([hindi])[0] + w * clf._probs([to_latin(hindi)])[0]
    )
    assert np.array_equal(clf.predict_proba([latin]), clf._probs([latin]))


def test_the_weight_is_saved_and_loaded(reads_romanised):
    clf, path = reads_romanised
    loaded = RiskClassifier.load(path)
    texts = corpus(2, seed=4, devanagari=True)[0]
    assert loaded.romanised_weight == clf.romanised_weight
    assert np.array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))


def test_a_model_that_does_not_read_romanised_keeps_one_reading(tiny_corpus):
    (texts, labels), (val_texts, val_labels) = tiny_corpus
    clf = RiskClassifier.baseline(min_df=1).fit(texts, labels, eval_set=(val_texts, val_labels))
    assert clf.romanised_weight == 0.0 and "romanised_weight_search" not in clf.fit_log
    assert np.array_equal(clf.predict_proba(["घर alpha"]), clf._probs(["घर alpha"]))


def test_explanations_read_each_variant_once_and_slice_the_text(reads_romanised):
    clf, _ = reads_romanised
    text = "alpha कमरा bravo charlie"
    read: list[str] = []
    logits = clf.backend.logits
    clf.backend.logits = lambda texts: read.extend(texts) or logits(texts)
    try:
        (p,) = clf.predict([text], explain=True)
    finally:
        clf.backend.logits = logits
    # both readings of the text, its as-written base, then one variant per word (not two)
    assert len(read) == 2 + 1 + len(text.split())
    assert all(text[s.start : s.end] == s.text for s in p.spans)


def test_predict_proba_takes_what_it_took_before(reads_romanised):
    clf, _ = reads_romanised
    probs = clf.predict_proba([None, "", "घर " * 30_000])  # not a string, empty, very long Devanagari
    assert probs.shape == (3, len(LABELS)) and np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(probs[0], probs[1])
