"""Which words drove a score, as character offsets into the original text, by occlusion.

Each word is removed in turn and the text re-scored; the words whose removal lowers the top signal most are
the explanation. It needs nothing from the model but scores, so it works for every backend, and its offsets
always slice the text the moderator sees. A text of more than MAX_WORDS words is done in two passes, so the cost
stays bounded and a risk stated late in a long post (which the model reads in windows) is still found: first
runs of consecutive words are removed, then each word of the runs whose removal lowered the signal most.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

WORD = re.compile(r"\S+")
MAX_WORDS = 96
"""Most variants a text is scored in per pass: its words one by one, or runs of its words when it has more."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str
    weight: float
    """How much the signal fell when this word was removed."""

    def to_dict(self) -> dict:
        return asdict(self)


def occlusion_spans(
    texts: Sequence[str],
    signals: Sequence[str],
    base: np.ndarray,
    score: Callable[[list[str], list[str]], np.ndarray],
    top_k: int = 5,
    min_weight: float = 0.02,
) -> list[list[Span]]:
    """Spans for each text. `score(variants, signals)` gives each variant's value of its signal;
    `base` holds each text's unoccluded value. All variants of a pass, over all texts, are scored in one call."""
    words = [[m.span() for m in WORD.finditer(t)] for t in texts]
    units = [spans if len(spans) <= MAX_WORDS else _runs(spans, MAX_WORDS) for spans in words]
    drops = _drops(texts, signals, base, score, units, min_units=2)  # a single word explains itself
    inner: list[list[tuple[int, int]]] = [[] for _ in texts]
    for i, spans in enumerate(words):
        if len(spans) > MAX_WORDS:  # second pass: the words of the runs that mattered most
            top = [units[i][j] for j in np.argsort(-drops[i], kind="stable")[:top_k] if drops[i][j] >= min_weight]
            inner[i] = [w for w in spans if any(a <= w[0] and w[1] <= b for a, b in top)]
    second = _drops(texts, signals, base, score, inner, min_units=1)
    for i, spans in enumerate(inner):
        if len(words[i]) > MAX_WORDS:
            units[i], drops[i] = spans, second[i]
    result: list[list[Span]] = []
    for i, (text, spans) in enumerate(zip(texts, units, strict=True)):
        if len(words[i]) == 1:
            s, e = spans[0]
            result.append([Span(s, e, text[s:e], float(base[i]))] if base[i] > min_weight else [])
            continue
        order = np.argsort(-drops[i], kind="stable")[:top_k]
        chosen = [Span(*spans[j], text[spans[j][0] : spans[j][1]], float(drops[i][j])) for j in order]
        result.append(sorted((s for s in chosen if s.weight >= min_weight), key=lambda s: s.start))
    return result


def _runs(spans: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """`spans` (word offsets) as at most `n` runs of consecutive words, each from its first word's start to its
    last word's end."""
    size = -(-len(spans) // n)
    return [(spans[k][0], spans[min(k + size, len(spans)) - 1][1]) for k in range(0, len(spans), size)]


def _drops(texts, signals, base, score, units, min_units: int) -> list[np.ndarray]:
    """For each text, how much its signal falls when each of its units (character ranges) is removed; empty for a
    text with fewer than `min_units` units. One `score` call for all texts."""
    variants, owner_signals = [], []
    for text, signal, spans in zip(texts, signals, units, strict=True):
        if len(spans) >= min_units:
            variants += [text[:start] + text[end:] for start, end in spans]
            owner_signals += [signal] * len(spans)
    occluded = score(variants, owner_signals) if variants else np.zeros(0)
    out, cursor = [], 0
    for i, spans in enumerate(units):
        n = len(spans) if len(spans) >= min_units else 0
        out.append(base[i] - occluded[cursor : cursor + n])
        cursor += n
    return out
