"""`sahay eval` end to end on tiny made-up data: figures, metrics.json, the HTML report and the exit-2 cases.

The texts are marker words among filler (as in tests/model/conftest.py), never real data.
"""

import csv
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from data.taxonomy import LABELS
from eval.evaluate import EvalData, FunctionScorer, ModelScorer, evaluate
from eval.report import render_report, write_report
from model.classifier import RiskClassifier
from tests.marker_texts import MARKERS

runner = CliRunner()
FILLER = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "घर", "खाना", "yaar", "kilo"]
LANGS = ("en", "hi", "hi-Latn")
SURFACES = ("post", "chat", "search")
TAGS = ([], ["figurative"], ["emoji", "code_mixed"], ["negation"])
N_PLOTS = 6
"""Precision-recall and reliability plots, one each per signal."""


def make_rows(n_per_label: int, seed: int, flips: int = 0) -> list[dict]:
    """Rows with the built dataset's columns; `flips` rows get another label's marker so models err on them."""
    rng = random.Random(seed)
    rows = []
    for label in LABELS:
        for _ in range(n_per_label):
            words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
            words.insert(rng.randint(0, len(words)), MARKERS[label])
            i = len(rows)
            rows.append(
                {
                    "id": f"row-{i}",
                    "text": " ".join(words) + f" n{i}",
                    "label": label,
                    "label_set": [label],
                    "lang": LANGS[i % 3],
                    "surface": SURFACES[i % 3],
                    "source": "fixture",
                    "tags": TAGS[i % 4],
                }
            )
    for row in rng.sample(rows, flips):
        other = rng.choice([label for label in LABELS if label != row["label"]])
        row["label"], row["label_set"] = other, [other]
    rows.append({**rows[0], "id": "coarse", "label": "", "label_set": ["ideation", "none"]})  # a straddling set
    return rows


def train_models(root: Path) -> list[Path]:
    """Two tiny TF-IDF models: a sharp one and a blunt one (heavily regularised)."""
    train, val = make_rows(16, seed=1), make_rows(6, seed=2)
    paths = []
    for name, c in (("sharp", 4.0), ("blunt", 0.05)):
        clf = RiskClassifier.baseline(min_df=1, C=c, max_iter=100)
        clf.fit(
            [r["text"] for r in train],
            [r["label_set"] for r in train],
            eval_set=([r["text"] for r in val], [r["label_set"] for r in val]),
        )
        paths.append(clf.save(root / name))
    return paths


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> list[Path]:
    return train_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def eval_data() -> EvalData:
    return EvalData.from_rows(make_rows(8, seed=3, flips=8), description="fixture")


@pytest.fixture(scope="module")
def result(artifacts, eval_data) -> dict:
    return evaluate([ModelScorer(p) for p in artifacts], eval_data, n_boot=50, n_errors=3)


def test_every_model_gets_every_figure(result, eval_data):
    assert [m["name"] for m in result["models"]] == ["sharp", "blunt"]
    for block in [*result["signals"].values(), *result["labels"].values()]:
        assert set(block["models"]) == {"sharp", "blunt"}
        for figures in block["models"].values():
            for name in ("precision", "recall", "f1", "pr_auc", "roc_auc"):
                f = figures[name]
                assert f["low"] <= f["value"] <= f["high"], name
    assert result["signals"]["at_risk"]["n"] == len(eval_data) - 1  # the straddling row is left out
    assert all(np.array(m).sum() == len(eval_data) - 1 for m in result["confusion"].values())
    points = {row["point"] for row in result["operating_points"]["sharp"]}
    assert {"at_risk.balanced", "at_risk.high_recall", "urgent.balanced", "violating.balanced"} <= points
    kinds = {row["kind"] for row in result["slices"]}
    assert kinds == {"lang", "surface", "source", "tag", "length"}


def test_errors_are_the_most_confident_mistakes(result):
    errors = result["errors"]["sharp"]
    assert 0 < len(errors["false_negatives"]) <= 3 and 0 < len(errors["false_positives"]) <= 3
    fn = [e["at_risk"] for e in errors["false_negatives"]]
    fp = [e["at_risk"] for e in errors["false_positives"]]
    assert fn == sorted(fn) and fp == sorted(fp, reverse=True)
    assert all(e["at_risk"] < e["threshold"] for e in errors["false_negatives"])
    assert all(e["at_risk"] >= e["threshold"] for e in errors["false_positives"])


def test_metrics_json_is_strict_json_without_texts(result, eval_data):
    text = json.dumps(result, allow_nan=False)
    assert not any(t in text for t in eval_data.texts)


def test_a_peer_gets_only_at_risk_rows(artifacts, eval_data):
    peer = FunctionScorer("keyword", lambda texts: [float("mervin" in t or "zorblat" in t) for t in texts])
    result = evaluate([ModelScorer(artifacts[0]), peer], eval_data, n_boot=20, n_errors=2)
    assert "keyword" in result["signals"]["at_risk"]["models"]
    assert "keyword" not in result["signals"]["urgent"]["models"]
    assert all("keyword" not in block["models"] for block in result["labels"].values())
    assert "keyword" not in result["confusion"]
    assert [row["point"] for row in result["operating_points"]["keyword"]] == ["at_risk.peer"]
    assert "keyword" in render_report(result, eval_data)


def test_report_is_self_contained_with_one_svg_per_plot(result, eval_data, tmp_path):
    path = write_report(result, eval_data, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    assert html.count("<svg") == N_PLOTS
    assert "sharp" in html and "blunt" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count('class="err-text"') == sum(len(v) for e in result["errors"].values() for v in e.values())
    assert "<mark" in html  # explanation spans


def write_export(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["id", "text", "label", "lang", "surface", "tags"])
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    **{k: r[k] for k in ("id", "text", "lang", "surface")},
                    "label": "|".join(r["label_set"]),
                    "tags": "|".join(r["tags"]),
                }
            )
    return path


def test_cli_writes_metrics_and_report(artifacts, tmp_path):
    export = write_export(tmp_path / "export.csv", make_rows(6, seed=4, flips=5))
    out = tmp_path / "out"
    args = ["eval", "-m", str(artifacts[0]), "-m", str(artifacts[1]), "--input", str(export), "--out", str(out)]
    result = runner.invoke(app, [*args, "--bootstrap", "30", "--errors", "2", "--prevalence", "0.02"])
    assert result.exit_code == 0, result.output
    assert "at_risk" in result.output and "sharp" in result.output and "blunt" in result.output
    assert "report.html" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["prevalence"] == 0.02 and metrics["settings"]["bootstrap"] == 30
    html = (out / "report.html").read_text()
    assert html.count("<svg") == N_PLOTS
    # the robustness suite ran for both models, on every perturbation, and the report shows it
    from eval.perturb import PERTURBATIONS

    assert set(metrics["robustness"]) == {"sharp", "blunt"}
    for report in metrics["robustness"].values():
        assert set(report["perturbations"]) == set(PERTURBATIONS)
        assert all(0.0 <= p["overall"]["at_risk_flip_rate"] <= 1.0 for p in report["perturbations"].values())
    assert "<h2>Robustness</h2>" in html and "zero_width" in html
    quick = runner.invoke(app, [*args[:-1], str(tmp_path / "quick"), "--bootstrap", "0", "--no-robustness"])
    assert quick.exit_code == 0, quick.output
    assert "robustness" not in json.loads((tmp_path / "quick" / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_artifact", "is not a model artifact"),
        ("no_data", "no built data"),
        ("bad_csv", "export.csv:3"),
        ("bad_rows", "export.csv:2"),
        ("missing_column", "export.csv:1"),
        ("prevalence", "--prevalence"),
    ],
)
def test_cli_exits_2_on_bad_input(case, message, artifacts, tmp_path):
    model, extra = str(artifacts[0]), []
    export = tmp_path / "export.csv"
    if case == "not_artifact":
        model = str(tmp_path)
        extra = ["--data", str(tmp_path)]
    elif case == "no_data":
        extra = ["--data", str(tmp_path / "missing")]
    elif case == "bad_csv":
        export.write_text('text,label\nfine text,none\n"never closed,none\n')
        extra = ["--input", str(export)]
    elif case == "bad_rows":
        export.write_text("text,label\n,none\nsome words,none\n")
        extra = ["--input", str(export)]
    elif case == "missing_column":
        export.write_text("body,label\nsome words,none\n")
        extra = ["--input", str(export)]
    else:
        extra = ["--prevalence", "1.5"]
    result = runner.invoke(app, ["eval", "-m", model, "--out", str(tmp_path / "out"), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out" / "report.html").exists()


def test_highlighting_escapes_the_text_and_marks_spans():
    from eval.report import highlighted

    html = str(highlighted("<b>x</b> marked word", [{"start": 9, "end": 15, "weight": 0.5}, {"start": 0, "end": 99}]))
    assert html == '&lt;b&gt;x&lt;/b&gt; <mark title="weight 0.500">marked</mark> word'


def test_cli_refuses_an_unknown_peer(artifacts, tmp_path):
    export = write_export(tmp_path / "export.csv", make_rows(3, seed=5, flips=0))
    args = ["eval", "-m", str(artifacts[0]), "--input", str(export), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--peer", "no-such-peer"])
    assert result.exit_code == 2 and "unknown peer 'no-such-peer'" in result.output


def test_cli_speed_puts_quality_and_speed_in_one_table(artifacts, tmp_path):
    export = write_export(tmp_path / "export.csv", make_rows(3, seed=6, flips=1))
    out = tmp_path / "out"
    args = ["eval", "-m", str(artifacts[0]), "-m", str(artifacts[1]), "--input", str(export), "--out", str(out)]
    result = runner.invoke(app, [*args, "--bootstrap", "0", "--no-robustness", "--speed"])
    assert result.exit_code == 0, result.output
    assert "texts/s b=1 / b=32" in result.output
    speed = json.loads((out / "metrics.json").read_text())["speed"]
    assert set(speed["models"]) == {"sharp", "blunt"} and speed["machine"]["matmul_gflops"] > 0
    for entry in speed["models"].values():
        assert [b["batch_size"] for b in entry["batches"]] == [1, 32]
        assert all(b["texts_per_s"] > 0 for b in entry["batches"])
    assert "<h2>Speed</h2>" in (out / "report.html").read_text()
