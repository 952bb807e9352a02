"""Pure-Python replacement for the compiled `torchtext._torchtext.Vocab` (the pybind `VocabPybind`).

torchtext pickles it as its serialized state: a tuple `(version, integers, strings, tensors)` where `strings`
is the index-to-token list and `integers` holds the default (unknown-token) index when one was set
(layout "0.0.2"; "0.0.1" stored no default index).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

STATE_VERSIONS = ("0.0.1", "0.0.2")


class Vocab:
    """Token <-> index lookup with an optional default index for unknown tokens."""

    def __init__(self, tokens: Iterable[str] = (), default_index: int | None = None) -> None:
        self.itos_: list[str] = []
        self.stoi_: dict[str, int] = {}
        for token in tokens:
            self.append_token(token)
        self.default_index_ = default_index

    # -- pickling (the layout torchtext 0.12-0.18 writes) --------------------------------------------------
    def __getstate__(self) -> tuple:
        integers = [] if self.default_index_ is None else [self.default_index_]
        return ("0.0.2", integers, list(self.itos_), [])

    def __setstate__(self, state: tuple) -> None:
        if not isinstance(state, tuple) or len(state) != 4:
            raise ValueError("not a serialized torchtext Vocab: expected (version, integers, strings, tensors)")
        version, integers, strings, _tensors = state
        if version not in STATE_VERSIONS:
            raise ValueError(f"unsupported torchtext Vocab state version {version!r}")
        default = integers[0] if version == "0.0.2" and integers else None
        self.__init__(strings, default)

    # -- lookups --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.itos_)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi_

    def __getitem__(self, token: str) -> int:
        index = self.stoi_.get(token)
        if index is not None:
            return index
        if self.default_index_ is None:
            raise RuntimeError("Token not found and default index is not set")
        return self.default_index_

    def set_default_index(self, index: int | None) -> None:
        self.default_index_ = index

    def get_default_index(self) -> int | None:
        return self.default_index_

    def append_token(self, token: str) -> None:
        if token in self.stoi_:
            raise RuntimeError("Token already exists in the Vocab")
        self.stoi_[token] = len(self.itos_)
        self.itos_.append(token)

    def lookup_token(self, index: int) -> str:
        if not 0 <= index < len(self.itos_):
            raise RuntimeError(f"Specified index {index} is out of bounds of the size of itos dictionary")
        return self.itos_[index]

    def lookup_tokens(self, indices: Sequence[int]) -> list[str]:
        return [self.lookup_token(i) for i in indices]

    def lookup_indices(self, tokens: Sequence[str]) -> list[int]:
        return [self[t] for t in tokens]

    def get_stoi(self) -> dict[str, int]:
        return dict(self.stoi_)

    def get_itos(self) -> list[str]:
        return list(self.itos_)
