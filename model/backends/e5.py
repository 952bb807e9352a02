"""The e5 backend: multilingual-e5-small (or its lower layers, as a student) + a 5-way head over mean-pooled states.

Fine-tuned with the partial-label loss, class weighting, a linear warm-up schedule and early stopping on the
validation partial NLL. Inference uses dynamic padding, length bucketing and `torch.inference_mode`. A saved
model whose runtime is 'onnx' (the default) is served by model/backends/e5_onnx.py instead, without torch.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from safetensors.torch import load_file, save_file
from scipy.special import softmax
from torch import nn

from model.backends.e5_config import E5Config
from model.backends.windows import merge_windows, text_windows
from model.labels import N_LABELS
from model.losses import class_weights_for, distillation_loss, partial_label_loss


class E5Classifier(nn.Module):
    """Encoder + mean pooling over the attention mask + dropout + linear head."""

    def __init__(self, encoder: nn.Module, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, N_LABELS)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def _int8(module: nn.Module) -> nn.Module:
    return torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)


def layer_choice(total: int, n: int, how: str = "lower") -> list[int]:
    """Which of `total` layers a model of `n` keeps: the lowest n, or n spread evenly from the first to the last
    (a student then keeps its teacher's top, task-adapted layer as well as its lower ones, as DistilBERT does)."""
    if not 1 <= n <= total:
        raise ValueError(f"num_layers must be between 1 and {total}, got {n}")
    if how == "lower" or n == 1:
        return list(range(n))
    if how == "spread":
        return [round(i * (total - 1) / (n - 1)) for i in range(n)]
    raise ValueError(f"unknown layer choice {how!r} (lower or spread)")


def _keep_layers(encoder: nn.Module, n: int, how: str = "lower") -> None:
    layers = list(encoder.encoder.layer)
    encoder.encoder.layer = nn.ModuleList([layers[i] for i in layer_choice(len(layers), n, how)])
    encoder.config.num_hidden_layers = n


def load_module(directory: Path, config: E5Config) -> E5Classifier:
    """The saved fp32 encoder and head as a PyTorch module in eval mode."""
    from transformers import BertModel

    encoder = BertModel.from_pretrained(directory / "encoder", add_pooling_layer=False)
    module = E5Classifier(encoder, config.dropout)
    module.head.load_state_dict(load_file(directory / "head.safetensors"))
    return module.eval()


class E5Backend:
    kind = "e5"

    def __init__(self, config: E5Config | None = None, tokenizer=None, module: E5Classifier | None = None):
        self.config = config or E5Config()
        self.tokenizer = tokenizer
        self.module = module
        self.float_module: E5Classifier | None = None
        """The fp32 original while `module` is its int8 copy (see `quantize`)."""
        self.runner = None
        """What `logits` calls instead of `module` when set: the ONNX Runtime session of the int8 graph."""
        self.int8_graph: bytes | None = None
        self._set_threads()

    def _set_threads(self) -> None:
        from model.backends import default_threads

        torch.set_num_threads(default_threads(self.config.threads))

    # -- batching -------------------------------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> list[list[int]]:
        prefixed = [self.config.prefix + t for t in texts]
        return self.tokenizer(prefixed, truncation=True, max_length=self.config.max_length)["input_ids"]

    def _windows(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
        """Model inputs: one id list per window of each text (model/backends/windows.py), and each one's text."""
        if self.config.max_windows <= 1:
            return self._encode(texts), np.arange(len(texts))
        prefixed = [self.config.prefix + t for t in texts] + [self.config.prefix]
        encoded = self.tokenizer(prefixed, verbose=False)["input_ids"]
        return text_windows(encoded[:-1], encoded[-1], self.config)

    def _collate(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
        return input_ids, attention

    def _train_batches(self, lengths: list[int], rng: random.Random) -> list[list[int]]:
        """Length-bucketed batches: shuffle, sort within chunks of 50 batches, then shuffle batch order."""
        order = list(range(len(lengths)))
        rng.shuffle(order)
        size, chunk = self.config.batch_size, self.config.batch_size * 50
        batches = []
        for start in range(0, len(order), chunk):
            block = sorted(order[start : start + chunk], key=lengths.__getitem__)
            batches += [block[i : i + size] for i in range(0, len(block), size)]
        rng.shuffle(batches)
        return batches

    # -- training -------------------------------------------------------------------------------------------
    def _build(self, texts: list[str]) -> None:
        from model.encoder.convert import default_encoder_dir
        from model.encoder.load import encoder_directory, load_encoder
        from model.encoder.prune import hash_texts, prune_encoder

        source = encoder_directory(self.config.encoder)
        if self.config.prune_vocabulary:
            target = default_encoder_dir().parent / "pruned" / f"{source.name}-{hash_texts(texts)[:16]}"
            source = prune_encoder(source, target, texts)
        self.tokenizer, encoder = load_encoder(source)
        _keep_layers(encoder, self.config.num_layers)
        self.module = E5Classifier(encoder, self.config.dropout)

    def start_from(self, other: E5Backend, layers: str = "lower") -> None:
        """Begin training from a copy of another (fine-tuned) model's embeddings, head and `num_layers` of its
        layers (`layers`: the lowest, or spread from first to last; see `layer_choice`)."""
        self.tokenizer = other.tokenizer
        self.module = copy.deepcopy(other.float_module or other.module)
        _keep_layers(self.module.encoder, self.config.num_layers, layers)

    def _freeze(self) -> None:
        enc = self.module.encoder
        if self.config.freeze_embeddings:
            enc.embeddings.requires_grad_(False)
        for layer in list(enc.encoder.layer)[: self.config.frozen_layers]:
            layer.requires_grad_(False)

    def fit(
        self,
        texts,
        masks,
        val_texts=None,
        val_masks=None,
        progress: Progress | None = None,
        sample_weight=None,
        teacher_logits=None,
    ) -> dict:
        """Fine-tune on label-set masks; with `teacher_logits` (n, 5) also match a teacher's soft targets."""
        from transformers import get_linear_schedule_with_warmup

        c = self.config
        torch.manual_seed(c.seed)
        rng = random.Random(c.seed)
        if self.module is None:
            self._build(list(texts) + list(val_texts or []))
        self._freeze()
        ids = self._encode(list(texts))
        masks_t = torch.as_tensor(masks, dtype=torch.bool)
        informative = masks_t.sum(-1) < N_LABELS
        """A row whose set allows every label (an unlabelled text, there for the teacher) teaches no label."""
        if teacher_logits is None and not bool(informative.any()):
            raise ValueError("every training text allows all labels: nothing to learn without a teacher")
        label_masks_np = np.asarray(masks)[informative.numpy()]
        weights = (
            torch.as_tensor(class_weights_for(label_masks_np), dtype=torch.float32)
            if c.class_weighting and len(label_masks_np)
            else None
        )
        example_weights = torch.where(masks_t.sum(-1) == 1, c.fine_label_weight, 1.0)
        if sample_weight is not None:
            example_weights = example_weights * torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32)
        teacher = None if teacher_logits is None else torch.as_tensor(np.asarray(teacher_logits), dtype=torch.float32)
        if teacher is not None and teacher.shape != (len(ids), N_LABELS):
            raise ValueError(f"teacher_logits must be ({len(ids)}, {N_LABELS}), got {tuple(teacher.shape)}")
        head_params = list(self.module.head.parameters())
        enc_params = [p for p in self.module.encoder.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [{"params": enc_params, "lr": c.learning_rate}, {"params": head_params, "lr": c.head_learning_rate}],
            weight_decay=c.weight_decay,
        )
        steps_per_epoch = math.ceil(len(ids) / c.batch_size)
        total = steps_per_epoch * c.epochs if c.max_steps is None else min(c.max_steps, steps_per_epoch * c.epochs)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(c.warmup_ratio * total), total)
        lengths = [len(x) for x in ids]
        task = progress.add_task("fine-tuning e5", total=total) if progress else None
        best, best_state, bad_epochs, history, step = math.inf, None, 0, [], 0
        for epoch in range(c.epochs):
            self.module.train()
            running = 0.0
            batches = self._train_batches(lengths, rng)
            for batch in batches:
                input_ids, attention = self._collate([ids[i] for i in batch])
                logits = self.module(input_ids, attention)
                label_weights = example_weights[batch] * informative[batch]
                loss = partial_label_loss(logits, masks_t[batch], weights, label_weights)
                if teacher is not None:
                    soft = distillation_loss(logits, teacher[batch], c.distill_temperature, example_weights[batch])
                    loss = c.distill_alpha * soft + (1 - c.distill_alpha) * loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                running += float(loss.detach())
                step += 1
                if task is not None:
                    progress.advance(task)
                if step >= total:
                    break
            record = {"epoch": epoch + 1, "steps": step, "train_loss": running / max(1, len(batches))}
            if val_texts is not None:
                from model.calibration import partial_nll

                val_nll = partial_nll(self.logits(list(val_texts)), val_masks)
                record["validation_partial_nll"] = val_nll
                if val_nll < best - 1e-4:
                    best, bad_epochs = val_nll, 0
                    best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
                else:
                    bad_epochs += 1
            history.append(record)
            if step >= total or (val_texts is not None and bad_epochs > c.patience):
                break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        self.module.eval()
        return {"epochs": history, "best_validation_partial_nll": best if best < math.inf else None}

    # -- inference ------------------------------------------------------------------------------------------
    def distill_logits(self, texts: list[str]) -> np.ndarray:
        """The soft targets this model gives a student."""
        return self.logits(texts)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids with the e5 prefix, truncated to max_length."""
        return self._encode(list(texts))

    @property
    def encoder_config(self):
        return self.module.encoder.config

    def logits(self, texts: list[str]) -> np.ndarray:
        if self.module is None:
            raise RuntimeError("the e5 model is not fitted or loaded")
        if not texts:
            return np.zeros((0, N_LABELS))
        ids, owner = self._windows(list(texts))
        if self.runner is not None:  # the int8 graph, run exactly as model/backends/e5_onnx.py serves it
            from model.backends.e5_onnx import run_in_chunks

            out = run_in_chunks(self.runner, ids, self.tokenizer.pad_token_id, self.config.inference_batch_size)
            return merge_windows(out, owner, len(texts))
        self.module.eval()
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), N_LABELS), dtype=np.float32)
        size = max(self.config.batch_size, 64)
        with torch.inference_mode():
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                input_ids, attention = self._collate([ids[i] for i in chunk])
                out[chunk] = self.module(input_ids, attention).float().numpy()
        return merge_windows(out, owner, len(texts))

    # -- persistence ----------------------------------------------------------------------------------------
    def quantize(self, texts: Sequence[str] = ()) -> None:
        """Serve in int8. Runtime 'onnx': an ONNX Runtime session over the int8 graph (per-channel weights) beside
        the fp32 module, with the `int8_fp32_layers` feed-forward outputs whose int8 error moves the
        probabilities of `texts` most kept fp32; runtime 'torch': PyTorch's dynamic quantisation, the fp32 module
        kept for `save`. The saved config says `quantize` (and which nodes stayed fp32), so loading gives the same
        int8 model."""
        if self.config.runtime == "onnx":
            from model.backends import default_threads
            from model.backends.onnx_runtime import OnnxClassifier, export_onnx, most_sensitive, quantize_graph

            graph = export_onnx(self.module, self.config.max_length)
            keep = most_sensitive(graph, self._deviation(graph, texts), self.config.int8_fp32_layers) if texts else []
            self.int8_graph = quantize_graph(graph, keep)
            self.runner = OnnxClassifier(self.int8_graph, default_threads(self.config.threads))
            self.config = self.config.model_copy(update={"int8_fp32_nodes": keep})
        elif self.float_module is None:
            self.float_module = self.module
            self.module = _int8(copy.deepcopy(self.module))
        self.config = self.config.model_copy(update={"quantize": True})

    SENSITIVITY_TEXTS = 512
    """At most this many texts (an even spread of those given) measure each layer's int8 error."""

    def _deviation(self, graph: bytes, texts: Sequence[str]):
        """A function from an int8 graph to the mean total-variation distance of its probabilities on `texts`
        from the fp32 graph's."""
        from model.backends import default_threads
        from model.backends.e5_onnx import run_in_chunks
        from model.backends.onnx_runtime import OnnxClassifier

        texts = list(texts)[:: max(1, len(texts) // self.SENSITIVITY_TEXTS)][: self.SENSITIVITY_TEXTS]
        ids, pad, size = self._encode(texts), self.tokenizer.pad_token_id, self.config.inference_batch_size
        threads = default_threads(self.config.threads)

        def probs(g: bytes) -> np.ndarray:
            return softmax(run_in_chunks(OnnxClassifier(g, threads), ids, pad, size), axis=1)

        reference = probs(graph)
        return lambda int8: float(np.abs(probs(int8) - reference).sum(axis=1).mean() / 2)

    def dequantize(self) -> None:
        if self.float_module is not None:
            self.module, self.float_module = self.float_module, None
        self.runner, self.int8_graph = None, None
        self.config = self.config.model_copy(update={"quantize": False, "int8_fp32_nodes": []})

    def save(self, directory: Path) -> None:
        module = self.float_module or self.module
        if self.config.quantize and self.config.runtime == "torch" and self.float_module is None:
            raise RuntimeError("an int8 model loaded from disk cannot be saved again; save the fp32 original")
        directory.mkdir(parents=True, exist_ok=True)
        encoder_dir = directory / "encoder"
        module.encoder.save_pretrained(encoder_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(encoder_dir)
        save_file({k: v.contiguous() for k, v in module.head.state_dict().items()}, directory / "head.safetensors")
        (directory / "config.json").write_text(self.config.model_dump_json(indent=2))
        if self.config.runtime == "onnx":  # the serving engine's graphs, so loading needs no export
            from model.backends.onnx_runtime import INT8_FILE, cached, cached_graph, quantize_graph

            graph = cached_graph(directory, module, self.config.max_length)
            if self.config.quantize:  # the int8 graph this model was checked with, else one made now
                keep = self.config.int8_fp32_nodes
                cached(directory / INT8_FILE, lambda: self.int8_graph or quantize_graph(graph, keep))

    @classmethod
    def load(cls, directory: Path, config: E5Config | None = None) -> E5Backend:
        """The saved model in PyTorch (training code, SAHAY_E5_RUNTIME=torch); serving on ONNX Runtime goes
        through model/backends/e5_onnx.py's `load_e5`, which needs no torch. int8 here is PyTorch's."""
        from transformers import AutoTokenizer

        config = config or E5Config.model_validate_json((directory / "config.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(directory / "encoder")
        module = load_module(directory, config)
        if config.quantize:
            module = _int8(module)
        return cls(config, tokenizer, module)

    def config_dict(self) -> dict:
        return json.loads(self.config.model_dump_json())
