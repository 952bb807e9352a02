"""`torchtext.data.utils.get_tokenizer`, for the "basic_english" tokenizer and plain whitespace splitting."""

from __future__ import annotations

import re
from collections.abc import Callable

# torchtext 0.15's basic_english normalization, rule for rule and in the same order.
_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_RULES = [(re.compile(p), r) for p, r in zip(_PATTERNS, _REPLACEMENTS, strict=True)]


def _basic_english_normalize(line: str) -> list[str]:
    """Lower-case, put spaces around . , ( ) ! ? and ', drop double quotes and <br />, split on whitespace."""
    line = line.lower()
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def _split_tokenizer(line: str) -> list[str]:
    return line.split()


def get_tokenizer(tokenizer: str | Callable[[str], list[str]] | None, language: str = "en") -> Callable:
    """The tokenizer named `tokenizer`: "basic_english", None (split on whitespace) or a callable (returned)."""
    if tokenizer is None:
        return _split_tokenizer
    if callable(tokenizer):
        return tokenizer
    if tokenizer == "basic_english":
        if language != "en":
            raise ValueError("Basic normalization is only available for English (en)")
        return _basic_english_normalize
    raise ValueError(
        f"tokenizer {tokenizer!r} is not available in Sahay's torchtext shim (only 'basic_english' and None)"
    )
