"""The hand-written seed corpus: schema, size, balance, coverage and duplicates.

These assert properties only; no example text is printed on failure beyond record ids.
"""

import re
from collections import Counter, defaultdict

import pytest

from data.dedup import near_duplicate_pairs
from data.describe import word_count
from data.loaders import load_seed
from data.normalize import dedup_key
from data.schema import HARD_CASE_TAGS, SURFACES
from data.taxonomy import LABELS

LANGS = ("en", "hi", "hi-Latn")


@pytest.fixture(scope="module")
def seed(request):
    from pathlib import Path

    return load_seed(Path(__file__).parents[2] / "data" / "seed")


def test_every_seed_row_is_valid(seed):
    assert seed.report.bad_rows == []
    assert seed.report.dropped == {}, "duplicate texts in the seed corpus"
    assert all(r.source == "seed" and r.label is not None for r in seed.records)


def test_size_and_languages(seed):
    per_lang = Counter(r.lang for r in seed.records)
    assert sum(per_lang.values()) >= 3000
    for lang in LANGS:
        assert per_lang[lang] >= 950, lang


def test_no_label_under_11_percent_in_any_language(seed):
    """Each part a/b holds every label at >= 13%; the everyday parts (*_c: benign negatives, almost all
    `none`) dilute that, so the floor for a whole language is 11%."""
    for lang in LANGS:
        rows = [r for r in seed.records if r.lang == lang]
        counts = Counter(r.label for r in rows)
        for label in LABELS:
            assert counts[label] / len(rows) >= 0.11, (lang, label, counts[label])


def test_every_surface_and_hard_case_in_every_language(seed):
    for lang in LANGS:
        rows = [r for r in seed.records if r.lang == lang]
        surfaces = Counter(r.surface for r in rows)
        assert all(surfaces[s] >= 30 for s in SURFACES), (lang, surfaces)
        tags = Counter(t for r in rows for t in r.tags)
        missing = [t for t in HARD_CASE_TAGS if tags[t] < 10]
        assert not missing, (lang, missing)
        for style in ("slang", "typo", "emoji", "obfuscated", "code_mixed"):
            assert tags[style] >= 30, (lang, style, tags[style])
    dialect = Counter(t for r in seed.records for t in r.tags if t.startswith("dialect_"))
    assert all(dialect[d] >= 30 for d in ("dialect_rajasthani", "dialect_bhojpuri", "dialect_haryanvi")), dialect


def test_lengths_between_3_and_100_words(seed):
    lengths = [word_count(r.text) for r in seed.records]
    assert min(lengths) >= 3 and max(lengths) <= 100
    assert sum(n <= 8 for n in lengths) >= 300, "too few short texts (searches, bios)"
    assert sum(n > 40 for n in lengths) >= 300, "too few long texts"


def test_no_exact_or_near_duplicates(seed):
    keys = [dedup_key(r.text) for r in seed.records]
    assert len(set(keys)) == len(keys)
    pairs = near_duplicate_pairs(keys, threshold=0.8)
    assert [(seed.records[i].id, seed.records[j].id) for i, j, _ in pairs] == []


WORD = re.compile(r"[\w\u0900-\u0963\u0966-\u097F]+")
"""A word, Devanagari vowel signs and viramas included (`\\w` alone splits Hindi words at them)."""


def test_no_shared_skeletons(seed):
    """No opening of four words is reused by more than a handful of rows (templates would show up here)."""
    openings = defaultdict(list)
    for r in seed.records:
        words = WORD.findall(dedup_key(r.text))
        if len(words) >= 6:
            openings[" ".join(words[:4])].append(r.id)
    worst = max(openings.values(), key=len)
    assert len(worst) <= 6, worst


def test_language_tagger_agrees_with_the_hand_labels(seed):
    """The rule-based tagger against the writers' own language labels (Hinglish must not come out as en)."""
    from data.langid import detect_lang

    for lang in LANGS:
        rows = [r for r in seed.records if r.lang == lang]
        agree = sum(detect_lang(r.text) == lang for r in rows) / len(rows)
        assert agree >= 0.97, (lang, agree)
