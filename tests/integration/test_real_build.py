"""`data build` on the real shared datasets and the seed corpus (skipped where ../shared/datasets is absent).

The leakage check here is exact and independent of the build's MinHash: it computes the true character
5-gram Jaccard between every evaluation row and every row of every other split with a sparse product.
"""

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from data.build import build
from data.dedup import shingles
from data.normalize import dedup_key
from data.schema import SPLITS
from data.settings import DataSettings

NEAR_DUP_THRESHOLD = 0.6


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    settings = DataSettings(data_dir=tmp_path_factory.mktemp("built"))
    if not settings.datasets_dir.is_dir():
        pytest.skip(f"shared datasets not found at {settings.datasets_dir}")
    return build(settings)


def _matrix(sets, vocab):
    rows, cols = [], []
    for i, s in enumerate(sets):
        for g in s:
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    return rows, cols


def test_all_sources_load_and_no_folder_is_missing(real):
    assert real.missing_sources == []
    sources = {s for split in SPLITS for s in real.dataset[split]["source"]}
    assert len(sources) == 7


def test_evaluation_splits_are_seed_only_and_cover_every_language(real):
    for split in ("validation", "test"):
        ds = real.dataset[split]
        assert set(ds["source"]) == {"seed"}
        langs = {lang: ds["lang"].count(lang) for lang in ("en", "hi", "hi-Latn")}
        assert all(n >= 150 for n in langs.values()), (split, langs)


def test_no_exact_duplicate_crosses_splits(real):
    seen = {}
    for split in SPLITS:
        for key in map(dedup_key, real.dataset[split]["text"]):
            assert seen.setdefault(key, split) == split


def test_no_near_duplicate_crosses_splits(real):
    vocab: dict[str, int] = {}
    texts = {s: [shingles(dedup_key(t)) for t in real.dataset[s]["text"]] for s in SPLITS}
    mats, sizes = {}, {}
    coords = {s: _matrix(texts[s], vocab) for s in SPLITS}
    for s in SPLITS:
        rows, cols = coords[s]
        mats[s] = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts[s]), len(vocab)))
        sizes[s] = np.array([len(x) for x in texts[s]], dtype=np.float32)
    for a, b in (("validation", "train"), ("test", "train"), ("test", "validation")):
        inter = (mats[a] @ mats[b].T).toarray()
        union = sizes[a][:, None] + sizes[b][None, :] - inter
        worst = float((inter / union).max())
        assert worst < NEAR_DUP_THRESHOLD, (a, b, worst)
