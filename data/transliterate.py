"""Devanagari <-> Latin Hindi, the way people type it, for training augmentation and robustness tests.

Hinglish writers romanise by ear: no diacritics, long vowels unmarked, and the inherent vowel dropped where it
is not spoken ("लगता" -> "lagta", not "lagatA"). indic-transliteration does the letter mapping (ITRANS); this
module adds Hindi schwa deletion before it and folds ITRANS's case-coded letters into casual spelling after.
Latin -> Devanagari goes through ITRANS as is: it is cruder, which is fine for a perturbation test.
"""

from __future__ import annotations

import re
from functools import lru_cache

from indic_transliteration import sanscript

VIRAMA = "\u094d"
NUKTA = "\u093c"
CONSONANTS = {chr(c) for c in range(0x0915, 0x093A)} | {chr(c) for c in range(0x0958, 0x0960)}
VOWEL_SIGNS = {chr(c) for c in range(0x093E, 0x094D)} | {"\u0962", "\u0963"}
MODIFIERS = {"\u0901", "\u0902", "\u0903"}  # candrabindu, anusvara, visarga
DEVANAGARI_WORD = re.compile(r"[\u0900-\u097f]+")
LOANWORD_VOWELS = str.maketrans({"\u0911": "\u0913", "\u0949": "\u094b", "\u090d": "\u090f", "\u0945": "\u0947"})
"""Candra o/e (डॉक्टर, ऑफिस) -> plain o/e, which ITRANS knows."""

STRAY_NUKTA = re.compile(f"(?<![कखगजडढफय]){NUKTA}")
"""A nukta on a letter ITRANS has no dotted form for (ल़ in dialect spellings): read as the plain letter."""

# ITRANS letters -> casual romanisation, longest first.
CASUAL = [
    ("RRi", "ri"), ("RRI", "ri"), ("LLi", "li"), ("~N", "n"), ("~n", "n"), (".N", "n"), (".n", "n"),
    (".D", "d"), (".Dh", "rh"), (".a", ""), (".h", ""), ("Ch", "chh"), ("sh", "sh"), ("Sh", "sh"),
    ("GY", "gy"), ("x", "ksh"), ("M", "n"), ("H", "h"), ("A", "a"), ("I", "i"), ("U", "u"),
    ("T", "t"), ("D", "d"), ("N", "n"), ("K", "kh"), ("G", "gh"), ("J", "z"), ("L", "l"),
]
CASUAL_PATTERN = re.compile("|".join(re.escape(k) for k, _ in sorted(CASUAL, key=lambda kv: -len(kv[0]))))
CASUAL_MAP = dict(CASUAL)


def _aksharas(word: str) -> list[list[str]]:
    """Split a Devanagari word into syllable units: a consonant (+nukta) with its sign/virama, or a vowel."""
    units: list[list[str]] = []
    for ch in word:
        if ch in CONSONANTS or not units or ch not in VOWEL_SIGNS | MODIFIERS | {VIRAMA, NUKTA}:
            units.append([ch])
        else:
            units[-1].append(ch)
    return units


def _has_schwa(unit: list[str]) -> bool:
    """A consonant unit that carries the inherent vowel (no vowel sign, no virama)."""
    return unit[0] in CONSONANTS and not any(c in VOWEL_SIGNS or c == VIRAMA for c in unit[1:])


def delete_schwas(word: str) -> str:
    """Mark the unspoken inherent vowels with a virama: word-finally, and medially in V C(ə) C V (Ohala's rule)."""
    units = _aksharas(word)
    if len(units) < 2:
        return word
    drop = [False] * len(units)
    if _has_schwa(units[-1]) and not any(c in MODIFIERS for c in units[-1]):
        drop[-1] = True
    for i in range(len(units) - 2, 0, -1):  # right to left, so a deletion protects the schwa before it
        prev_voiced = units[i - 1][-1] != VIRAMA
        nxt = units[i + 1]
        next_full = nxt[0] in CONSONANTS and not drop[i + 1] and VIRAMA not in nxt
        if _has_schwa(units[i]) and prev_voiced and next_full and not any(c in MODIFIERS for c in units[i]):
            drop[i] = True
    return "".join("".join(u) + (VIRAMA if d else "") for u, d in zip(units, drop, strict=True))


@lru_cache(maxsize=50_000)
def _word_to_latin(word: str) -> str:
    word = STRAY_NUKTA.sub("", word.translate(LOANWORD_VOWELS))
    itrans = sanscript.transliterate(delete_schwas(word), sanscript.DEVANAGARI, sanscript.ITRANS)
    casual = CASUAL_PATTERN.sub(lambda m: CASUAL_MAP[m.group(0)], itrans)
    return casual.lower().replace("^", "")


def to_latin(text: str) -> str:
    """Romanise the Devanagari words of `text` as a Hinglish writer would; other characters stay as they are."""
    text = text.replace("।", ".").replace("॥", ".")
    return DEVANAGARI_WORD.sub(lambda m: _word_to_latin(m.group(0)), text)


def to_devanagari(text: str) -> str:
    """Write Latin words in Devanagari (ITRANS reading of lower-cased text: crude, for perturbation tests)."""
    return re.sub(
        r"[A-Za-z]+",
        lambda m: sanscript.transliterate(m.group(0).lower(), sanscript.ITRANS, sanscript.DEVANAGARI),
        text,
    )


def has_devanagari(text: str) -> bool:
    return DEVANAGARI_WORD.search(text) is not None
