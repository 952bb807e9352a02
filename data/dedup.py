"""Exact and near-duplicate detection across all sources.

Exact duplicates share `normalize.dedup_key`. Near-duplicates are found with MinHash LSH over character
5-grams of that key (script-agnostic, so it works for Devanagari and Latin alike), and every candidate pair
is confirmed with the exact Jaccard similarity of the shingle sets, so the result does not depend on
LSH luck beyond recall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from datasketch import MinHash, MinHashLSH

SHINGLE = 5
MAX_KEY_CHARS = 4000
"""Long posts are compared on their first 4,000 normalised characters: enough to tell reposts apart."""


def shingles(key: str, k: int = SHINGLE) -> set[str]:
    """Character k-grams of a dedup key (the whole key when shorter than k)."""
    key = key[:MAX_KEY_CHARS]
    if len(key) <= k:
        return {key}
    return {key[i : i + k] for i in range(len(key) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(
    keys: Sequence[str],
    threshold: float,
    num_perm: int = 128,
    advance: Callable[[int], None] | None = None,
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) with i < j whose exact shingle Jaccard is >= threshold, sorted.

    `advance(n)` is called as texts are hashed, for a progress bar.
    """
    sets = [shingles(k) for k in keys]
    lsh = MinHashLSH(threshold=max(0.05, threshold - 0.25), num_perm=num_perm)  # a wide margin for recall
    hashes: list[MinHash] = []
    batch = 512
    for start in range(0, len(sets), batch):
        chunk = [[s.encode("utf-8") for s in shingle_set] for shingle_set in sets[start : start + batch]]
        hashes.extend(MinHash.bulk(chunk, num_perm=num_perm))
        if advance:
            advance(len(chunk))
    pairs: set[tuple[int, int]] = set()
    for i, mh in enumerate(hashes):
        for j in lsh.query(mh):
            pairs.add((j, i))
        lsh.insert(i, mh)
    confirmed = []
    for i, j in sorted(pairs):
        sim = jaccard(sets[i], sets[j])
        if sim >= threshold:
            confirmed.append((i, j, sim))
    return confirmed


class UnionFind:
    """Disjoint sets over 0..n-1; the smallest index represents its set, so results are deterministic."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)
