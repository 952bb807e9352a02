"""Perturbations: deterministic per seed, change what they should, leave alone what they do not apply to.

All texts here are made-up and neutral; the risk word algospeak needs appears only in a news-like frame.
"""

import random

import pytest

from data.transliterate import has_devanagari
from eval.perturb import ALGOSPEAK, EMOJI, LEET, PERTURBATIONS, ZERO_WIDTH, perturb

EN = "the library opens at nine and closes late on fridays"
HI = "कल हम बाज़ार जाएंगे और सब्ज़ी लाएंगे"
HI_LATN = "kal hum bazaar jayenge aur sabzi layenge"
NEWS = "news report about suicide prevention week"
NEWS_HI = "आत्महत्या रोकथाम सप्ताह पर समाचार"
TEXTS = [(EN, "en"), (HI, "hi"), (HI_LATN, "hi-Latn"), (NEWS, "en")]
GENERIC = ["leetspeak", "spacing", "casing", "typos", "emoji", "zero_width"]


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_deterministic_for_a_seed(name):
    for text, _ in TEXTS:
        assert perturb(name, text, 7) == perturb(name, text, 7)
        assert PERTURBATIONS[name](text, random.Random(7)) == perturb(name, text, 7)


@pytest.mark.parametrize("name", GENERIC)
def test_generic_perturbations_change_latin_text(name):
    assert all(perturb(name, text, seed) != text for seed in range(5) for text in (EN, HI_LATN))
    assert PERTURBATIONS[name].applies(EN, "en") and PERTURBATIONS[name].applies(HI, "hi")


def test_different_seeds_give_different_texts():
    assert len({perturb("typos", EN, seed) for seed in range(10)}) > 1


def test_leetspeak_substitutes_letters_one_for_one():
    out = perturb("leetspeak", EN, 1)
    assert len(out) == len(EN)
    assert all(a == b or b in LEET[a] for a, b in zip(EN, out, strict=True))
    assert perturb("leetspeak", HI, 1) == HI  # nothing Latin to substitute


def test_spacing_only_moves_whitespace():
    for text in (EN, HI, HI_LATN):
        for seed in range(5):
            assert "".join(perturb("spacing", text, seed).split()) == "".join(text.split())


def test_casing_preserves_letters():
    for seed in range(8):
        assert perturb("casing", EN, seed).casefold() == EN.casefold()
    assert perturb("casing", HI, 0) == HI  # Devanagari has no case


def test_emoji_only_adds_emoji():
    for seed in range(5):
        words = perturb("emoji", EN, seed).split()
        assert any(w in EMOJI for w in words)
        assert [w for w in words if w not in EMOJI] == EN.split()


@pytest.mark.parametrize("text", [EN, HI, HI_LATN])
def test_zero_width_inserts_only_invisible_characters(text):
    out = perturb("zero_width", text, 3)
    assert out != text and any(c in out for c in ZERO_WIDTH)
    assert out.translate(dict.fromkeys(map(ord, ZERO_WIDTH))) == text


def test_typos_stay_small():
    for seed in range(5):
        out = perturb("typos", EN, seed).split()
        assert len(out) == len(EN.split())  # letters change, words stay
        assert 1 <= sum(a != b for a, b in zip(out, EN.split(), strict=True)) <= 5


def test_algospeak_replaces_a_known_risk_word():
    for seed in range(5):
        out = perturb("algospeak", NEWS, seed)
        assert "suicide" not in out
        assert out.replace("news report about ", "").replace(" prevention week", "") in ALGOSPEAK["suicide"]
    assert perturb("algospeak", NEWS.upper(), 0) != NEWS.upper()  # case-insensitive match
    assert "आत्महत्या" not in perturb("algospeak", NEWS_HI, 0)


def test_algospeak_leaves_other_texts_alone():
    for text, _ in TEXTS[:3]:
        assert perturb("algospeak", text, 0) == text
    assert perturb("algospeak", "the suicidesque plot twist", 0) == "the suicidesque plot twist"  # whole words only


def test_algospeak_matches_both_nukta_spellings():
    composed, decomposed = (
        "\u0959\u0941\u0926\u0915\u0941\u0936\u0940",
        "\u0916\u093c\u0941\u0926\u0915\u0941\u0936\u0940",
    )
    for word in (composed, decomposed):
        assert perturb("algospeak", f"{word} par lekh", 0) != f"{word} par lekh"


def test_translit_to_latin_applies_only_to_devanagari():
    p = PERTURBATIONS["translit_to_latin"]
    assert p.applies(HI, "hi") and not p.applies(EN, "en") and not p.applies(HI_LATN, "hi-Latn")
    out = perturb("translit_to_latin", HI, 0)
    assert not has_devanagari(out) and out.isascii()
    assert perturb("translit_to_latin", EN, 0) == EN


def test_translit_to_devanagari_applies_only_to_hinglish():
    p = PERTURBATIONS["translit_to_devanagari"]
    assert p.applies(HI_LATN, "hi-Latn") and not p.applies(EN, "en") and not p.applies(HI, "hi")
    out = perturb("translit_to_devanagari", HI_LATN, 0)
    assert has_devanagari(out) and not any(c.isascii() and c.isalpha() for c in out)


def test_spacing_spaces_out_a_risk_word_first():
    assert "s u i c i d e" in perturb("spacing", NEWS, 0)
