"""`sahay score` on one machine: every input format, rejects, resume after an interruption, refusals, the CLI.

Invented, neutral texts only (tests/neutral_texts.py); nothing here prints a text."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

import serve.score as score_module
from cli import app
from data.taxonomy import LABELS
from model.classifier import RiskClassifier
from serve.policy import load_policy
from serve.score import (
    MANIFEST_NAME,
    PROB_COLUMNS,
    SCORE_COLUMNS,
    ScoreError,
    ScoreOptions,
    read_output,
    score_file,
)
from serve.settings import SERVE_DIR
from tests.neutral_texts import SENTENCES

runner = CliRunner()
SURFACES = ["post", "comment", "search", "chat", "bio", "caption"]
COUNTRIES = ["IN", "in", "", "GB", "US"]


def _rows() -> list[dict]:
    return [
        {"id": f"r{i}", "text": t, "surface": SURFACES[i % len(SURFACES)], "country": COUNTRIES[i % len(COUNTRIES)]}
        for i, t in enumerate(SENTENCES)
    ]


def _write(path, rows, fmt):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        from datasets import Dataset

        Dataset.from_list(rows).save_to_disk(str(path))
    return path


INPUTS = {"jsonl": "in.jsonl", "csv": "in.csv", "parquet": "in.parquet", "datasets": "in_ds"}
OPTIONS = ScoreOptions(surface_column="surface", country_column="country", shard_size=7, batch_size=4)


@pytest.fixture(scope="module")
def clf(tiny_artifact):
    return RiskClassifier.load(tiny_artifact)


@pytest.fixture(scope="module")
def policy():
    return load_policy(SERVE_DIR / "policy.yaml")


def _expected(clf, policy, rows):
    """What the API's path gives: predict, then decide, row by row."""
    thresholds = {k: p.threshold for k, p in clf.operating_points.items()}
    preds = clf.predict([r["text"] for r in rows], explain=False)
    out = []
    for row, pred in zip(rows, preds, strict=True):
        d = pred.to_dict()
        signals = {"at_risk": d["at_risk"], "urgent": d["urgent"], "violating": d["violating"]}
        decision = policy.decide(signals, thresholds, row["surface"], row["country"] or None)
        out.append(
            {
                **row,
                "label": d["label"],
                **{f"p_{label}": d["probabilities"][label] for label in LABELS},
                **signals,
                "lang": d["lang"],
                "model_version": d["model_version"],
                "actions": ",".join(decision.action_names),
                "rule": decision.rule,
                "policy_version": decision.policy_version,
                "decision": decision.to_dict(),
            }
        )
    return out


def _normalise(rows):
    """Output rows comparable across formats: floats as floats, the decision parsed."""
    out = []
    for row in rows:
        row = dict(row)
        for k in ("at_risk", "urgent", "violating", *PROB_COLUMNS):
            row[k] = pytest.approx(float(row[k]), abs=1e-12)
        row["decision"] = json.loads(row["decision"]) if isinstance(row["decision"], str) else row["decision"]
        row["rule"] = row["rule"] or None
        out.append(row)
    return out


@pytest.mark.parametrize("fmt", sorted(INPUTS))
def test_every_input_format_gives_predict_plus_decide_row_for_row(tmp_path, tiny_artifact, clf, policy, fmt):
    rows = _rows()
    source = _write(tmp_path / INPUTS[fmt], rows, fmt)
    summary = score_file(source, tmp_path / "out", model=tiny_artifact, options=OPTIONS)
    assert (summary.rows, summary.scored, summary.rejected, summary.shards) == (20, 20, 0, 3)
    got = read_output(tmp_path / "out")
    assert _normalise(got) == _normalise(_expected(clf, policy, rows))
    assert list(got[0]) == ["id", "text", "surface", "country", *SCORE_COLUMNS]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_SUCCESS",
        "_manifest.json",
        "part-00000.jsonl",
        "part-00001.jsonl",
        "part-00002.jsonl",
        "rejects.jsonl",
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_output_formats_hold_the_same_rows(tmp_path, tiny_artifact, clf, policy, fmt):
    rows = _rows()
    source = _write(tmp_path / "in.jsonl", rows, "jsonl")
    options = ScoreOptions(**{**vars(OPTIONS), "format": fmt})
    score_file(source, tmp_path / "out", model=clf, policy=policy, options=options)
    assert (tmp_path / "out" / f"part-00000.{fmt}").is_file()
    assert _normalise(read_output(tmp_path / "out")) == _normalise(_expected(clf, policy, rows))


def test_explain_adds_spans_and_input_columns_named_like_outputs_are_kept(tmp_path, clf):
    rows = [{"text": t, "label": "none", "lang": "en"} for t in SENTENCES[:3]]
    source = _write(tmp_path / "in.jsonl", rows, "jsonl")
    score_file(source, tmp_path / "out", model=clf, options=ScoreOptions(explain=True))
    got = read_output(tmp_path / "out")
    assert got[0]["input_label"] == "none" and got[0]["input_lang"] == "en"
    assert got[0]["label"] in LABELS and isinstance(json.loads(got[0]["spans"]), list)


def test_bad_rows_go_to_rejects_with_reason_and_id_never_the_text(tmp_path, clf):
    long_text = "the garden gate squeaks " * 10
    lines = [
        json.dumps({"id": "a", "text": SENTENCES[0]}),
        json.dumps({"id": "b"}),
        json.dumps({"id": "c", "text": "   "}),
        json.dumps({"id": "d", "text": 42}),
        json.dumps({"id": "e", "text": long_text}),
        json.dumps({"id": "f", "text": SENTENCES[1], "surface": "reel"}),
        json.dumps({"id": "g", "text": SENTENCES[2], "country": "India"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"text": None}),
        json.dumps({"id": "k", "text": SENTENCES[3], "surface": ""}),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    options = ScoreOptions(surface_column="surface", country_column="country", max_chars=100, shard_size=4)
    # the first row has no surface/country column: JSONL checks the text column only on the first row
    with pytest.raises(ScoreError, match="first row has no column"):
        score_file(source, tmp_path / "o1", model=clf, options=options)
    options = ScoreOptions(max_chars=100, shard_size=4)
    summary = score_file(source, tmp_path / "o2", model=clf, options=options)
    assert (summary.rows, summary.scored, summary.rejected) == (11, 4, 7)
    rejects = [json.loads(line) for line in (tmp_path / "o2" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r.get("id")) for r in rejects] == [
        (1, "b"),
        (2, "c"),
        (3, "d"),
        (4, "e"),
        (7, None),
        (8, None),
        (9, None),
    ]
    reasons = [r["reason"] for r in rejects]
    assert reasons[:4] == [
        "missing text",
        "empty text",
        "text is not a string (int)",
        "text longer than 100 characters (240)",
    ]
    assert reasons[4].startswith("invalid JSON") and reasons[5] == "a line must hold a JSON object"
    assert all(set(r) <= {"row", "reason", "id"} for r in rejects)
    assert long_text not in (tmp_path / "o2" / "rejects.jsonl").read_text()
    assert summary.reasons["missing text"] == 2 and sum(summary.reasons.values()) == 7
    assert [r["id"] for r in read_output(tmp_path / "o2")] == ["a", "f", "g", "k"]  # no surface column asked for

    with_columns = tmp_path / "cols.jsonl"
    with_columns.write_text(
        "\n".join(
            json.dumps({"id": i, "text": SENTENCES[0], "surface": s, "country": c})
            for i, (s, c) in enumerate([("post", "IN"), ("reel", ""), ("", "India"), ("chat", None)])
        )
    )
    summary = score_file(
        with_columns,
        tmp_path / "o3",
        model=clf,
        options=ScoreOptions(surface_column="surface", country_column="country"),
    )
    rejects = [json.loads(line) for line in (tmp_path / "o3" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["id"], r["reason"].split(" ")[:2]) for r in rejects] == [
        (1, 1, ["unknown", "surface"]),
        (2, 2, ["bad", "country"]),
    ]
    assert summary.scored == 2


REAL_SCORE_BATCH = score_module.score_batch


def _counting(monkeypatch, fail_after: int | None = None) -> list[int]:
    calls: list[int] = []
    real = REAL_SCORE_BATCH

    def wrapped(*args, **kwargs):
        if fail_after is not None and len(calls) == fail_after:
            raise KeyboardInterrupt  # as Ctrl-C would
        calls.append(len(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(score_module, "score_batch", wrapped)
    return calls


def test_an_interrupted_run_resumes_without_recomputing_finished_shards(tmp_path, monkeypatch, clf):
    source = _write(tmp_path / "in.parquet", _rows(), "parquet")
    options = ScoreOptions(shard_size=3, batch_size=3, format="parquet")  # one score_batch call per shard
    out = tmp_path / "out"
    _counting(monkeypatch, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        score_file(source, out, model=clf, options=options)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["shards"]) == ["00000", "00001"] and not manifest["complete"]
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "part-00000.parquet", "part-00001.parquet"]

    calls = _counting(monkeypatch)
    summary = score_file(source, out, model=clf, options=options)
    assert len(calls) == 5 and summary.shards == 7 and summary.shards_skipped == 2  # 20 rows / 3 = 7 shards
    assert (out / "_SUCCESS").is_file()

    # a shard that went missing (or was truncated) is recomputed; the others are not
    (out / "part-00003.parquet").unlink()
    calls = _counting(monkeypatch)
    summary = score_file(source, out, model=clf, options=options)
    assert calls == [3] and summary.shards_skipped == 6

    clean = tmp_path / "clean"
    monkeypatch.undo()
    score_file(source, clean, model=clf, options=options)
    assert read_output(out) == read_output(clean)


def test_a_changed_model_input_or_option_is_refused_unless_overwrite(tmp_path, clf):
    source = _write(tmp_path / "in.jsonl", _rows(), "jsonl")
    out = tmp_path / "out"
    score_file(source, out, model=clf)
    shifted = [LABELS[(i + 1) % len(LABELS)] for i in range(len(SENTENCES))]
    other = RiskClassifier.baseline(min_df=1, max_iter=50).fit(SENTENCES, shifted, eval_set=(SENTENCES, shifted))
    other.save(tmp_path / "other-model")
    assert other.version != clf.version
    with pytest.raises(ScoreError, match=r"different model_version.*--overwrite"):
        score_file(source, out, model=tmp_path / "other-model")
    with pytest.raises(ScoreError, match="different options"):
        score_file(source, out, model=clf, options=ScoreOptions(shard_size=5))
    with source.open("a") as fh:
        fh.write(json.dumps({"text": SENTENCES[0]}) + "\n")
    with pytest.raises(ScoreError, match="different input"):
        score_file(source, out, model=clf)
    summary = score_file(source, out, model=tmp_path / "other-model", overwrite=True)
    assert summary.rows == 21 and summary.shards_skipped == 0
    assert {r["model_version"] for r in read_output(out)} == {other.version}

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ScoreError, match="not empty"):
        score_file(source, foreign, model=clf, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_cli_scores_and_resumes_and_exits_2_on_bad_options(tmp_path, tiny_artifact):
    source = _write(tmp_path / "in.csv", _rows(), "csv")
    out = tmp_path / "scored.parquet"
    args = ["score", str(source), "--out", str(out), "--model", str(tiny_artifact), "--shard-size", "8"]
    args += ["--surface-column", "surface", "--country-column", "country", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "20 row(s): 20 scored, 0 rejected; 3 shard(s), 0 skipped" in result.output
    assert (out / "part-00002.parquet").is_file()  # the format follows OUTPUT's suffix
    assert all(t not in result.output for t in SENTENCES)
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "3 skipped" in again.output

    def fails(*extra, source=source):
        result = runner.invoke(
            app, ["score", str(source), "--out", str(tmp_path / "o"), "--model", str(tiny_artifact), *extra]
        )
        assert result.exit_code == 2, result.output
        return result.output

    assert "does not exist" in fails(source=tmp_path / "missing.jsonl")
    (tmp_path / "in.txt").write_text("x\n")
    assert "unknown input format '.txt'" in fails(source=tmp_path / "in.txt")
    assert "missing column(s) ['body']" in fails("--text-column", "body")
    assert "unknown output format 'xml'" in fails("--format", "xml")
    assert "unknown surface 'reel'" in fails("--surface", "reel")
    assert "not a model artifact" in fails("--model", str(tmp_path))
    conflict = runner.invoke(app, [*args[:6], "--shard-size", "5", *args[8:]])
    assert conflict.exit_code == 2 and "--overwrite" in conflict.output
