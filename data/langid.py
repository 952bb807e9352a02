"""Language tagging from script and vocabulary, with no model download.

Tags: "hi" (Devanagari), "hi-Latn" (romanised Hindi / Hinglish), "en",
"other" (another script, or no letters). The tag routes texts to per-language
evaluation slices, so it must be cheap and predictable rather than perfect.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import yaml

_WORD_FILE = Path(__file__).with_name("langid_words.yaml")
_WORDS = {k: frozenset(v.split()) for k, v in yaml.safe_load(_WORD_FILE.read_text(encoding="utf-8")).items()}
_AMBIGUOUS = _WORDS["ambiguous"]
_HINGLISH = _WORDS["hinglish"] - _AMBIGUOUS
_LOANWORDS = _WORDS["loanwords"] - _AMBIGUOUS
_ENGLISH = _WORDS["english"] - _AMBIGUOUS - _HINGLISH - _LOANWORDS

# Hinglish wins when its score exceeds this share of the English score: two
# clear Hindi words outweigh five English ones (code-mixed text is hi-Latn),
# but one Hindi word in an ordinary English sentence does not flip it.
_HINGLISH_RATIO = 0.35

_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+")
_DEVA_CHAR = re.compile(r"[\u0900-\u0963\u0971-\u097f\ua8e0-\ua8ff]")
_LATIN_CHAR = re.compile(r"[a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")
_OTHER_CHAR = re.compile(r"[^\W\d_a-zA-Z\u00c0-\u024f\u1e00-\u1eff\u0900-\u097f\ua8e0-\ua8ff]")
_LATIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_DEVA_WORD = re.compile(r"[\u0900-\u0963\u0971-\u097f]+")
_STRETCH = re.compile(r"(.)\1{2,}")


def _lookup(word: str) -> str | None:
    """Which list `word` is in, also trying it with stretched letters undone."""
    for candidate in (word, _STRETCH.sub(r"\1", word), _STRETCH.sub(r"\1\1", word)):
        if candidate in _HINGLISH:
            return "hinglish"
        if candidate in _LOANWORDS:
            return "loan"
        if candidate in _AMBIGUOUS:
            return "ambiguous"
        if candidate in _ENGLISH:
            return "english"
    return None


def _is_hinglish(text: str) -> bool:
    """Score Latin-script text; Devanagari words in it count as Hindi."""
    kinds = [_lookup(w) for w in _LATIN_WORD.findall(text.replace("\u2019", "'"))]
    strong = kinds.count("hinglish") + len(_DEVA_WORD.findall(text))
    ambiguous = 0.5 * kinds.count("ambiguous")
    hindi = strong + 0.5 * kinds.count("loan") + (ambiguous if strong else 0)
    english = kinds.count("english") + (0 if strong else ambiguous)
    return hindi >= 1 and hindi > _HINGLISH_RATIO * english


def detect_lang(text: str) -> str:
    """Tag `text` as "en", "hi", "hi-Latn" or "other".

    The script with most letters wins; Latin text is then hi-Latn when its
    Hinglish vocabulary outweighs its English vocabulary (see _HINGLISH_RATIO).
    """
    text = _NOISE.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    deva = len(_DEVA_CHAR.findall(text))
    latin = len(_LATIN_CHAR.findall(text))
    other = len(_OTHER_CHAR.findall(text))
    if other >= max(deva, latin):  # also catches "no letters at all"
        return "other"
    if deva >= latin:
        return "hi"
    return "hi-Latn" if _is_hinglish(text) else "en"


def detect_lang_batch(texts: Iterable[str]) -> list[str]:
    """detect_lang over many texts."""
    return [detect_lang(t) for t in texts]
