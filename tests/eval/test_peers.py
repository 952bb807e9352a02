"""Peer adapters: the registry, the JSON-lines worker on a fake peer, the torchtext shim, our models as scorers,
and the three real peers in venvs made by `setup_peer` (these need pip to reach the package registry).

Test texts are short, made up and neutral; the two rule-based peers get one informational sentence as a
positive control.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from data.taxonomy import LABELS
from eval.peers import (
    OURS,
    PEERS,
    SCORERS,
    ModelScorer,
    PeerError,
    PeerNotInstalled,
    PeerScorer,
    PeerSetupError,
    PeerSpec,
    UnknownScorer,
    open_scorer,
    peer_status,
    setup_peer,
)
from eval.peers.commands import eval_group, peers_app
from eval.peers.registry import SHIMS_DIR, WORKER
from model.classifier import RiskClassifier

runner = CliRunner()

NEUTRAL = [
    "we planted tomatoes in the garden",
    "my cat sleeps on the keyboard",
    "The library opens at nine on weekdays.",
    "please bring an umbrella tomorrow",
]
INFORMATIONAL = "Suicide prevention month starts in September."

FAKE_ADAPTER = """
class Fake:
    def __init__(self, options):
        self.loads = 1
        self.options = options

    def score(self, texts):
        if "boom" in texts:
            raise RuntimeError("the fake peer broke")
        if "nan" in texts:
            return [float("nan")] * len(texts)
        if "short" in texts:
            return [0.5]
        print("noise the peer prints")  # must not reach the protocol stream
        return [{"at_risk": min(len(t), 10) / 10, "chars": len(t)} for t in texts]

    def info(self):
        return {"package": "fake", "options": self.options}

    def stats(self):
        return {"model_loads": self.loads}


def load(options):
    if options.get("fail"):
        raise RuntimeError("cannot load the fake peer")
    return Fake(options)
"""


@pytest.fixture
def fake_spec(tmp_path) -> PeerSpec:
    adapter = tmp_path / "fake_adapter.py"
    adapter.write_text(FAKE_ADAPTER)
    return PeerSpec(
        name="fake-peer",
        version="0.0.0",
        summary="a stand-in peer for protocol tests",
        install=(),
        adapter=str(adapter),  # absolute: PEERS_DIR / adapter is the adapter itself
        mapping="len(text) / 10, capped at 1",
        batch_size=2,
    )


# -- registry ---------------------------------------------------------------------------------------------------


def test_registry_lists_the_three_peers_and_our_models():
    assert set(PEERS) == {"pantheon-guardrails", "rrt-advocate", "suicide-text-predictor"}
    assert set(OURS) == {"sahay", "baseline"}
    assert set(SCORERS) == set(PEERS) | set(OURS)
    for spec in PEERS.values():
        assert spec.adapter_path.is_file()
        assert spec.mapping and spec.output in {"binary", "levels", "probability"}
        pinned = re.compile(rf"^{re.escape(spec.name)}(\[\w+\])?=={re.escape(spec.version)}$")
        assert any(pinned.match(arg) for step in spec.install for arg in step)
    assert PEERS["rrt-advocate"].install == (("rrt-advocate[vader]==0.1.1",),)


def test_the_torch_peer_installs_the_pinned_cpu_torch_first_and_itself_without_deps():
    spec = PEERS["suicide-text-predictor"]
    assert spec.install[0] == ("torch==2.13.0",)
    assert spec.install[1] == ("--no-deps", "suicide-text-predictor==0.2.4")
    assert spec.env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] == "1"
    assert spec.shims == ("torchtext",) and (SHIMS_DIR / "torchtext" / "__init__.py").is_file()


def test_unknown_scorer_names_are_refused(tmp_path):
    with pytest.raises(UnknownScorer, match="pantheon-guardrails"):
        open_scorer("no-such-peer")
    with pytest.raises(UnknownScorer):
        PeerScorer("no-such-peer", cache_dir=tmp_path)


def test_a_missing_venv_says_which_command_makes_it(tmp_path):
    assert peer_status(PEERS["rrt-advocate"], tmp_path).state == "missing"
    with pytest.raises(PeerNotInstalled, match="run `sahay eval peers setup rrt-advocate`"):
        PeerScorer("rrt-advocate", cache_dir=tmp_path)


# -- the worker protocol on a fake peer -------------------------------------------------------------------------


def _run_worker(spec: PeerSpec, lines: list[bytes], options: dict | None = None):
    command = [sys.executable, "-I", str(WORKER), "--adapter", str(spec.adapter_path)]
    command += ["--options", json.dumps(options or {})]
    proc = subprocess.run(command, input=b"".join(lines), capture_output=True, timeout=60, check=False)
    replies = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return proc, replies


def test_worker_answers_bad_requests_with_errors_and_keeps_serving(fake_spec):
    lines = [
        b"this is not json\n",
        b"[1, 2]\n",
        b'{"id": 1, "texts": "not a list"}\n',
        b'{"id": 2, "texts": [1, 2]}\n',
        b'{"id": 3, "op": "dance"}\n',
        b'{"id": 4, "texts": ["\xff"]\n',  # not UTF-8
        b"\n",  # blank lines are skipped
        b'{"id": 5, "texts": ["boom"]}\n',
        b'{"id": 6, "texts": ["nan"]}\n',
        b'{"id": 7, "texts": ["short", "x"]}\n',
        b'{"id": 8, "texts": ["ab", "abcd"]}\n',
        b'{"id": 9, "texts": []}\n',
        b'{"id": 10, "op": "stats"}\n',
        b'{"id": 11, "op": "quit"}\n',
        b'{"id": 12, "texts": ["after quit"]}\n',
    ]
    proc, replies = _run_worker(fake_spec, lines)
    assert proc.returncode == 0
    assert replies[0]["ready"] is True and replies[0]["info"]["package"] == "fake"
    by_id = {r["id"]: r for r in replies[1:] if r.get("id") is not None}
    anonymous = [r for r in replies[1:] if r.get("id") is None]
    assert len(anonymous) == 3 and all("error" in r for r in anonymous)  # not JSON, not an object, not UTF-8
    for request_id in (1, 2, 3, 5, 6, 7):
        assert "error" in by_id[request_id], request_id
    assert "fake peer broke" in by_id[5]["error"]
    assert by_id[8]["results"] == [{"at_risk": 0.2, "chars": 2}, {"at_risk": 0.4, "chars": 4}]
    assert by_id[9]["results"] == []
    stats = by_id[10]["stats"]
    assert stats["batches"] == 2 and stats["texts"] == 2 and stats["model_loads"] == 1 and stats["errors"] == 9
    assert by_id[11] == {"id": 11, "bye": True}
    assert 12 not in by_id  # nothing is read after quit
    assert b"noise the peer prints" in proc.stderr


def test_worker_reports_a_failed_load_and_exits(fake_spec):
    proc, replies = _run_worker(fake_spec, [], options={"fail": True})
    assert proc.returncode == 1
    assert replies == [{"ready": False, "error": "RuntimeError: cannot load the fake peer"}]


def test_peer_scorer_batches_and_returns_one_float_per_text(fake_spec):
    with PeerScorer(fake_spec, python=sys.executable) as scorer:
        assert scorer.info["package"] == "fake" and scorer.info["peer"] is True and scorer.name == "fake-peer"
        assert scorer.points == {"at_risk.peer": ("at_risk", 0.5)}  # the form eval.scorers reads
        scores = scorer.at_risk(["a", "abc", "", "abcdefghijklmnop", "ab"])
        assert isinstance(scores, np.ndarray) and scores.dtype == float
        assert scores.tolist() == [0.1, 0.3, 0.0, 1.0, 0.2]
        assert scorer.score(["abcd"]) == [{"at_risk": 0.4, "chars": 4}]
        assert scorer.at_risk([]).shape == (0,)
        stats = scorer.stats()
        assert stats["batches"] == 4 and stats["model_loads"] == 1  # 5 texts at batch size 2, then 1


def test_peer_scorer_raises_on_an_error_reply_and_stays_usable(fake_spec):
    with PeerScorer(fake_spec, python=sys.executable) as scorer:
        with pytest.raises(PeerError, match="fake peer broke"):
            scorer.at_risk(["boom"])
        assert scorer.at_risk(["ab"]).tolist() == [0.2]
        process = scorer._proc
    assert scorer._proc is None and process.poll() == 0  # closed: the worker was told to quit


def test_peer_scorer_reports_a_peer_that_cannot_load(tmp_path, fake_spec):
    broken = tmp_path / "broken_adapter.py"
    broken.write_text("import no_such_package_for_sure\n")
    spec = dataclasses.replace(fake_spec, adapter=str(broken))
    with pytest.raises(PeerError, match="failed to load: ModuleNotFoundError"):
        PeerScorer(spec, python=sys.executable)


def test_setup_makes_a_venv_that_the_scorer_then_finds(tmp_path, fake_spec):
    marker = setup_peer(fake_spec, tmp_path)  # no pip step: a bare venv running the stdlib-only worker
    assert marker["smoke_at_risk"] == 1.0 and marker["adapter"]["package"] == "fake"
    assert peer_status(fake_spec, tmp_path).ready
    with PeerScorer(fake_spec, cache_dir=tmp_path) as scorer:
        assert scorer.python.parent.parent == tmp_path / "fake-peer"
        assert scorer.at_risk(["abc"]).tolist() == [0.3]
    assert setup_peer(fake_spec, tmp_path) == marker  # ready: kept
    changed = dataclasses.replace(fake_spec, version="0.0.1")
    assert peer_status(changed, tmp_path).state == "stale"
    with pytest.raises(PeerNotInstalled, match="older spec"):
        PeerScorer(changed, cache_dir=tmp_path)


def test_a_failed_install_leaves_an_unfinished_venv(tmp_path, fake_spec):
    spec = dataclasses.replace(fake_spec, install=(("--no-index", "sahay-no-such-package==0.0.0"),))
    with pytest.raises(PeerSetupError, match="exited"):
        setup_peer(spec, tmp_path, smoke=False)
    assert peer_status(spec, tmp_path).state == "unfinished"
    with pytest.raises(PeerNotInstalled, match="unfinished"):
        PeerScorer(spec, cache_dir=tmp_path)


# -- the torchtext shim (run in a subprocess with our own torch, so this process never imports it) -----------------


def test_torchtext_shim_tokenizes_and_unpickles_a_vocab(tmp_path):
    script = textwrap.dedent(
        """
        import json, sys, torch
        from torchtext.data.utils import get_tokenizer
        from torchtext._torchtext import Vocab as VocabPybind
        from torchtext.vocab import Vocab

        tok = get_tokenizer("basic_english")
        vocab = Vocab(VocabPybind(["<unk>", "<pad>", "you", "can"], 0))
        torch.save(vocab, sys.argv[1])
        loaded = torch.load(sys.argv[1], weights_only=False)
        print(json.dumps({
            "tokens": tok("You can now install TorchText using pip!"),
            "quotes": tok('He said "fine", (ok).'),
            "indices": [loaded[t] for t in ["you", "can", "zzz", "<pad>"]],
            "len": len(loaded),
            "type": type(loaded).__module__ + "." + type(loaded).__name__,
        }))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "vocab.pth")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SHIMS_DIR), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tokens"] == ["you", "can", "now", "install", "torchtext", "using", "pip", "!"]
    assert out["quotes"] == ["he", "said", "fine", ",", "(", "ok", ")", "."]
    assert out["indices"] == [2, 3, 0, 1] and out["len"] == 4
    assert out["type"] == "torchtext.vocab.vocab.Vocab"


# -- our own models as scorers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [*NEUTRAL, "the bus was late again", "kal match dekhne chalenge", "the shop sells mangoes"] * 2
    labels = [LABELS[i % len(LABELS)] for i in range(len(texts))]
    clf = RiskClassifier.baseline(min_df=1, max_iter=50).fit(texts, labels, eval_set=(texts, labels))
    return clf.save(tmp_path_factory.mktemp("tiny-model"))


def test_model_scorer_is_p_ideation_plus_p_intent(tiny_model):
    clf = RiskClassifier.load(tiny_model)
    probs = clf.predict_proba(NEUTRAL)
    expected = probs[:, LABELS.index("ideation")] + probs[:, LABELS.index("intent")]
    with open_scorer(str(tiny_model)) as scorer:
        assert isinstance(scorer, ModelScorer) and scorer.info["peer"] is False
        assert set(scorer.points) == set(clf.operating_points)
        np.testing.assert_allclose(scorer.at_risk(NEUTRAL), expected)
        assert scorer.at_risk([]).shape == (0,)


def test_model_scorer_says_how_to_make_a_missing_model(tmp_path):
    from eval.dataset import EvalInputError

    with pytest.raises(EvalInputError, match="not a Sahay model artifact"):
        ModelScorer(tmp_path)


def test_cli_score_prints_json_lines_without_the_texts(tiny_model, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(NEUTRAL) + "\n")
    result = runner.invoke(peers_app, ["score", str(tiny_model), "--texts", str(texts)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["index"] for r in rows] == list(range(len(NEUTRAL)))
    assert all(0.0 <= r["at_risk"] <= 1.0 and set(r) == {"index", "at_risk"} for r in rows)
    assert not any(text in result.stdout for text in NEUTRAL)


def test_cli_score_and_list_on_an_empty_cache(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("hello\n")
    result = runner.invoke(peers_app, ["score", "rrt-advocate", "--texts", str(texts), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "sahay eval peers setup rrt-advocate" in result.output
    listed = runner.invoke(peers_app, ["list", "--cache-dir", str(tmp_path)])
    assert listed.exit_code == 0
    assert listed.output.count("missing") >= 3


def _fake_eval(
    model: Annotated[list[Path] | None, typer.Option("--model", "-m", help="artifact")] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
) -> None:
    """Evaluate (a stand-in for eval_command)."""
    typer.echo(f"evaluated {[p.name for p in model or []]} seed={seed}")


def test_eval_group_runs_the_command_or_reaches_the_peers(tmp_path):
    root = typer.Typer()
    root.command("other")(lambda: None)
    root.add_typer(eval_group(_fake_eval), name="eval")
    ran = runner.invoke(root, ["eval", "-m", "a", "--model", "b", "--seed", "3"])
    assert ran.exit_code == 0 and ran.output.strip() == "evaluated ['a', 'b'] seed=3", ran.output
    listed = runner.invoke(root, ["eval", "peers", "list", "--cache-dir", str(tmp_path)])
    assert listed.exit_code == 0 and "evaluated" not in listed.output and "missing" in listed.output
    shown = runner.invoke(root, ["eval", "--help"])
    assert shown.exit_code == 0 and "peers" in shown.output and "--seed" in shown.output


# -- the real peers, each in a venv made by setup_peer ------------------------------------------------------------


@pytest.fixture(scope="module")
def peers_cache(tmp_path_factory) -> Path:
    """A fresh peers dir, after checking pip can reach the registry (else every real-peer test skips)."""
    probe = tmp_path_factory.mktemp("pip-probe")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(probe), "pantheon-guardrails==0.3.2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"pip cannot reach the package registry, so no peer venv can be made: {proc.stderr[-300:]}")
    return tmp_path_factory.mktemp("peers")


def _ready_scorer(name: str, cache: Path, **kwargs) -> PeerScorer:
    marker = setup_peer(PEERS[name], cache)
    assert peer_status(PEERS[name], cache).ready
    assert marker["smoke_at_risk"] < 0.5
    return PeerScorer(name, cache_dir=cache, **kwargs)


@pytest.fixture(scope="module")
def pantheon(peers_cache):
    with _ready_scorer("pantheon-guardrails", peers_cache) as scorer:
        yield scorer


@pytest.fixture(scope="module")
def rrt(peers_cache):
    with _ready_scorer("rrt-advocate", peers_cache) as scorer:
        yield scorer


@pytest.fixture(scope="module")
def stp(peers_cache):
    with _ready_scorer("suicide-text-predictor", peers_cache, batch_size=2) as scorer:
        yield scorer


def _one_float_per_text(scorer: PeerScorer, texts: list[str]) -> np.ndarray:
    scores = scorer.at_risk(texts)
    assert scores.shape == (len(texts),) and scores.dtype == float
    assert ((scores >= 0) & (scores <= 1)).all()
    return scores


def test_pantheon_guardrails(pantheon):
    assert pantheon.info["version"] == "0.3.2"
    scores = _one_float_per_text(pantheon, [*NEUTRAL, "", INFORMATIONAL])
    assert scores.tolist() == [0.0] * (len(NEUTRAL) + 1) + [1.0]  # binary: the regex matches "suicide"


def test_rrt_advocate_judges_each_text_alone(rrt):
    assert rrt.info["version"] == "0.1.1" and rrt.info["sentiment"] == "SentimentIntensityAnalyzer"  # [vader]
    texts = [*NEUTRAL, "", INFORMATIONAL]
    scores = _one_float_per_text(rrt, texts)
    assert (scores[:-1] < 0.5).all() and scores[-1] == 1.0  # a self-harm keyword -> emergency
    assert set(scores.tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    results = rrt.score(texts[::-1])
    assert [r["at_risk"] for r in results] == scores[::-1].tolist()  # order does not matter: reset per text
    assert results[0]["level"] == "emergency" and results[0]["confidence"] == 1.0
    assert rrt.stats()["resets"] >= 2 * len(texts)


def test_suicide_text_predictor_loads_its_model_once(stp):
    assert stp.info["version"] == "0.2.4" and stp.info["torch"].startswith("2.13.0")
    scores = _one_float_per_text(stp, [*NEUTRAL, ""])  # batch size 2: three batches
    assert (scores[:3] < 0.5).all()
    _one_float_per_text(stp, NEUTRAL[:2])
    stats = stp.stats()
    assert stats["batches"] >= 4 and stats["model_loads"] == 1 and stats["vocab_loads"] == 1


def test_suicide_text_predictor_matches_its_own_predict_tweet(stp, peers_cache):
    """The batched adapter gives the package's own answer (predict_tweet prints the winning class's confidence)."""
    text = NEUTRAL[2]
    python = peers_cache / "suicide-text-predictor" / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-c", "import sys, suicide_text_predictor as s; print(s.predict_tweet(sys.argv[1]))", text],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(SHIMS_DIR), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r"Prediction: (SUICIDE|NON-SUICIDE) with confidence rate: ([\d.]+)%", proc.stdout)
    assert found, "predict_tweet's output changed"
    confidence = float(found.group(2)) / 100
    expected = confidence if found.group(1) == "SUICIDE" else 1 - confidence
    assert stp.at_risk([text])[0] == pytest.approx(expected, abs=1e-3)


def test_bench_measures_a_peer_like_a_model(fake_spec):
    from eval.bench import bench_peer

    result = bench_peer(fake_spec, ["a", "bb", "ccc"], batch_sizes=(1, 4), seconds=0.05, python=sys.executable)
    assert result["kind"] == "peer" and result["path"] == "fake-peer"
    assert [b["batch_size"] for b in result["batches"]] == [1, 4]
    for b in result["batches"]:
        assert b["texts_per_s"] > 0 and 0 < b["latency_ms"]["p50"] <= b["latency_ms"]["p95"] <= b["latency_ms"]["p99"]
    assert result["peak_rss_mb"] > 0 and result["gflop_per_text"] is None


def test_bench_refuses_unknown_and_missing_peers(tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("one\ntwo\n")
    from cli import app

    args = ["bench", "--texts", str(texts), "--out", str(tmp_path / "b.json")]
    unknown = runner.invoke(app, [*args, "--peer", "nope"])
    assert unknown.exit_code == 2 and "unknown peer 'nope'" in unknown.output
    missing = runner.invoke(app, [*args, "--peer", "rrt-advocate"])  # SAHAY_CACHE_DIR is a fresh tmp dir in tests
    assert missing.exit_code == 2 and "sahay eval peers setup" in missing.output
