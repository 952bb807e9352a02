"""A minimal stand-in for torchtext 0.15.2, enough for `suicide-text-predictor` 0.2.4 on a current torch.

torchtext 0.15.2 pins torch 2.0.1 and ships a compiled extension built against it, so it cannot be installed
next to torch 2.13. The predictor uses only two of its parts, which this package re-implements in pure Python:

- `torchtext.vocab.vocab.Vocab` and `torchtext._torchtext.Vocab`, so that its pickled vocabulary
  (`vocab.pth`, written by `torch.save(vocab)`) unpickles and maps tokens to indices as before;
- `torchtext.data.utils.get_tokenizer("basic_english")`.

Everything else of torchtext is absent on purpose: an import of it fails loudly rather than half-working.
"""

__version__ = "0.15.2+sahay.shim"
