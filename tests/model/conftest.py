"""A tiny, learnable, neutral corpus for model tests: each label has a marker word among random filler."""

import random

import pytest

from data.taxonomy import LABELS
from tests.marker_texts import MARKERS

FILLER = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "घर",
    "खाना",
    "yaar",
]


def make_corpus(n_per_label: int, seed: int):
    rng = random.Random(seed)
    texts, labels = [], []
    for label in LABELS:
        for _ in range(n_per_label):
            words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
            words.insert(rng.randint(0, len(words)), MARKERS[label])
            texts.append(" ".join(words))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def tiny_corpus():
    return make_corpus(24, seed=1), make_corpus(8, seed=2)
