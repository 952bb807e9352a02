"""The averaging ensemble, on two TF-IDF members (the mixing and weight choice do not depend on the members)."""

import numpy as np
import pytest
from scipy.special import softmax

from model.backends.ensemble import EnsembleBackend, EnsembleConfig
from model.backends.tfidf import TfidfBackend, TfidfConfig
from model.classifier import RiskClassifier
from model.labels import label_masks


@pytest.fixture(scope="module")
def ensemble(tiny_corpus):
    (texts, labels), (val_texts, val_labels) = tiny_corpus
    char_only = TfidfBackend(TfidfConfig(min_df=1, word_ngram_range=(1, 1), C=0.5))
    words = TfidfBackend(TfidfConfig(min_df=1))
    backend = EnsembleBackend(EnsembleConfig(), char_only, words)
    backend.fit(texts, label_masks([[x] for x in labels]), val_texts, label_masks([[x] for x in val_labels]))
    return backend, val_texts


def test_logits_are_the_log_of_the_weighted_average(ensemble):
    backend, texts = ensemble
    w = backend.weight
    expected = w * softmax(backend.e5.logits(texts), axis=1) + (1 - w) * softmax(backend.tfidf.logits(texts), axis=1)
    assert np.allclose(np.exp(backend.logits(texts)), expected, atol=1e-9)


def test_fixed_weight_is_kept(tiny_corpus):
    (texts, labels), (val_texts, val_labels) = tiny_corpus
    backend = EnsembleBackend(
        EnsembleConfig(e5_weight=0.25), TfidfBackend(TfidfConfig(min_df=1)), TfidfBackend(TfidfConfig(min_df=1))
    )
    backend.fit(texts, label_masks([[x] for x in labels]), val_texts, label_masks([[x] for x in val_labels]))
    assert backend.weight == 0.25


def test_save_load_round_trip(ensemble, tmp_path):
    backend, texts = ensemble
    clf = RiskClassifier(backend)
    clf.save(tmp_path)
    loaded = RiskClassifier.load(tmp_path)
    assert loaded.backend.weight == backend.weight
    assert np.allclose(clf.predict_proba(texts), loaded.predict_proba(texts))
    one_thread = RiskClassifier.load(tmp_path, threads=1)  # what the service asks for on 2 cores
    assert np.allclose(clf.predict_proba(texts), one_thread.predict_proba(texts))
