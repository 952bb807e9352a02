"""The e5 backend for serving: a saved model's graph on ONNX Runtime, tokenised by `tokenizers`, no torch.

A loaded model only turns texts into logits, so the serving process needs neither torch nor transformers (about
300 MB of resident memory between them) nor the PyTorch copy of the weights. Training, distillation and the int8
decision stay in model/backends/e5.py; `load_e5` picks this engine when the artifact's runtime (or
SAHAY_E5_RUNTIME) is 'onnx', and PyTorch otherwise. Numbers agree with PyTorch's to ~1e-5 (fp32).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from model.backends.e5_config import E5Config, runtime
from model.backends.onnx_runtime import (
    INT8_FILE,
    ONNX_FILE,
    OnnxClassifier,
    cached,
    cached_int8_graph,
    export_onnx,
)
from model.backends.windows import merge_windows, text_windows
from model.labels import N_LABELS


def load_e5(directory: Path, threads: int | None = None):
    """A saved e5 backend on the engine its config (or SAHAY_E5_RUNTIME) asks for, with `threads` inference
    threads when given (else the config's, SAHAY_THREADS or every core)."""
    config = E5Config.model_validate_json((directory / "config.json").read_text())
    if threads:
        config = config.model_copy(update={"threads": threads})
    if runtime(config) == "torch":
        from model.backends.e5 import E5Backend

        return E5Backend.load(directory, config)
    return E5OnnxBackend.load(directory, config)


MAX_PADDING = 0.2
"""Padding tokens a forward pass may add, as a share of its real tokens."""


def length_chunks(lengths: list[int], max_texts: int, max_padding: float = MAX_PADDING) -> list[list[int]]:
    """Indices sorted by length, cut into forward passes of at most `max_texts` whose padding to their longest
    text stays within `max_padding` of their real tokens. On ONNX Runtime a lone text costs little more per
    token than a batch, while padding costs in full: 8 random texts ran 1.7x faster cut this way than padded
    together (README "Speed")."""
    chunks: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (
            len(current) >= max_texts or (len(current) + 1) * lengths[i] > (1 + max_padding) * (tokens + lengths[i])
        ):
            chunks.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        chunks.append(current)
    return chunks


def run_in_chunks(session: OnnxClassifier, ids: list[list[int]], pad_id: int, max_texts: int) -> np.ndarray:
    """Logits of token-id lists through an ONNX Runtime session, in `length_chunks`. int8 activations are
    quantised per pass, so the same chunks give the same numbers in training's int8 check and in serving."""
    out = np.zeros((len(ids), N_LABELS), dtype=np.float32)
    for chunk in length_chunks([len(x) for x in ids], max_texts):
        rows = [ids[i] for i in chunk]
        input_ids = np.full((len(rows), len(rows[-1])), pad_id, dtype=np.int64)
        attention = np.zeros_like(input_ids)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            attention[i, : len(row)] = 1
        out[chunk] = session(input_ids, attention)
    return out


class E5OnnxBackend:
    """Inference only: `logits`, `save` (a copy of the artifact's files), `config_dict`."""

    kind = "e5"

    def __init__(self, config: E5Config, directory: Path, session: OnnxClassifier):
        from tokenizers import Tokenizer

        self.config = config
        self.directory = directory
        self.session = session
        self.tokenizer = Tokenizer.from_file(str(directory / "encoder" / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.whole = Tokenizer.from_str(self.tokenizer.to_str())
        self.whole.no_truncation()
        """Encodes texts whole, for windows (a second tokenizer: switching one's truncation races under threads)."""
        self.prefix_ids = self.whole.encode(config.prefix).ids
        self.tokenizer.enable_truncation(config.max_length)
        raw = json.loads((directory / "encoder" / "config.json").read_text())
        self.encoder_config = SimpleNamespace(**raw)
        """The encoder's shape (layers, widths) as transformers would read it, for the benchmark's FLOP count."""
        self.pad_id = raw.get("pad_token_id", 1)

    @classmethod
    def load(cls, directory: Path, config: E5Config | None = None) -> E5OnnxBackend:
        from model.backends import default_threads

        config = config or E5Config.model_validate_json((directory / "config.json").read_text())

        def fp32() -> bytes:  # older artifacts have no graph: export it once from the PyTorch weights
            def export() -> bytes:
                from model.backends.e5 import load_module

                return export_onnx(load_module(directory, config), config.max_length)

            return cached(directory / ONNX_FILE, export)

        path = directory / (INT8_FILE if config.quantize else ONNX_FILE)
        if path.is_file():
            graph: bytes | Path = path
        else:
            graph = cached_int8_graph(directory, fp32, config.int8_fp32_nodes) if config.quantize else fp32()
        return cls(config, directory, OnnxClassifier(graph, default_threads(config.threads)))

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids with the e5 prefix, truncated to max_length (the same ids as the transformers tokenizer)."""
        return [e.ids for e in self.tokenizer.encode_batch([self.config.prefix + t for t in texts])]

    def _windows(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
        """Model inputs: one id list per window of each text (model/backends/windows.py), and each one's text."""
        if self.config.max_windows <= 1:
            return self.token_ids(texts), np.arange(len(texts))
        encoded = [e.ids for e in self.whole.encode_batch([self.config.prefix + t for t in texts])]
        return text_windows(encoded, self.prefix_ids, self.config)

    def logits(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, N_LABELS))
        ids, owner = self._windows(list(texts))
        out = run_in_chunks(self.session, ids, self.pad_id, self.config.inference_batch_size)
        return merge_windows(out, owner, len(texts))

    def distill_logits(self, texts: list[str]) -> np.ndarray:
        return self.logits(texts)

    def fit(self, *args, **kwargs) -> dict:
        raise RuntimeError(
            "this e5 model was loaded for inference on ONNX Runtime; train a new one with `sahay train` "
            "(or load it with SAHAY_E5_RUNTIME=torch)"
        )

    def save(self, directory: Path) -> None:
        """Copy the artifact's files (fp32 weights, tokenizer, config, graphs): nothing here was changed."""
        if directory.resolve() != self.directory.resolve():
            shutil.copytree(self.directory, directory, dirs_exist_ok=True)

    def config_dict(self) -> dict:
        return json.loads(self.config.model_dump_json())
