"""Model-input normalisation.

The original text is kept elsewhere for display and explanation offsets, so
this module is free to rewrite: it repairs encoding damage, drops invisible
characters, and undoes the obfuscations people use to get past keyword filters
(leetspeak, algospeak, spaced-out letters) so the model sees plain words.
Case is preserved because the encoder's tokenizer handles it.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import ftfy
import yaml

_DATA_FILE = Path(__file__).with_name("algospeak.yaml")

# Devanagari letters plus vowel signs, nukta and virama (not digits, dandas).
# Python's \w misses the combining marks, so word edges need this range too.
_DEVA = "\u0900-\u0963\u0971-\u097f"
_START = rf"(?<![^\W_])(?<![{_DEVA}])"
_END = rf"(?![^\W_]|[{_DEVA}])"

# Zero-width, bidi and control characters are deleted; line breaks and tabs
# become spaces so words on separate lines stay separate.
_INVISIBLE: dict[int, str | None] = dict.fromkeys(
    [
        *range(0x20),
        *range(0x7F, 0xA0),
        0xAD,
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        0xFEFF,
    ]
)
_INVISIBLE.update(dict.fromkeys(map(ord, "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85"), " "))

_FTFY = ftfy.TextFixerConfig(explain=False)
# A character (with optional emoji modifier) repeated 4+ times; digits are
# exempt so amounts like 100000 survive.
_RUN = re.compile(r"([^\d\s][\ufe0f\U0001f3fb-\U0001f3ff]?)\1{3,}")
_URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|in|io|ly|co|me|gl|gg)/\S*",
    re.IGNORECASE,
)
_MENTION = re.compile(r"(?<![\w.@])@\w+")
# Runs of single letters / Devanagari syllables: "k i l l", "आ त्म ह त्या".
_SHORT_UNIT = rf"(?:[a-z](?![a-z])|[{_DEVA}]{{1,6}}(?![{_DEVA}]))"
_SPACED = re.compile(rf"{_START}{_SHORT_UNIT}(?:[\s.\-_*]{{1,3}}{_SHORT_UNIT})+{_END}", re.IGNORECASE)
# Words broken by punctuation without spaces: "sui.cide", "आ.त्म.ह.त्या".
_ANY_UNIT = rf"(?:[^\W_]|[{_DEVA}@$])+"
_DOTTED = re.compile(rf"{_START}{_ANY_UNIT}(?:[.\-_*·•]+{_ANY_UNIT})+")
_UNIT_SEP = re.compile(r"[\s.\-_*·•]+")
_PHRASE_SEP = r"[\s._-]*"
_WS = re.compile(r"\s+")


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _load() -> tuple[dict, dict, set[str], list[dict[int, str]]]:
    """Read the YAML lexicons once. Phrase keys join the lexicon so split or
    leet-written algospeak ("$ewer$lide") is first rebuilt, then mapped."""
    raw = yaml.safe_load(_DATA_FILE.read_text(encoding="utf-8"))
    phrases = {_fold(k): _fold(v) for k, v in raw["phrases"].items()}
    abbrevs = {_fold(k): _fold(v) for k, v in raw["abbreviations"].items()}
    lexicon = {_fold(w) for w in raw["lexicon"]}
    lexicon |= {k.replace(" ", "") for k in phrases}
    leet = {str(k): str(v) for k, v in raw["leet"].items()}
    alt = leet | {str(k): str(v) for k, v in raw["leet_alt"].items()}
    return phrases, abbrevs, lexicon, [str.maketrans(leet), str.maketrans(alt)]


_PHRASE_KEYS, _ABBREVS, _LEXICON, _LEET_TABLES = _load()
_PHRASES = {k.replace(" ", ""): v for k, v in _PHRASE_KEYS.items()}
_MAX_WORD = max(map(len, _LEXICON))
_LEET_SYMBOLS = frozenset(chr(c) for c in _LEET_TABLES[1])
# A token holding at least one leet symbol ("su1c1de", "$uicide", "h@rm").
_SYM = re.escape("".join(sorted(_LEET_SYMBOLS)))
_TOK = rf"[\w{_SYM}]"
_LEET_TOKEN = re.compile(rf"(?<!{_TOK}){_TOK}*[{_SYM}]{_TOK}*(?!{_TOK})")
_PHRASE_ALTS = "|".join(
    _PHRASE_SEP.join(map(re.escape, k.split())) for k in sorted(_PHRASE_KEYS, key=len, reverse=True)
)
_PHRASE = re.compile(rf"{_START}(?:{_PHRASE_ALTS}){_END}", re.IGNORECASE)
_ABBREV = re.compile(
    rf"(?<!\d)(?<!\d\s){_START}(?:{'|'.join(map(re.escape, _ABBREVS))}){_END}",
    re.IGNORECASE,
)


def _lexicon_word(chunk: str) -> str | None:
    """The lexicon word `chunk` spells, directly or after leet decoding."""
    key = chunk.casefold()
    if key in _LEXICON:
        return key
    if len(key) > _MAX_WORD or _LEET_SYMBOLS.isdisjoint(key):
        return None
    for table in _LEET_TABLES:
        decoded = key.translate(table)
        if decoded in _LEXICON:
            return decoded
    return None


def _decode_leet(match: re.Match) -> str:
    token = match.group(0)
    if not any(c.isalpha() for c in token):
        return token
    return _lexicon_word(token) or token


def _rejoin(match: re.Match) -> str:
    """Join adjacent units (2+) that spell a lexicon word, longest first;
    leave the run untouched when nothing joins, so ordinary text is safe."""
    units = [u for u in _UNIT_SEP.split(match.group(0)) if u]
    out: list[str] = []
    i, changed = 0, False
    while i < len(units):
        for j in range(min(len(units), i + _MAX_WORD), i + 1, -1):
            word = _lexicon_word("".join(units[i:j]))
            if word:
                out.append(word)
                i, changed = j, True
                break
        else:
            out.append(units[i])
            i += 1
    return " ".join(out) if changed else match.group(0)


def _phrase(match: re.Match) -> str:
    return _PHRASES[_UNIT_SEP.sub("", match.group(0)).casefold()]


def normalize(text: str) -> str:
    """Return the string the model sees for `text` (see module docstring)."""
    text = ftfy.fix_text(text, _FTFY)
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = _RUN.sub(r"\1\1\1", text)
    text = _URL.sub(" [URL] ", text)
    text = _MENTION.sub("[USER]", text)
    text = _LEET_TOKEN.sub(_decode_leet, text)
    text = _SPACED.sub(_rejoin, text)
    text = _DOTTED.sub(_rejoin, text)
    text = _ABBREV.sub(lambda m: _ABBREVS[m.group(0).casefold()], text)
    text = _PHRASE.sub(_phrase, text)
    return _WS.sub(" ", text).strip()


_PLACEHOLDER = re.compile(r"\[(?:URL|USER)\]")
_APOSTROPHE = re.compile(r"['\u2018\u2019`]")
_NON_WORD = re.compile(rf"[^\w{_DEVA}]+|_+")


def dedup_key(text: str) -> str:
    """Aggressive key for exact-duplicate detection: texts that differ only in
    case, punctuation, emoji, links or mentions get the same key."""
    key = _PLACEHOLDER.sub(" ", normalize(text)).casefold()
    key = _NON_WORD.sub(" ", _APOSTROPHE.sub("", key))
    return " ".join(key.split())
