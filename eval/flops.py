"""Compute figures for the benchmark: this machine's fp32 matmul ceiling and an encoder's forward FLOPs per text.

Together they say how far a model's measured throughput is from what the CPU could do, which tells whether to
look for overhead (tokenising, padding, Python) or for a smaller model.
"""

from __future__ import annotations

import time

from model.labels import N_LABELS


def matmul_gflops(seconds: float = 1.0, size: int = 1024, threads: int | None = None) -> float:
    """fp32 GFLOP/s of `torch.mm` on `size` x `size` matrices, repeated for about `seconds`.

    A large square matmul is the best case for the BLAS kernels the encoder's linear layers use, so it serves as
    the ceiling. One warm-up call first: the first call pays for thread start-up and allocation.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    with torch.inference_mode():
        torch.mm(a, b, out=out)
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return 2 * size**3 * reps / elapsed / 1e9


def encoder_flops_per_text(config, tokens: float) -> float:
    """Forward FLOPs of a BERT encoder (a transformers config) and the 5-way head for one text of `tokens` tokens.

    Per layer: the Q, K, V and output projections (4 h x h) and the feed-forward pair (2 h x i) are
    2 * tokens * (4h² + 2hi); attention scores QKᵀ and their weighted sum of V are 2 * 2 * tokens² * h.
    Embedding look-ups, layer norms, softmax and GELU are left out: they are a few percent at these sizes.
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * tokens * tokens * h
    return layers * per_layer + 2 * h * N_LABELS
