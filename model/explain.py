"""Which words drove a score, as character offsets into the original text, by occlusion.

Each word is removed in turn and the text re-scored; the words whose removal lowers the top signal most are
the explanation. It needs nothing from the model but scores, so it works for every backend, and its offsets
always slice the text the moderator sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

WORD = re.compile(r"\S+")
MAX_WORDS = 96
"""Only the first words are occluded: the model reads a bounded window anyway."""


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
    `base` holds each text's unoccluded value. All variants of all texts are scored in one call."""
    words = [[m.span() for m in WORD.finditer(t)][:MAX_WORDS] for t in texts]
    variants, owners, owner_signals = [], [], []
    for i, (text, spans) in enumerate(zip(texts, words, strict=True)):
        if len(spans) < 2:
            continue  # a single word explains itself; nothing to compare it against
        for start, end in spans:
            variants.append(text[:start] + text[end:])
            owners.append(i)
            owner_signals.append(signals[i])
    occluded = score(variants, owner_signals) if variants else np.zeros(0)
    result: list[list[Span]] = [[] for _ in texts]
    cursor = 0
    for i, spans in enumerate(words):
        if len(spans) < 2:
            if spans and base[i] > min_weight:
                s, e = spans[0]
                result[i] = [Span(s, e, texts[i][s:e], float(base[i]))]
            continue
        drops = base[i] - occluded[cursor : cursor + len(spans)]
        cursor += len(spans)
        order = np.argsort(-drops, kind="stable")[:top_k]
        result[i] = sorted(
            (
                Span(spans[j][0], spans[j][1], texts[i][spans[j][0] : spans[j][1]], float(drops[j]))
                for j in order
                if drops[j] >= min_weight
            ),
            key=lambda s: s.start,
        )
    return result
