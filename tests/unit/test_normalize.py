"""Tests for data.normalize: obfuscated risk terms become plain words, and
ordinary text (numbers, helpline 14416, times, Devanagari) is left alone."""

import pytest

from data.normalize import dedup_key, normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unalive myself", "kill myself"),
        ("he unalived himself", "he killed himself"),
        ("thinking about unaliving", "thinking about killing"),
        ("UNALIVE", "kill"),
        ("kms", "kill myself"),
        ("KMS lol", "kill myself lol"),
        ("kys", "kill yourself"),
        ("su1c1de", "suicide"),
        ("suic1de", "suicide"),
        ("$uicide", "suicide"),
        ("sui.cide", "suicide"),
        ("s u i c i d e", "suicide"),
        ("s-u-i-c-i-d-e", "suicide"),
        ("s.u.i.c.i.d.e", "suicide"),
        ("a s u i c i d e note", "a suicide note"),
        ("sewerslide", "suicide"),
        ("sewer slide", "suicide"),
        ("sewer-slide", "suicide"),
        ("$ewer$lide", "suicide"),
        ("self h@rm", "self harm"),
        ("s3lf harm", "self harm"),
        ("d1e", "die"),
        ("k1ll", "kill"),
        ("ki11", "kill"),
        ("k i l l  m y s e l f", "kill myself"),
        ("ｓｕｉｃｉｄｅ", "suicide"),
        ("khudkhu$hi", "khudkushi"),
        ("khud-khushi", "khudkushi"),
        ("aatm hatya", "aatmahatya"),
        ("aatm-hatya", "aatmahatya"),
        ("atmhatya", "aatmahatya"),
        ("आ त्म ह त्या", "आत्महत्या"),
        ("आ.त्म.ह.त्या", "आत्महत्या"),
        ("आत्म हत्या", "आत्महत्या"),
    ],
)
def test_algospeak_and_leet_map_to_plain_words(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ded",
        "sh",
        "call 14416 now",
        "meet at 3pm",
        "I have 5 apples",
        "100000 rupees, Rs. 3.5 lakh, $5, 10:30, +91 98765 43210",
        "5 kms away",
        "self-harm is real",
        "e.g. well-being",
        "I a m ok",
        "मैं बहुत थक गया हूँ",
    ],
)
def test_ordinary_text_is_untouched(text):
    assert normalize(text) == text


def test_case_is_preserved():
    assert normalize("I Feel SO Alone") == "I Feel SO Alone"


def test_urls_become_placeholder():
    assert normalize("see https://example.com/a?b=1 now") == "see [URL] now"
    assert normalize("www.foo.in/x and bit.ly/abc") == "[URL] and [URL]"


def test_mentions_become_placeholder_but_emails_do_not():
    assert normalize("@rahul_99 call me") == "[USER] call me"
    assert normalize("mail a@b.com") == "mail a@b.com"


def test_zero_width_inside_word_removed():
    assert normalize("sui\u200bcide") == "suicide"
    assert normalize("\ufeffhel\u2060lo\u200d") == "hello"


def test_control_chars_removed_and_newlines_become_spaces():
    assert normalize("line one\nline\ttwo\x00!\r\n") == "line one line two!"


def test_whitespace_collapsed_and_stripped():
    assert normalize("  too    many   spaces  ") == "too many spaces"


def test_devanagari_marks_survive():
    text = "मुझे ज़िंदगी से नफ़रत है, आत्महत्या"
    out = normalize(text)
    for mark in ("\u0941", "\u0947", "\u093c", "\u094d", "\u093e"):
        assert mark in out
    assert normalize("आत्\u200dमहत्या") == "आत्महत्या"


def test_runs_are_squeezed_to_three():
    assert normalize("soooooo sad!!!!!!") == "sooo sad!!!"
    assert normalize("😭😭😭😭😭") == "😭😭😭"
    assert normalize("❤️❤️❤️❤️❤️") == "❤️❤️❤️"
    assert normalize("sooo") == "sooo"


def test_mojibake_repaired():
    assert normalize("donâ€™t") in {"don't", "don\u2019t"}


def test_dedup_key_ignores_case_punctuation_emoji_links():
    a = dedup_key("Don't GO!!! 😭😭 https://t.co/x @bob")
    b = dedup_key("dont go")
    assert a == b == "dont go"
    assert dedup_key("मैं ठीक नहीं हूँ।") == dedup_key("मैं ठीक नहीं हूँ")


def test_dedup_key_keeps_words_and_numbers_distinct():
    assert dedup_key("call 14416") != dedup_key("call 14417")
    assert dedup_key("I am fine") != dedup_key("I am not fine")
