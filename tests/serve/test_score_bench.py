"""`sahay bench --score` end to end with a tiny model and a few rows: the table, the JSON report, the refusals.

No timing is asserted (the machine is shared); only that every run scored every row at a positive rate."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from cli import app
from serve.score_bench import make_input
from tests.serve.pg import in_ci

runner = CliRunner()


def test_the_input_cycles_the_texts_in_a_seeded_order(tmp_path):
    texts = ["one", "two", "three"]
    path = make_input(tmp_path / "in.jsonl", texts, 10)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"b{i}" for i in range(10)]
    counts = Counter(r["text"] for r in rows)
    assert set(counts) == set(texts) and max(counts.values()) - min(counts.values()) <= 1
    assert {r["text"] for r in rows[:3]} == set(texts)  # each cycle holds every text once
    assert make_input(tmp_path / "again.jsonl", texts, 10).read_text() == path.read_text()


def test_bench_score_measures_local_and_ray_runs_and_writes_the_report(tmp_path, tiny_artifact):
    try:
        import ray  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail('Ray is required when CI is set: pip install "sahay[distributed]"', pytrace=False)
        pytest.skip('Ray is not installed: pip install "sahay[distributed]"')
    out = tmp_path / "bench_score.json"
    args = ["bench", "--score", "--model", str(tiny_artifact), "--rows", "24", "--workers", "1,2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sahay bench --score" in result.output and "per worker rows/s" in result.output
    report = json.loads(out.read_text())
    assert report["settings"]["rows"] == 24 and report["settings"]["workers"] == [1, 2]
    assert report["settings"]["source"] == "built-in neutral texts (~40 tokens)"
    assert report["ray_start_s"] > 0  # the bench started its own Ray instance, measured apart
    runs = report["runs"]
    assert [(r["engine"], r["workers"]) for r in runs] == [("local", 1), ("ray", 1), ("ray", 2)]
    one, two = runs[1]["threads_per_worker"], runs[2]["threads_per_worker"]
    assert one >= 2 and two == one // 2  # the machine's CPUs shared by the actors
    for run in runs:
        assert run["model"] == str(tiny_artifact) and run["kind"] == "tfidf"
        assert run["rows"] == run["scored"] == 24
        assert run["wall_s"] > 0 and run["rows_per_s"] == pytest.approx(24 / run["wall_s"])
        assert run["worker_rows_per_s"] and all(rate > 0 for rate in run["worker_rows_per_s"])
        assert 0 <= run["startup_s"] <= run["wall_s"]
    assert 1 <= len(runs[2]["worker_rows_per_s"]) <= 2 and sum(runs[2]["worker_shards"]) == 8  # 24 rows, shards of 3
    assert all(mb > 50 for run in runs[1:] for mb in run["worker_max_rss_mb"])  # a Python process with a model


def test_bench_score_refusals_exit_2(tmp_path, tiny_artifact):
    base = ["bench", "--score", "--model", str(tiny_artifact), "--out", str(tmp_path / "b.json")]
    for extra, message in [
        (["--workers", "0"], "--workers must be positive integers"),
        (["--workers", "one"], "--workers must be positive integers"),
        (["--queue"], "leave out --http, --queue and --peer"),
        (["--model", str(tmp_path)], "is not a model artifact"),
    ]:
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
    assert not (tmp_path / "b.json").exists()
