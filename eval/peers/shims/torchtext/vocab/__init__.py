"""`torchtext.vocab`: only the `Vocab` class (see the package docstring)."""

from .vocab import Vocab

__all__ = ["Vocab"]
