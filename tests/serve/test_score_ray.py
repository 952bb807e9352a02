"""`sahay score --engine ray` on a local Ray instance gives the local engine's files; shard plans read what the
stream reads; Ray stays optional; a missing Ray or a bad --address is a clear exit 2.

Invented, neutral texts only (tests/neutral_texts.py); nothing here prints a text."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import serve.score as score_module
from cli import app
from serve.score import MANIFEST_NAME, PROB_COLUMNS, InputReader, ScoreError, ScoreOptions, read_output, score_file
from serve.score_ray import RayOptions, RayRunError, pool_size, score_file_ray
from tests.neutral_texts import SENTENCES
from tests.serve.pg import in_ci

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
HINDI = "चाय बहुत अच्छी बनी है"  # "the tea is very good": multi-byte UTF-8 for the byte offsets
SURFACES = ["post", "comment", "chat", "bio"]


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance of 2 CPUs for the module (the engine reuses an initialised Ray); shut down after."""
    try:
        import ray
    except ImportError:
        if in_ci():
            pytest.fail('Ray is required when CI is set: pip install "sahay[distributed]"', pytrace=False)
        pytest.skip('Ray is not installed: pip install "sahay[distributed]"')
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024**2,
        log_to_driver=False,
        logging_level="warning",
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def _rows() -> list[dict]:
    """20 good rows and 4 that `check_row` rejects (missing, empty and long text, an unknown surface)."""
    rows = [
        {"id": f"r{i}", "text": t, "surface": SURFACES[i % len(SURFACES)], "country": ["IN", "", "GB"][i % 3]}
        for i, t in enumerate(SENTENCES)
    ]
    rows.insert(3, {"id": "no-text", "text": None, "surface": "post", "country": ""})
    rows.insert(9, {"id": "empty", "text": "  ", "surface": "post", "country": "IN"})
    rows.insert(14, {"id": "long", "text": "the garden gate squeaks " * 20, "surface": "post", "country": ""})
    rows.insert(20, {"id": "reel", "text": SENTENCES[0], "surface": "reel", "country": "IN"})
    return rows


def _write(path: Path, rows: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        lines.insert(5, "{not json")  # a parse error: a reject the reader makes
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)  # shards start inside row groups
    else:
        import csv

        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, "text": "" if r["text"] is None else r["text"]} for r in rows)
    return path


OPTIONS = ScoreOptions(surface_column="surface", country_column="country", shard_size=5, batch_size=3, max_chars=200)


def _same(ray_out: Path, local_out: Path) -> None:
    """Row for row the same scored rows (probabilities within 1e-6), the same rejects, the same shard entries."""
    floats = (*PROB_COLUMNS, "at_risk", "urgent", "violating")
    got, want = read_output(ray_out), read_output(local_out)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)  # same columns, same order
        assert [float(g[c]) for c in floats] == pytest.approx([float(w[c]) for c in floats], abs=1e-6)
        assert {k: v for k, v in g.items() if k not in floats} == {k: v for k, v in w.items() if k not in floats}
    assert (ray_out / "rejects.jsonl").read_text() == (local_out / "rejects.jsonl").read_text()
    ray_manifest = json.loads((ray_out / MANIFEST_NAME).read_text())
    local_manifest = json.loads((local_out / MANIFEST_NAME).read_text())

    def shards(manifest):
        return {k: {f: v for f, v in e.items() if f != "bytes"} for k, e in manifest["shards"].items()}

    assert shards(ray_manifest) == shards(local_manifest)
    assert ray_manifest["summary"] == local_manifest["summary"] and ray_manifest["complete"]
    assert (ray_out / "_SUCCESS").is_file()


# ----------------------------------------------------------------------------------------------- shard plans


def _tricky_input(tmp_path: Path, fmt: str) -> Path:
    """Inputs whose rows are hard to find by byte offset: blank lines, CRLF and bare CR line ends, a BOM,
    multi-byte text, quoted newlines, broken rows, several row groups."""
    if fmt == "jsonl":
        body = (
            '\ufeff{"text": "a"}\n\n'
            + json.dumps({"text": HINDI}, ensure_ascii=False)
            + "\r\n   \r\n"
            + '{"text": "b"}\r{"text": "c"}\n'
            + "[1, 2]\n{broken\n"
            + "".join(json.dumps({"id": i, "text": f"{HINDI} {i}"}, ensure_ascii=False) + "\n" for i in range(7))
            + '{"text": "last, no newline"}'
        )
        path = tmp_path / "tricky.jsonl"
        path.write_bytes(body.encode("utf-8"))
    elif fmt == "csv":
        body = (
            "\ufeffid,text\r\n"
            '1,"the bus was late,\nagain"\r\n'
            f"2,{HINDI}\r\n"
            "3,too,many\r\n"
            '4,"a ""quoted"" word"\n'
            + "".join(f"{i},{HINDI} {i}\r\n" for i in range(5, 12))
            + '12,"an unclosed quote\nto the end'
        )
        path = tmp_path / "tricky.csv"
        path.write_bytes(body.encode("utf-8"))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "tricky.parquet"
        rows = [{"id": i, "text": f"{HINDI} {i}"} for i in range(17)]
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=3)
    else:
        from datasets import Dataset

        path = tmp_path / "tricky_ds"
        Dataset.from_list([{"id": i, "text": f"{HINDI} {i}"} for i in range(17)]).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "datasets"])
def test_a_shard_plan_reads_back_exactly_the_streamed_rows(tmp_path, fmt):
    reader = InputReader(_tricky_input(tmp_path, fmt), ScoreOptions())
    streamed = list(reader)
    count = len(streamed)
    assert count >= 12
    if fmt in ("jsonl", "csv"):
        assert any("__error__" in r for r in streamed)  # the broken rows are rows, and rejects later
    for size in (1, 2, 3, 4, 7, 100):
        plan = reader.plan(size)
        assert [s.index for s in plan] == list(range(len(plan)))
        assert plan[0].start == 0 and plan[-1].end == len(streamed)
        assert all(a.end == b.start for a, b in itertools.pairwise(plan))
        assert all(s.end - s.start == min(size, len(streamed) - s.start) for s in plan)
        shards = {spec.index: reader.shard_rows(spec) for spec in reversed(plan)}  # each read on its own, last first
        assert [row for index in sorted(shards) for row in shards[index]] == streamed


def test_a_plan_checks_the_first_jsonl_row_like_the_stream(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{broken\n{"body": "x"}\n')
    with pytest.raises(ScoreError, match=r"first row has no column\(s\) \['text'\]"):
        InputReader(path, ScoreOptions()).plan(10)


def test_a_shard_that_ends_early_is_refused(tmp_path):
    path = _tricky_input(tmp_path, "parquet")
    reader = InputReader(path, ScoreOptions())
    spec = reader.plan(10)[-1]
    with pytest.raises(ScoreError, match="ends early"):
        reader.shard_rows(type(spec)(spec.index, spec.start, spec.end + 5))


# ----------------------------------------------------------------------------------------------- the pool size


class _Nodes:
    def __init__(self, *cpus: int):
        self._nodes = [{"Alive": True, "Resources": {"CPU": float(c)}} for c in cpus]
        self._nodes.append({"Alive": False, "Resources": {"CPU": 64.0}})  # a dead node counts for nothing

    def nodes(self):
        return self._nodes


def test_the_pool_fits_the_nodes_or_is_refused():
    assert pool_size(_Nodes(2), None, None) == (2, 1)
    assert pool_size(_Nodes(2), 1, None) == (1, 2)
    assert pool_size(_Nodes(16, 16), None, 4) == (8, 4)
    assert pool_size(_Nodes(16, 16), 3, None) == (3, 8)  # 3 actors of 10 CPUs would not fit 16-CPU nodes
    with pytest.raises(ScoreError, match=r"3 worker\(s\) of 1 CPU\(s\) each do not fit.*\(2 CPUs\)"):
        pool_size(_Nodes(2), 3, None)
    with pytest.raises(ScoreError, match="do not fit"):
        pool_size(_Nodes(8, 8), None, 12)


# ----------------------------------------------------------------------------------------------- on Ray


@pytest.mark.parametrize(("fmt", "out_fmt"), [("jsonl", "parquet"), ("parquet", "jsonl"), ("csv", "csv")])
def test_the_ray_engine_writes_what_the_local_engine_writes(tmp_path, tiny_artifact, ray_instance, fmt, out_fmt):
    source = _write(tmp_path / f"in.{fmt}", _rows(), fmt)
    options = ScoreOptions(**{**vars(OPTIONS), "format": out_fmt})
    local = score_file(source, tmp_path / "local", model=tiny_artifact, options=options)
    summary = score_file_ray(
        source, tmp_path / "ray", model=tiny_artifact, options=options, ray_options=RayOptions(workers=2)
    )
    rejected = 5 if fmt == "jsonl" else 4
    assert (
        (summary.rows, summary.scored, summary.rejected)
        == (local.rows, 20, rejected)
        == (
            local.rows,
            local.scored,
            local.rejected,
        )
    )
    assert summary.reasons == local.reasons and summary.shards == local.shards == -(-local.rows // 5)
    _same(tmp_path / "ray", tmp_path / "local")
    # the model is loaded once per actor, not per shard: at most 2 actors shared all the shards
    assert (summary.workers, summary.threads_per_worker) == (2, 1)
    assert 1 <= len(summary.worker_stats) <= 2
    assert sum(w["shards"] for w in summary.worker_stats) == summary.shards
    assert sum(w["rows"] for w in summary.worker_stats) == summary.rows


REAL_SCORE_BATCH = score_module.score_batch


def test_a_run_interrupted_locally_is_finished_on_ray_and_a_lost_shard_recomputed(
    tmp_path, monkeypatch, tiny_artifact, ray_instance
):
    source = _write(tmp_path / "in.parquet", _rows(), "parquet")
    options = ScoreOptions(shard_size=4, batch_size=4, format="parquet")  # one score_batch call per shard
    calls: list[int] = []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C would
        calls.append(1)
        return REAL_SCORE_BATCH(*args, **kwargs)

    monkeypatch.setattr(score_module, "score_batch", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        score_file(source, out, model=tiny_artifact, options=options)
    monkeypatch.undo()
    assert sorted(json.loads((out / MANIFEST_NAME).read_text())["shards"]) == ["00000", "00001"]

    summary = score_file_ray(source, out, model=tiny_artifact, options=options, ray_options=RayOptions(workers=2))
    assert (summary.shards, summary.shards_skipped) == (6, 2)  # 24 rows / 4
    assert sum(w["shards"] for w in summary.worker_stats) == 4
    score_file(source, tmp_path / "clean", model=tiny_artifact, options=options)
    _same(out, tmp_path / "clean")

    (out / "part-00003.parquet").unlink()
    summary = score_file_ray(source, out, model=tiny_artifact, options=options, ray_options=RayOptions(workers=1))
    assert summary.shards_skipped == 5 and [w["shards"] for w in summary.worker_stats] == [1]
    _same(out, tmp_path / "clean")


def test_a_worker_that_cannot_load_the_model_stops_the_run(tmp_path, tiny_artifact, ray_instance):
    # the driver reads only the artifact's manifest; a node whose copy is incomplete fails in its worker
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_artifact, broken)
    shutil.rmtree(broken / "backend")
    (broken / "backend").mkdir()
    source = _write(tmp_path / "in.jsonl", _rows(), "jsonl")
    out = tmp_path / "out"
    with pytest.raises(RayRunError, match=r"a Ray worker failed: FileNotFoundError: .*\(worker .*, shard \d+\)"):
        score_file_ray(source, out, model=broken, options=OPTIONS, ray_options=RayOptions(workers=1))
    assert not list(out.glob("part-*")) and not (out / "_SUCCESS").exists()  # nothing committed, nothing left
    assert not (out / MANIFEST_NAME).exists() or json.loads((out / MANIFEST_NAME).read_text())["shards"] == {}


def test_rows_parquet_cannot_hold_are_refused_by_both_engines_naming_the_column(tmp_path, tiny_artifact, ray_instance):
    rows = [{"text": SENTENCES[i], "extra": i if i < 12 or i % 2 else {"nested": i}} for i in range(20)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = ScoreOptions(shard_size=4, format="parquet")  # shard 3 mixes numbers and objects in `extra`
    refusal = r"cannot write Parquet: column 'extra' holds dict and int values in different rows; use --format jsonl"
    with pytest.raises(ScoreError, match=refusal):
        score_file(source, tmp_path / "local", model=tiny_artifact, options=options)
    with pytest.raises(ScoreError, match=refusal + r".*\(worker .*, shard 3\)"):
        score_file_ray(
            source, tmp_path / "ray", model=tiny_artifact, options=options, ray_options=RayOptions(workers=1)
        )
    manifest = json.loads((tmp_path / "ray" / MANIFEST_NAME).read_text())
    assert not manifest["complete"] and "00003" not in manifest["shards"]
    assert all((tmp_path / "ray" / entry["file"]).is_file() for entry in manifest["shards"].values())


def test_cli_scores_on_ray_and_refuses_ray_options_without_it(tmp_path, tiny_artifact, ray_instance):
    source = _write(tmp_path / "in.csv", _rows(), "csv")
    args = ["score", str(source), "--model", str(tiny_artifact), "--shard-size", "6", "--max-chars", "200"]
    args += ["--surface-column", "surface", "--country-column", "country", "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "24 row(s): 20 scored, 4 rejected; 4 shard(s), 0 skipped" in result.output
    assert "on Ray: 2 worker(s) x 1 thread(s)" in result.output
    assert all(t not in result.output for t in SENTENCES)
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "local")]).exit_code == 0
    _same(tmp_path / "ray", tmp_path / "local")

    for extra in (["--workers", "2"], ["--address", "auto"], ["--engine", "spark"]):
        refused = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), *extra])
        assert refused.exit_code == 2, refused.output
        assert "go with --engine ray" in refused.output or "unknown engine 'spark'" in refused.output
    too_many = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--engine", "ray", "--workers", "3"])
    assert too_many.exit_code == 2 and "do not fit" in too_many.output
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------------------- Ray optional


def _sahay(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    """The CLI in a fresh process (no Ray initialised there), after `prelude`."""
    code = f"import sys\n{prelude}\nfrom cli import app\nsys.argv = ['sahay', *sys.argv[1:]]\napp()"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_without_ray_the_ray_engine_says_how_to_install_it(tmp_path, tiny_artifact):
    source = _write(tmp_path / "in.jsonl", _rows(), "jsonl")
    args = ["score", str(source), "--out", str(tmp_path / "o"), "--model", str(tiny_artifact), "--engine", "ray"]
    result = _sahay(*args, prelude="sys.modules['ray'] = None  # as if Ray were not installed")
    assert result.returncode == 2, result.stderr
    assert 'pip install "sahay[distributed]"' in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_bad_address_is_a_clear_exit_2(tmp_path, tiny_artifact):
    source = _write(tmp_path / "in.jsonl", _rows(), "jsonl")
    args = ["score", str(source), "--out", str(tmp_path / "o"), "--model", str(tiny_artifact), "--engine", "ray"]
    refused = _sahay(*args, "--address", "127.0.0.1:1")  # nothing listens on port 1
    assert refused.returncode == 2, refused.stderr
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in refused.stderr and "Traceback" not in refused.stderr
    malformed = _sahay(*args, "--address", "no-port-here")
    assert malformed.returncode == 2, malformed.stderr
    assert "cannot connect to Ray at 'no-port-here'" in malformed.stderr and "Traceback" not in malformed.stderr
    assert not (tmp_path / "o").exists()


def test_the_core_install_does_not_bring_ray():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("ray")]
    assert project["optional-dependencies"]["distributed"] == ["ray[data]==2.60.0"]
    assert "-e '.[dev,distributed]'" in (REPO / "Makefile").read_text()  # CI (make test) runs the Ray tests
    code = (
        "import sys, cli, serve.score, serve.score_commands, serve.score_ray, serve.score_bench, eval.commands\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
