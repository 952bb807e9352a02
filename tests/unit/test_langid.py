"""Tests for data.langid: script decides hi/other, vocabulary decides en vs
hi-Latn, with code-mixed and loanword cases on the right side."""

import pytest

from data.langid import detect_lang, detect_lang_batch


@pytest.mark.parametrize(
    "text",
    [
        "kya",
        "nhi yaar",
        "mujhe nhi pta",
        "mje ni pta kya kru",
        "main thak gaya hu",
        "mai bahot pareshan hu",
        "koi nai samjhta mujhe",
        "yaaaar nahiiii hota mujhse",
        "dil toot gaya yr",
        "Ek din sab theek ho jayega",
        "bhai exam ka pressure bahut hai, I can't handle it yaar",
        "Main bahut tired hu, can't do this anymore",
        "mujhe lagta hai I am a burden to everyone",
        "kal exam hai and I haven't studied at all",
        "I told mom ki mujhe help chahiye",
        "life me kuch sahi nahi chal raha",
    ],
)
def test_hinglish(text):
    assert detect_lang(text) == "hi-Latn"


@pytest.mark.parametrize(
    "text",
    [
        "had chai with my yaar",
        "I failed again yaar",
        "Thanks bhai, see you at the party",
        "Dinner at my ghar tonight",
        "Is this the main reason?",
        "hi",
        "me too",
        "so sad",
        "See ya tomorrow",
        "I can't do this anymore",
        "I miss my नानी so much, nothing feels right",
    ],
)
def test_english_including_loanwords_and_hindi_homographs(text):
    assert detect_lang(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "मैं बहुत थक गया हूँ",
        "मुझे बहुत stress है",
        "I am fine, बस थोड़ा थक गया हूँ और नींद नहीं आती",
    ],
)
def test_devanagari_dominant_is_hindi(text):
    assert detect_lang(text) == "hi"


def test_latin_dominant_with_devanagari_is_hinglish():
    assert detect_lang("bahut stress hai yaar, मुझे नींद नहीं आती") == "hi-Latn"


@pytest.mark.parametrize(
    "text",
    ["Привет, как дела", "你好", "مرحبا كيف حالك", "வணக்கம்", "", "   ", "😭😭😭", "123 456", "!!!", "https://t.co/xyz"],
)
def test_other_scripts_and_letterless_text(text):
    assert detect_lang(text) == "other"


def test_batch_matches_single_calls():
    texts = ["kya hua", "hello there", "नमस्ते", "😭"]
    assert detect_lang_batch(texts) == ["hi-Latn", "en", "hi", "other"]
    assert detect_lang_batch(iter(texts)) == [detect_lang(t) for t in texts]
