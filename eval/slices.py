"""Subsets of an evaluation set a model can fail on quietly: by language, surface, source, tag and text length.

An overall figure hides a model that works for English posts and fails for Hinglish chat or for figurative
language; each slice gets its own figures so such gaps show.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.metrics import HARD_NEGATIVE_TAGS

LENGTH_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<50 chars", 0, 50),
    ("50-149 chars", 50, 150),
    ("150-299 chars", 150, 300),
    ("300+ chars", 300, None),
)
"""(name, lowest length, length it stops before); search queries sit in the first, long posts in the last."""


@dataclass(frozen=True)
class Slice:
    kind: str
    """lang, surface, source, tag or length."""
    value: str
    mask: np.ndarray

    @property
    def n(self) -> int:
        return int(self.mask.sum())


def length_bucket(text: str) -> str:
    size = len(text)
    for name, low, high in LENGTH_BUCKETS:
        if size >= low and (high is None or size < high):
            return name
    raise AssertionError("the buckets cover every length")


def _by_value(kind: str, values: Sequence[str], order: Sequence[str] | None = None) -> list[Slice]:
    """One slice per distinct value, most frequent first unless `order` fixes it."""
    array = np.asarray(values, dtype=object)
    counts = Counter(values)
    names = [v for v in order if v in counts] if order else [v for v, _ in counts.most_common()]
    return [Slice(kind, str(v), array == v) for v in names]


def tag_slices(tags: Sequence[Sequence[str]]) -> list[Slice]:
    """One slice per tag that occurs: the hard-negative tags first (where false alarms come from), then by count."""
    counts = Counter(t for row in tags for t in set(row))
    names = sorted(counts, key=lambda t: (t not in HARD_NEGATIVE_TAGS, -counts[t], t))
    return [Slice("tag", t, np.array([t in row for row in tags], dtype=bool)) for t in names]


def make_slices(
    langs: Sequence[str],
    surfaces: Sequence[str],
    sources: Sequence[str],
    tags: Sequence[Sequence[str]],
    texts: Sequence[str],
) -> list[Slice]:
    """Every slice of an evaluation set, in report order; a value that never occurs gets no slice."""
    return [
        *_by_value("lang", langs, ("en", "hi", "hi-Latn", "other")),
        *_by_value("surface", surfaces),
        *_by_value("source", sources),
        *tag_slices(tags),
        *_by_value("length", [length_bucket(t) for t in texts], [name for name, _, _ in LENGTH_BUCKETS]),
    ]
