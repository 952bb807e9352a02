"""Casual romanisation of Hindi: schwa deletion, folded ITRANS letters, Latin text left alone."""

import json
import re
from pathlib import Path

import pytest

from data.transliterate import delete_schwas, has_devanagari, to_devanagari, to_latin

SEED = Path(__file__).parents[2] / "data" / "seed"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("लगता", "lagta"),  # medial schwa dropped (V C a C V)
        ("अब", "ab"),  # final schwa dropped
        ("समझ", "samajh"),  # final only: the medial one is spoken
        ("कुछ", "kuchh"),
        ("मैं", "main"),  # anusvara -> n
        ("नहीं", "nahin"),
        ("सोचता", "sochta"),
        ("डॉक्टर", "doktar"),  # candra o of English loanwords
        ("घर", "ghar"),
        ("आल़े", "ale"),  # a nukta ITRANS has no letter for (dialect spelling): the base letter
        ("पढ़ाई", "parhai"),
    ],
)
def test_words_are_romanised_as_spoken(word, expected):
    assert to_latin(word) == expected


def test_latin_digits_emoji_and_punctuation_stay():
    assert to_latin("ok यार 2 baje 🙂।") == "ok yar 2 baje 🙂."


def test_schwa_marks_are_viramas_only():
    marked = delete_schwas("लगता")
    assert marked.replace("\u094d", "") == "लगता"
    assert marked.count("\u094d") == 1


def test_no_devanagari_is_left_in_any_seed_hindi_text():
    texts = [json.loads(line)["text"] for f in sorted(SEED.glob("hi_*.jsonl")) for line in f.open()]
    assert len(texts) >= 900
    leftovers = [i for i, t in enumerate(texts) if re.search(r"[\u0900-\u097f]", to_latin(t))]
    assert leftovers == []


def test_latin_to_devanagari_writes_devanagari_and_keeps_the_rest():
    out = to_devanagari("ghar 12 🙂")
    assert has_devanagari(out) and out.endswith(" 12 🙂")
    assert not has_devanagari("only latin here")
