"""Group-aware, stratified, seeded assignment of records to train / validation / test.

Whole groups move together, so no near-duplicate crosses splits. Groups are stratified by the label key and
language of their first member and ordered by a seeded hash, so the same inputs always give the same splits
and adding a record moves few others.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(
    groups: Sequence[str],
    strata: Sequence[str],
    forced: Sequence[str | None],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """Split name for each record, given its group, stratum and preassigned split (or None).

    A group any of whose records is preassigned goes wholly to that split ("train" wins a conflict).
    Free groups fill each stratum's test share first, then validation, then train, by cumulative size.
    """
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    split_of_group: dict[str, str] = {}
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for g, idx in members.items():
        pinned = {forced[i] for i in idx if forced[i]}
        if pinned:
            split_of_group[g] = "train" if "train" in pinned else sorted(pinned)[0]
        else:
            by_stratum[strata[min(idx)]].append(g)
    for stratum_groups in by_stratum.values():
        stratum_groups.sort(key=lambda g: _rank(seed, g))
        total = sum(len(members[g]) for g in stratum_groups)
        done = 0
        for g in stratum_groups:
            size = len(members[g])
            position = (done + size / 2) / total
            if position < test_fraction:
                split_of_group[g] = "test"
            elif position < test_fraction + validation_fraction:
                split_of_group[g] = "validation"
            else:
                split_of_group[g] = "train"
            done += size
    return [split_of_group[g] for g in groups]
