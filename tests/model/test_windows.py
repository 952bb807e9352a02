"""Long texts as overlapping windows: every token read, each window shaped like a text, the riskiest one decides."""

import itertools

import numpy as np
import pytest

from data.taxonomy import LABELS
from model.backends.windows import merge_windows, prefix_length, split_windows

BOS, EOS = 0, 2
PREFIX = [BOS, 37, 720, 12, EOS]  # <s> "query" ":" "▁" </s>, the prefix encoded alone


def encoded(n_body: int, start: int = 1000) -> list[int]:
    return [BOS, 37, 720, 12, *range(start, start + n_body), EOS]


def test_a_text_that_fits_is_its_own_single_window():
    ids = [encoded(10), encoded(27)]  # 4 + 27 + 1 = 32 tokens: exactly fits
    windows, owner = split_windows(ids, 32, PREFIX, 8, 4)
    assert windows == ids and owner.tolist() == [0, 1]


def test_one_window_truncates_as_the_tokenizer_does():
    row = encoded(100)
    windows, owner = split_windows([row], 32, PREFIX, 8, 1)
    assert windows == [[*row[:31], EOS]] and owner.tolist() == [0]


@pytest.mark.parametrize("n_body", [28, 29, 60, 150, 1000])
def test_windows_cover_every_token_with_overlap_and_keep_the_texts_shape(n_body):
    row = encoded(n_body)
    windows, owner = split_windows([encoded(3), row], 32, PREFIX, 8, 100)
    mine = [w for w, o in zip(windows, owner, strict=True) if o == 1]
    assert len(mine) >= 2 and windows[0] == encoded(3)
    body = set(range(1000, 1000 + n_body))
    seen = set()
    for w in mine:
        assert len(w) == 32 and w[:4] == row[:4] and w[-1] == EOS
        seen |= set(w[4:-1])
    assert seen == body
    for a, b in itertools.pairwise(mine):  # consecutive windows share at least `overlap` tokens
        assert len(set(a[4:-1]) & set(b[4:-1])) >= 8
    assert mine[-1][-2] == 1000 + n_body - 1  # the last window ends where the text ends


def test_a_very_long_text_keeps_its_first_windows_and_its_last():
    row = encoded(10_000)
    windows, owner = split_windows([row], 32, PREFIX, 8, 4)
    assert len(windows) == 4 and owner.tolist() == [0, 0, 0, 0]
    assert windows[0][4] == 1000 and windows[1][4] == 1000 + 27 - 8
    assert windows[-1][-2] == 1000 + 10_000 - 1


def test_prefix_length_is_what_the_text_shares_with_the_prefix():
    assert prefix_length(encoded(5), PREFIX) == 4
    assert prefix_length([BOS, 37, 720, 5000, EOS], PREFIX) == 3  # the first word absorbed the space piece
    assert prefix_length([BOS, 9, EOS], PREFIX) == 1


def test_the_riskiest_window_gives_the_texts_logits():
    none, ideation, intent = LABELS.index("none"), LABELS.index("ideation"), LABELS.index("intent")
    calm, risky, worse = np.zeros(5), np.zeros(5), np.zeros(5)
    calm[none], risky[ideation], worse[intent] = 4.0, 3.0, 5.0
    logits = np.stack([calm, risky, calm, calm, worse, risky])
    owner = np.array([0, 0, 0, 1, 2, 2])
    merged = merge_windows(logits, owner, 3)
    assert np.array_equal(merged[0], risky) and np.array_equal(merged[1], calm)
    assert np.array_equal(merged[2], worse)
    single = np.arange(10.0).reshape(2, 5)
    assert merge_windows(single, np.array([0, 1]), 2) is single
