"""Long texts as overlapping windows of the encoder's length, so that risk stated late in a long post is read.

The encoder reads at most `max_length` tokens, and real posts run longer (over a third of the public hold-out's
real posts at 96 tokens, and about one romanised-Hindi seed text in ten). A longer text's token ids are cut into
windows that each start with the text's leading tokens (<s> and the "query: " prefix) and end with </s>,
overlapping by `overlap` tokens; every window is scored as a text of its own, and the text takes the logits of
its riskiest window (the highest probability of intent, promotion or ideation): a post is as risky as its
riskiest part, and one window's probabilities stay a coherent distribution (a per-label maximum over windows
would not be). At most `max_windows` windows, the first ones and the last, so a very long text costs a bounded
amount. No torch here: the ONNX serving engine uses it too.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from data.taxonomy import LABELS

RISK_LABELS = [LABELS.index(label) for label in ("intent", "promotion", "ideation")]


def text_windows(full_ids: list[list[int]], prefix_ids: list[int], config) -> tuple[list[list[int]], np.ndarray]:
    """The model inputs of texts encoded whole (`full_ids`; `prefix_ids`: the prefix encoded alone), cut as an
    E5Config says (max_length, window_overlap, max_windows)."""
    return split_windows(full_ids, config.max_length, prefix_ids, config.window_overlap, config.max_windows)


def split_windows(
    ids: list[list[int]], max_length: int, prefix_ids: list[int], overlap: int, max_windows: int
) -> tuple[list[list[int]], np.ndarray]:
    """(windows, owner): each id list as itself when it fits in `max_length`, else as windows of at most
    `max_length` ids that repeat its leading prefix ids and its last id (</s>), or, with `max_windows` 1, cut
    to its first ids as the tokenizer truncates; owner[k] is window k's text."""
    out: list[list[int]] = []
    owner: list[int] = []
    for i, row in enumerate(ids):
        if len(row) <= max_length:
            out.append(row)
            owner.append(i)
            continue
        if max_windows <= 1:  # truncation, as the tokenizer does it: the first ids, then </s>
            out.append(row[: max_length - 1] + row[-1:])
            owner.append(i)
            continue
        head = prefix_length(row, prefix_ids)
        lead, body, end = row[:head], row[head:-1], row[-1:]
        width = max_length - head - 1
        last = len(body) - width
        starts = [*range(0, last, max(1, width - overlap)), last]
        if len(starts) > max_windows:
            starts = [*starts[: max_windows - 1], last]
        for start in starts:
            out.append(lead + body[start : start + width] + end)
            owner.append(i)
    return out, np.asarray(owner, dtype=np.int64)


def merge_windows(logits: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per text, the logits of its window with the highest probability of a risk label (intent, promotion,
    ideation)."""
    if len(owner) == n:  # every text fitted in one window
        return logits
    risk = softmax(logits, axis=1)[:, RISK_LABELS].sum(axis=1)
    best = np.full(n, -1, dtype=np.int64)
    for k in np.argsort(risk, kind="stable"):  # ascending: the riskiest window of each text is written last
        best[owner[k]] = k
    return logits[best]


def prefix_length(full: list[int], prefix_only: list[int]) -> int:
    """How many leading ids a text's encoding shares with the prefix encoded alone (without its </s>): the ids
    every window repeats (<s> "query:", and the space piece when the text's first word does not absorb it)."""
    lead = prefix_only[:-1]
    n = 0
    while n < min(len(lead), len(full) - 1) and full[n] == lead[n]:
        n += 1
    return max(n, 1)
