"""`torchtext.vocab.vocab.Vocab`: the `nn.Module` wrapper around the lookup table, as torchtext 0.15 pickles it."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .._torchtext import Vocab as VocabPybind


class Vocab(nn.Module):
    """Delegates every lookup to `self.vocab` (a `torchtext._torchtext.Vocab`)."""

    def __init__(self, vocab: VocabPybind) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, tokens: Sequence[str]) -> list[int]:
        return self.vocab.lookup_indices(tokens)

    def __len__(self) -> int:
        return len(self.vocab)

    def __contains__(self, token: str) -> bool:
        return token in self.vocab

    def __getitem__(self, token: str) -> int:
        return self.vocab[token]

    def set_default_index(self, index: int | None) -> None:
        self.vocab.set_default_index(index)

    def get_default_index(self) -> int | None:
        return self.vocab.get_default_index()

    def lookup_token(self, index: int) -> str:
        return self.vocab.lookup_token(index)

    def lookup_tokens(self, indices: Sequence[int]) -> list[str]:
        return self.vocab.lookup_tokens(indices)

    def lookup_indices(self, tokens: Sequence[str]) -> list[int]:
        return self.vocab.lookup_indices(tokens)

    def get_stoi(self) -> dict[str, int]:
        return self.vocab.get_stoi()

    def get_itos(self) -> list[str]:
        return self.vocab.get_itos()
