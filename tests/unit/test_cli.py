"""The `sahay` command end to end (Typer's runner, real files)."""

import json

from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_data_build_prints_the_summary_and_saves(tmp_path, fixture_datasets, seed_dir):
    out = tmp_path / "built"
    result = runner.invoke(app, ["data", "build", "--out", str(out), "--datasets-dir", str(fixture_datasets)])
    assert result.exit_code == 0, result.output
    assert "rows per source x label x language x split" in result.output
    assert "sdcnl" in result.output and "seed" in result.output
    assert "bad row(s)" in result.output and "testing-set.csv:3" in result.output
    assert (out / "dataset_dict.json").is_file() and (out / "rejects.jsonl").is_file()


def test_data_build_warns_about_a_missing_folder(tmp_path):
    empty = tmp_path / "none_here"
    empty.mkdir()
    result = runner.invoke(app, ["data", "build", "--out", str(tmp_path / "o"), "--datasets-dir", str(empty)])
    assert result.exit_code == 0, result.output
    assert "'kaggle_suicide_detection_sample' was not found and was skipped" in result.output


def test_data_build_names_the_malformed_file_and_line(tmp_path, fixture_datasets):
    export = tmp_path / "broken.csv"
    export.write_text('text,label\n"unterminated quote,none\n')
    result = runner.invoke(
        app,
        [
            "data",
            "build",
            "--out",
            str(tmp_path / "o"),
            "--datasets-dir",
            str(fixture_datasets),
            "--export",
            str(export),
        ],
    )
    assert result.exit_code == 2
    assert "broken.csv:2" in result.output


def test_data_check_reports_bad_rows_and_exits_1(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": "match kal hai, tickets le liye", "label": "none"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "hello", "label": "maybe"}) + "\n")
    ok = runner.invoke(app, ["data", "check", str(good)])
    assert ok.exit_code == 0 and "1 usable, 0 bad" in ok.output
    failed = runner.invoke(app, ["data", "check", str(good), str(bad)])
    assert failed.exit_code == 1
    assert "bad.jsonl:1" in failed.output and "unknown label 'maybe'" in failed.output


def test_data_describe_counts_without_printing_text(tmp_path):
    export = tmp_path / "e.jsonl"
    text = "kal ka match dekhne chalenge sab log"
    export.write_text(json.dumps({"text": text, "label": "none", "surface": "chat", "tags": ["slang"]}) + "\n")
    result = runner.invoke(app, ["data", "describe", "--export", str(export)])
    assert result.exit_code == 0, result.output
    assert "hi-Latn" in result.output and "chat" in result.output and "slang" in result.output
    assert text not in result.output
    seed = runner.invoke(app, ["data", "describe"])
    assert seed.exit_code == 0 and "1870" in seed.output  # Hindi rows in data/seed (parts a to g)
