"""`torchtext.data`: only `get_tokenizer` (see the package docstring)."""

from .utils import get_tokenizer

__all__ = ["get_tokenizer"]
