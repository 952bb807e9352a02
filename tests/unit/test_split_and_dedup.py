from collections import Counter

from data.dedup import UnionFind, jaccard, near_duplicate_pairs, shingles
from data.split import assign_splits


def test_near_duplicates_are_found_and_distinct_texts_are_not():
    keys = [
        "nobody at home understands how tired i am of all this",
        "nobody at home understands how tired i am of all this!!",
        "what time does the metro open on sunday mornings",
        "मुझे कल की परीक्षा के लिए बहुत पढ़ना है",
        "मुझे कल की परीक्षा के लिए बहुत पढ़ना है यार",
    ]
    pairs = near_duplicate_pairs(keys, threshold=0.6)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (3, 4)]
    assert all(sim == jaccard(shingles(keys[i]), shingles(keys[j])) for i, j, sim in pairs)


def test_short_texts_have_one_shingle():
    assert shingles("hey") == {"hey"}


def test_union_find_uses_smallest_representative():
    uf = UnionFind(5)
    uf.union(3, 1)
    uf.union(4, 3)
    assert {uf.find(i) for i in (1, 3, 4)} == {1}
    assert uf.find(2) == 2


def test_splits_keep_groups_together_and_follow_fractions():
    groups = [f"g{i // 2}" for i in range(400)]  # pairs of records share a group
    strata = ["en/none" if i % 4 < 2 else "hi/ideation" for i in range(400)]
    splits = assign_splits(groups, strata, [None] * 400, 0.2, 0.2, seed=7)
    by_group = {}
    for g, s in zip(groups, splits, strict=True):
        assert by_group.setdefault(g, s) == s
    for stratum in ("en/none", "hi/ideation"):
        c = Counter(s for s, st in zip(splits, strata, strict=True) if st == stratum)
        assert abs(c["test"] - 40) <= 2 and abs(c["validation"] - 40) <= 2


def test_forced_split_pulls_the_whole_group_and_train_wins():
    groups = ["a", "a", "b", "b"]
    forced = [None, "train", "test", "train"]
    assert assign_splits(groups, ["x"] * 4, forced, 0.2, 0.2, seed=1) == ["train"] * 4


def test_same_inputs_same_splits_and_seed_matters():
    groups = [f"g{i}" for i in range(300)]
    strata = ["s"] * 300
    a = assign_splits(groups, strata, [None] * 300, 0.2, 0.2, seed=1)
    assert a == assign_splits(groups, strata, [None] * 300, 0.2, 0.2, seed=1)
    assert a != assign_splits(groups, strata, [None] * 300, 0.2, 0.2, seed=2)
