"""Model backends: each turns normalised texts into 5-way logits and can fit, save and load itself.

`RiskClassifier` (model/classifier.py) wraps a backend with calibration, operating points, language tags
and explanations, so those work the same for every backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
from rich.progress import Progress


class Backend(Protocol):
    kind: str

    def fit(
        self,
        texts: list[str],
        masks: np.ndarray,
        val_texts: list[str] | None = None,
        val_masks: np.ndarray | None = None,
        progress: Progress | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> dict:
        """Fit on (n, 5) boolean label-set masks; `sample_weight` scales each row's loss."""
        ...

    def logits(self, texts: list[str]) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Backend: ...

    def config_dict(self) -> dict: ...


def backend_class(kind: str) -> type[Backend]:
    """The backend class for an artifact's `kind` (imported lazily: torch only when needed)."""
    if kind == "tfidf":
        from model.backends.tfidf import TfidfBackend

        return TfidfBackend
    if kind == "e5":
        from model.backends.e5 import E5Backend

        return E5Backend
    if kind == "ensemble":
        from model.backends.ensemble import EnsembleBackend

        return EnsembleBackend
    raise ValueError(f"unknown model kind {kind!r}; expected 'tfidf', 'e5' or 'ensemble'")


def load_backend(kind: str, directory: Path, threads: int | None = None) -> Backend:
    """A saved backend, ready for inference; an e5 model on the engine its config (or SAHAY_E5_RUNTIME) asks
    for: ONNX Runtime without torch, or PyTorch. `threads`: the encoder's inference threads (None: its config's,
    SAHAY_THREADS or every core); the n-gram baseline runs on the calling thread either way."""
    if kind == "e5":
        from model.backends.e5_onnx import load_e5

        return load_e5(directory, threads)
    if kind == "ensemble":
        from model.backends.ensemble import EnsembleBackend

        return EnsembleBackend.load(directory, threads)
    return backend_class(kind).load(directory)


def e5_member(backend: Backend):
    """The e5 encoder backend inside a backend (itself, or an ensemble's member), or None for the baseline."""
    return backend if backend.kind == "e5" else getattr(backend, "e5", None)


def default_threads(threads: int | None = None) -> int:
    """CPU threads for inference: the argument, else SAHAY_THREADS, else every core."""
    return threads or int(os.environ.get("SAHAY_THREADS", 0)) or os.cpu_count() or 1
