"""Language tagging from script and vocabulary, with no model download.

Tags: "hi" (Devanagari), "hi-Latn" (romanised Hindi / Hinglish), "en",
"other" (another script, or no letters). The tag routes texts to per-language
evaluation slices, so it must be cheap and predictable rather than perfect.

Latin-script text is scored word by word against the lists in
langid_words.yaml. Words in none of the lists fall back to their ending:
"chaloge", "kariye" and "sabziwala" look Hindi, "wondering" and "sadness" look
English; either way this is weak evidence. Each clause goes to the language its
words favour, and the text to the language of most of its clauses, so an
English post with one Hindi sentence stays en while "kal exam hai and I
haven't studied" is hi-Latn. Quoted lines count for little. Text that shows
signs of obfuscation ("s3lf h@rm", "s u i c i d e") is repaired by
data.normalize first, so its fragments are not mistaken for Hinglish chat
shorthand.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml

from data.normalize import normalize

_WORD_FILE = Path(__file__).with_name("langid_words.yaml")

# Kinds of word. Weights are below; "ambiguous" words are settled per clause.
_HINDI, _LOAN, _AMBIGUOUS = "hindi", "loan", "ambiguous"
_ENGLISH, _ENGLISH_CONTENT = "english", "english content"
_HINDI_SHAPE, _ENGLISH_SHAPE = "hindi shape", "english shape"  # unlisted words


def _load_kinds() -> dict[str, str]:
    """word -> kind, from the YAML lists; a word in two lists takes the kind
    of the later one in this order, so the more cautious kind wins."""
    lists = yaml.safe_load(_WORD_FILE.read_text(encoding="utf-8"))
    kinds: dict[str, str] = {}
    for name, kind in [
        ("english_content", _ENGLISH_CONTENT),
        ("english", _ENGLISH),
        ("hinglish", _HINDI),
        ("hinglish_verbs", _HINDI),
        ("hinglish_content", _HINDI),
        ("loanwords", _LOAN),
        ("ambiguous", _AMBIGUOUS),
    ]:
        kinds.update(dict.fromkeys(" ".join(lists[name]).split(), kind))
    return kinds


_KIND = _load_kinds()

# A clause is Hinglish when its Hindi score exceeds this share of its English
# score: two clear Hindi words outweigh six English ones (code-mixed text is
# hi-Latn), but one Hindi word in an ordinary English sentence does not flip it.
_HINGLISH_RATIO = 0.3
# A clause with a single Hindi word needs more: "I love you jaan" stays en.
_LONE_WORD_RATIO = 0.5
_LOAN_WEIGHT = 0.5  # Hindi words that Indian English borrows freely
_CONTENT_WEIGHT = 0.5  # English nouns and such, which Hinglish borrows freely
_AMBIGUOUS_WEIGHT = 0.5  # "main", "to", "the": also ordinary English
_SUFFIX_WEIGHT = 0.5  # an unlisted word that only looks Hindi or English
_MIN_WEAK_HINDI = 1.5  # Hindi evidence needed when no word is clearly Hindi
# Quoted song lines and reported speech say little about the language the
# writer is using, once there is enough unquoted text to go by.
_QUOTE_WEIGHT = 0.25
_MIN_UNQUOTED_WORDS = 4
# Share of the words that must sit in Hinglish clauses.
_HINDI_SHARE = 0.5

# Endings of unlisted words: Hindi verb forms (-iye, -enge, -oge, -unga,
# -kar), agent nouns (-wala), plurals (-iyan), and letter pairs English
# spelling hardly uses (aa, bh, kh, dh, jh); English derivational endings.
_HINDI_ENDING = re.compile(
    r"\w*(?:iye|iyega|enge|engi|oge|ogi|unga|ungi|waa?l[aeio]n?|kar|iyaa?n|iyon)$|\w*(?:aa|bh|kh|dh|jh|chh)\w*"
)
_ENGLISH_ENDING = re.compile(
    r"\w{2,}(?:ing|ings|tion|tions|sion|ness|ment|ments|ly|ity|ful|less|ous|ive|able|ed|est|er|ers|hood)"
)

_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+|\[(?:url|user)\]")
# Leetspeak inside a word ("s3lf", "h@rm", "$uicide") or spaced-out letters.
_OBFUSCATED = re.compile(r"[a-z][0-9@$]|[@$][a-z]|\b[a-z][ .*_-]+[a-z][ .*_-]+[a-z]\b", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"[.!?;:|\n]+(?:\s|$)|[,(){}\[\]]")
_QUOTED = re.compile(r"(?<!\w)['\u2018\"\u201c]([^'\u2018\u2019\"\u201c\u201d]+)['\u2019\"\u201d](?!\w)")
_DEVA_CHAR = re.compile(r"[\u0900-\u0963\u0971-\u097f\ua8e0-\ua8ff]")
_LATIN_CHAR = re.compile(r"[a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")
_OTHER_CHAR = re.compile(r"[^\W\d_a-zA-Z\u00c0-\u024f\u1e00-\u1eff\u0900-\u097f\ua8e0-\ua8ff]")
_LATIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_DEVA_WORD = re.compile(r"[\u0900-\u0963\u0971-\u097f]+")
_STRETCH = re.compile(r"(.)\1{2,}")


@lru_cache(maxsize=1 << 16)
def _kind(word: str) -> str | None:
    """The kind of `word`: from the lists (also with stretched letters
    undone), else from its shape, else None."""
    kind = _KIND.get(word)
    if kind:
        return kind
    if _STRETCH.search(word):
        kind = _KIND.get(_STRETCH.sub(r"\1", word)) or _KIND.get(_STRETCH.sub(r"\1\1", word))
        if kind:
            return kind
    if _ENGLISH_ENDING.fullmatch(word):
        return _ENGLISH_SHAPE
    if _HINDI_ENDING.fullmatch(word):
        return _HINDI_SHAPE
    return None


def _scores(text: str) -> tuple[float, float, float, float, int]:
    """(clear Hindi, all Hindi, English, ambiguous, word count) evidence."""
    kinds = [_kind(w) for w in _LATIN_WORD.findall(text.replace("\u2019", "'"))]
    deva = len(_DEVA_WORD.findall(text))
    clear = kinds.count(_HINDI) + deva
    hindi = clear + _LOAN_WEIGHT * kinds.count(_LOAN) + _SUFFIX_WEIGHT * kinds.count(_HINDI_SHAPE)
    english = (
        kinds.count(_ENGLISH)
        + _CONTENT_WEIGHT * kinds.count(_ENGLISH_CONTENT)
        + _SUFFIX_WEIGHT * kinds.count(_ENGLISH_SHAPE)
    )
    return clear, hindi, english, _AMBIGUOUS_WEIGHT * kinds.count(_AMBIGUOUS), len(kinds) + deva


def _is_hinglish(text: str) -> bool:
    """Score Latin-script text clause by clause (Devanagari words count as
    Hindi). A clause is Hinglish when its Hindi score beats _HINGLISH_RATIO
    times its English score, English when it has any English word, otherwise
    neutral. The text is Hinglish when Hinglish clauses hold at least
    _HINDI_SHARE of the words outside neutral clauses."""
    quoted = _QUOTED.findall(text)
    clauses = _CLAUSE_BREAK.split(_QUOTED.sub(" | ", text) if quoted else text)
    enough_unquoted = len(_LATIN_WORD.findall(" ".join(clauses))) >= _MIN_UNQUOTED_WORDS
    quote_weight = _QUOTE_WEIGHT if enough_unquoted else 1.0
    clear = hindi = hindi_words = english_words = 0.0
    for clause, weight in [*((c, 1.0) for c in clauses), *((q, quote_weight) for q in quoted)]:
        c_clear, c_hindi, c_english, c_ambiguous, words = _scores(clause)
        clear += c_clear
        hindi += c_hindi
        # Ambiguous words ("main", "to") side with the clearer language.
        if c_hindi > c_english:
            c_hindi, c_ambiguous = c_hindi + c_ambiguous, 0.0
        # Loanwords and Hindi-looking endings need a clear Hindi word beside
        # them to outvote English ("my nani makes the best aloo paratha").
        ratio = _HINGLISH_RATIO if c_hindi >= 2 else _LONE_WORD_RATIO
        if c_hindi >= 1 and c_hindi > ratio * (c_english + c_ambiguous) and (c_clear or not c_english):
            hindi_words += weight * words
        elif c_english:
            english_words += weight * words
    enough = clear >= 1 or hindi >= _MIN_WEAK_HINDI
    return enough and hindi_words > 0 and hindi_words >= _HINDI_SHARE * (hindi_words + english_words)


def detect_lang(text: str) -> str:
    """Tag `text` as "en", "hi", "hi-Latn" or "other".

    The script with most letters wins; Latin text is then hi-Latn when most
    of it sits in clauses whose Hinglish vocabulary outweighs their English
    vocabulary (see _is_hinglish).
    """
    if _OBFUSCATED.search(text):
        text = normalize(text)
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
