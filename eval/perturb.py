"""Seeded text perturbations of the kinds real users produce, for the robustness suite (`eval/robustness.py`).

Each perturbation is `(text, rng) -> text`, deterministic for a seeded `random.Random`. Some are obfuscations
people use to slip past keyword filters (leetspeak, algospeak, spacing, zero-width characters), some are plain
typing (typos, casing, emoji), and two switch the script Hindi is written in. The model's normaliser
(`data/normalize.py`) undoes some of them on purpose; the suite measures what is left after it.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from data.transliterate import has_devanagari, to_devanagari, to_latin

Perturb = Callable[[str, random.Random], str]

_DEVA = "\u0900-\u0963\u0971-\u097f"
WORD = re.compile(rf"(?:[^\W\d_]|[{_DEVA}])+")
"""Runs of letters, Devanagari combining marks included (Python's \\w misses them)."""


def _words(text: str, min_len: int = 1) -> list[re.Match]:
    """Words of at least `min_len` letters, a Devanagari syllable with its marks counting as one."""
    return [m for m in WORD.finditer(text) if len(_clusters(m.group(0))) >= min_len]


def _pick(rng: random.Random, items: list, rate: float) -> list:
    """Each item with probability `rate`, and at least one when there are any, so a perturbation rarely no-ops."""
    if not items:
        return []
    chosen = [x for x in items if rng.random() < rate]
    return chosen or [rng.choice(items)]


def _replace_spans(text: str, edits: dict[tuple[int, int], str]) -> str:
    out, last = [], 0
    for (start, end), new in sorted(edits.items()):
        out += [text[last:start], new]
        last = end
    return "".join(out) + text[last:]


def _clusters(word: str) -> list[str]:
    """User-perceived letters: a base character with its combining marks (Devanagari vowel signs, virama)."""
    units: list[str] = []
    for ch in word:
        if units and (unicodedata.category(ch).startswith("M") or units[-1].endswith("\u094d")):
            units[-1] += ch
        else:
            units.append(ch)
    return units


# -- leetspeak ---------------------------------------------------------------------------------------------------
LEET = {"a": "4@", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7", "l": "1", "g": "9", "b": "8"}


def leetspeak(text: str, rng: random.Random) -> str:
    """Digits and symbols for Latin letters in some words ("h3lp", "$0 t1r3d"): the oldest filter evasion, and
    common in gaming / social-media writing."""
    edits = {}
    for m in _pick(rng, [m for m in _words(text, 3) if any(c.lower() in LEET for c in m.group(0))], 0.4):
        chars = list(m.group(0))
        spots = [i for i, c in enumerate(chars) if c.lower() in LEET]
        for i in _pick(rng, spots, 0.6):
            chars[i] = rng.choice(LEET[chars[i].lower()])
        edits[m.span()] = "".join(chars)
    return _replace_spans(text, edits)


# -- algospeak ---------------------------------------------------------------------------------------------------
ALGOSPEAK: dict[str, tuple[str, ...]] = {
    "suicide": ("sewerslide", "su1c1de", "suic!de", "s*icide", "sui-cide"),
    "suicidal": ("su1c1dal", "sewerslidal", "suic!dal"),
    "kill": ("k!ll", "unalive", "k*ll", "ki11"),
    "killing": ("k!lling", "unaliving"),
    "die": ("d1e", "d!e", "unalive"),
    "dying": ("dy!ng", "unaliving"),
    "dead": ("d3ad", "unalived"),
    "death": ("d3ath", "unalive"),
    "self harm": ("sh", "s/h", "self h@rm", "$elf harm"),
    "self-harm": ("sh", "s/h", "self-h@rm"),
    "cutting": ("cutt!ng", "c*tting"),
    "overdose": ("od", "0verdose"),
    "hang": ("h@ng",),
    "marna": ("m@rna", "mrna", "mar-na"),
    "marne": ("m@rne", "mrne"),
    "maut": ("m@ut", "m0ut"),
    "aatmahatya": ("a@tmahatya", "aatm-hatya", "aatmah@tya"),
    "khudkushi": ("khudkush1", "khud-kushi", "khudkush!"),
    "आत्महत्या": ("a@tmahatya", "आत्म-हत्या", "आ.त्म.ह.त्या"),
    "खुदकुशी": ("khudkush1", "खुद-कुशी"),
    "ख़ुदकुशी": ("khudkush1", "ख़ुद-कुशी"),
    "मरना": ("m@rna", "मर-ना"),
    "मौत": ("m@ut",),
}
"""Risk words -> the euphemisms and masked spellings communities use for them (TikTok-style "unalive",
"sewerslide", symbol masking). Some the normaliser maps back, some it does not ("sh", "k!ll")."""

_NUKTA_LETTERS = {unicodedata.normalize("NFD", chr(c)): chr(c) for c in range(0x0958, 0x0960)}
_ALGO_KEYS = {
    variant: key
    for key in ALGOSPEAK
    for variant in (key, re.sub("|".join(_NUKTA_LETTERS), lambda m: _NUKTA_LETTERS[m.group(0)], key))
}
"""Nukta letters in both spellings (ख़ is one code point, or ख plus a nukta), so either form in the data matches."""
_ALGO = re.compile(
    rf"(?<![\w{_DEVA}])(?:{'|'.join(re.escape(k) for k in sorted(_ALGO_KEYS, key=len, reverse=True))})(?![\w{_DEVA}])",
    re.IGNORECASE,
)


def algospeak(text: str, rng: random.Random) -> str:
    """Each risk word from ALGOSPEAK written as one of its euphemisms / masked spellings; text without one is
    returned unchanged. This is how people talk about self-harm on moderated platforms."""
    return _ALGO.sub(lambda m: rng.choice(ALGOSPEAK[_ALGO_KEYS[m.group(0).lower()]]), text)


# -- spacing -----------------------------------------------------------------------------------------------------
def spacing(text: str, rng: random.Random) -> str:
    """Doubled spaces, some spaces dropped ("iamsotired") and one word spaced out letter by letter
    ("s u i c i d e", a risk word when there is one): hurried typing, and the spaced form dodges keyword filters."""
    parts = re.split(r"(\s+)", text)  # even: non-space runs, odd: whitespace
    words = [(i, m) for i in range(0, len(parts), 2) for m in _words(parts[i], 4)]
    risky = [(i, m) for i, m in words if _ALGO.fullmatch(m.group(0))]
    if words:
        i, m = rng.choice(risky or words)
        parts[i] = parts[i][: m.start()] + " ".join(_clusters(m.group(0))) + parts[i][m.end() :]
    for i in range(1, len(parts), 2):
        roll = rng.random()
        parts[i] = "" if roll < 0.15 else parts[i] + " " if roll < 0.35 else parts[i]
    return "".join(parts)


# -- casing ------------------------------------------------------------------------------------------------------
def _swap(ch: str, upper: bool) -> str:
    """Change case only where it keeps one character ("ß".upper() is "SS"), so letters stay aligned."""
    new = ch.upper() if upper else ch.lower()
    return new if len(new) == 1 else ch


def _recase(text: str, style: str, rng: random.Random) -> str:
    if style in ("upper", "lower"):
        return "".join(_swap(c, style == "upper") for c in text)
    if style == "title":
        return WORD.sub(lambda m: _swap(m.group(0)[0], True) + "".join(_swap(c, False) for c in m.group(0)[1:]), text)
    return "".join(_swap(c, rng.random() < 0.5) for c in text)


def casing(text: str, rng: random.Random) -> str:
    """ALL CAPS, all lower case, Title Case or random per-letter case: shouting, phone keyboards that never
    capitalise, and mocking "sPoNgEbOb" case. The first style (in random order) that changes the text is used;
    scripts without case (Devanagari) are untouched."""
    styles = ["upper", "lower", "title", "random"]
    rng.shuffle(styles)
    for style in styles:
        new = _recase(text, style, rng)
        if new != text:
            return new
    return text


# -- typos -------------------------------------------------------------------------------------------------------
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(row: int, col: int) -> str:
    near = [(r, k) for r in (row - 1, row, row + 1) for k in (col - 1, col, col + 1) if (r, k) != (row, col)]
    return "".join(_ROWS[r][k] for r, k in near if 0 <= r < len(_ROWS) and 0 <= k < len(_ROWS[r]))


NEIGHBOURS = {ch: _neighbours(row, col) for row, keys in enumerate(_ROWS) for col, ch in enumerate(keys)}
"""QWERTY keys next to each letter: a slipped finger lands on one of these."""


def _typo(word: str, rng: random.Random) -> str:
    units = _clusters(word)
    i = rng.randrange(len(units))
    kind = rng.choice(("neighbour", "drop", "swap", "double"))
    if kind == "neighbour" and units[i].lower() in NEIGHBOURS:
        new = rng.choice(NEIGHBOURS[units[i].lower()])
        units[i] = new.upper() if units[i].isupper() else new
    elif kind == "swap" and len(units) > 1:
        j = i - 1 if i else 1
        units[i], units[j] = units[j], units[i]
    elif kind == "double":
        units[i] += units[i]
    else:
        units[i] = ""
    return "".join(units)


def typos(text: str, rng: random.Random) -> str:
    """Keyboard-neighbour substitutions, dropped, swapped and doubled letters in about one word in eight:
    texts written in distress on a phone are rarely clean. Devanagari letters move as whole syllables."""
    edits = {m.span(): _typo(m.group(0), rng) for m in _pick(rng, _words(text, 3), 0.12)}
    return _replace_spans(text, edits)


# -- emoji -------------------------------------------------------------------------------------------------------
EMOJI = ("😭", "😔", "🙃", "💀", "🥲", "😂", "🙏", "💔", "✨", "😞", "🤡", "🫠", "❤️", "👍🏽")


def emoji(text: str, rng: random.Random) -> str:
    """Emoji between some words: social-media writing is full of them, and a model must read past them
    (including the ironic 💀 and 😂 people add to heavy messages)."""
    parts = re.split(r"(\s+)", text)
    gaps = [*range(1, len(parts), 2), len(parts)]  # between words, and at the end
    for i in sorted(_pick(rng, gaps, 0.2), reverse=True):
        mark = rng.choice(EMOJI)
        if i == len(parts):
            parts.append(" " + mark)
        else:
            parts[i] = " " + mark + parts[i]
    return "".join(parts)


# -- zero-width --------------------------------------------------------------------------------------------------
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")


def zero_width(text: str, rng: random.Random) -> str:
    """Invisible characters inside words (zero-width space / non-joiner / joiner, BOM): the text looks the same to
    a reader but no longer matches a keyword list, a known trick for dodging filters."""
    edits = {}
    for m in _pick(rng, _words(text, 2), 0.4):
        units = _clusters(m.group(0))
        cut = rng.randrange(1, len(units))
        edits[m.span()] = "".join(units[:cut]) + rng.choice(ZERO_WIDTH) + "".join(units[cut:])
    return _replace_spans(text, edits)


# -- transliteration -------------------------------------------------------------------------------------------
def translit_to_latin(text: str, rng: random.Random) -> str:
    """Hindi in Devanagari rewritten as casual Hinglish: the same person writes both, depending on keyboard."""
    return to_latin(text)


def translit_to_devanagari(text: str, rng: random.Random) -> str:
    """Hinglish written in Devanagari (a crude ITRANS reading): the reverse switch of script."""
    return to_devanagari(text)


# -- registry ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Perturbation:
    """A perturbation and the texts it applies to: `langs` (None: every language) and an optional test."""

    fn: Perturb
    langs: frozenset[str] | None = None
    requires: Callable[[str], bool] | None = None

    def applies(self, text: str, lang: str) -> bool:
        return (self.langs is None or lang in self.langs) and (self.requires is None or self.requires(text))

    def __call__(self, text: str, rng: random.Random) -> str:
        return self.fn(text, rng)


PERTURBATIONS: dict[str, Perturbation] = {
    "leetspeak": Perturbation(leetspeak),
    "algospeak": Perturbation(algospeak),
    "spacing": Perturbation(spacing),
    "casing": Perturbation(casing),
    "typos": Perturbation(typos),
    "emoji": Perturbation(emoji),
    "zero_width": Perturbation(zero_width),
    "translit_to_latin": Perturbation(translit_to_latin, frozenset({"hi"}), has_devanagari),
    "translit_to_devanagari": Perturbation(translit_to_devanagari, frozenset({"hi-Latn"})),
}


def perturb(name: str, text: str, seed: int | str = 0) -> str:
    """One perturbation of one text with its own seeded generator (the form tests and spot checks want)."""
    return PERTURBATIONS[name](text, random.Random(seed))
