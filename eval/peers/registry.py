"""Every scorer `sahay eval` can put side by side: the peers (each in its own venv) and Sahay's own models.

A peer is a `PeerSpec`: what to pip-install into its virtual environment, in which order, and the adapter file
that `worker.py` loads there. Our models are `ModelSpec`s, scored in this process. `SCORERS` lists both, so one
list of names covers everything; `open_scorer(name)` gives an object with `at_risk(texts)` and `close()`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PEERS_DIR = Path(__file__).parent
SHIMS_DIR = PEERS_DIR / "shims"
WORKER = PEERS_DIR / "worker.py"


@dataclass(frozen=True)
class PeerSpec:
    name: str
    """The PyPI distribution name; also the venv's folder name and the scorer name."""
    version: str
    summary: str
    install: tuple[tuple[str, ...], ...]
    """`pip install` argument lists, run in this order in the fresh venv."""
    adapter: str
    """Adapter file in eval/peers/, loaded by worker.py in the venv."""
    mapping: str
    """How the peer's output becomes at_risk in [0, 1]."""
    output: str = "binary"
    """binary (0/1), levels (a few steps) or probability."""
    languages: tuple[str, ...] = ("en",)
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables for the worker."""
    shims: tuple[str, ...] = ()
    """Packages under eval/peers/shims/ that the worker's sys.path gets first."""
    batch_size: int = 64
    """Texts per request to the worker."""
    threshold: float = 0.5
    """Where at_risk flags a text (binary: triggered; levels: "high" or above; probability: the argmax)."""
    smoke_text: str = "The library opens at nine on weekdays."

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def adapter_path(self) -> Path:
        return PEERS_DIR / self.adapter

    def fingerprint(self) -> str:
        """Changes whenever what `setup` installs changes; a venv made for another fingerprint is stale."""
        payload = json.dumps({"name": self.name, "version": self.version, "install": self.install})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelSpec:
    """One of Sahay's model artifacts, scored in-process: at_risk = P(ideation) + P(intent)."""

    name: str
    path: Path
    summary: str
    languages: tuple[str, ...] = ("en", "hi", "hi-Latn")
    output: str = "probability"


TORCH = "torch==2.13.0"
"""The CPU wheel this project pins; installed first wherever torch is needed, before anything could pull CUDA."""

PEERS: dict[str, PeerSpec] = {
    spec.name: spec
    for spec in (
        PeerSpec(
            name="pantheon-guardrails",
            version="0.3.2",
            summary="English crisis regexes of an LLM-guardrails library (CrisisProtocol)",
            install=(("pantheon-guardrails==0.3.2",),),
            adapter="adapter_pantheon.py",
            mapping="CrisisProtocol().check(text, jurisdiction='US').triggered: 1.0 if triggered else 0.0",
            output="binary",
        ),
        PeerSpec(
            name="rrt-advocate",
            version="0.1.1",
            summary="keyword + VADER sentiment + message-shape crisis levels (CrisisEngine), one session per text",
            install=(("rrt-advocate[vader]==0.1.1",),),
            adapter="adapter_rrt.py",
            mapping=(
                "reset_session(), then assess(text).crisis_level: stable 0, elevated 0.25, high 0.5, "
                "critical 0.75, emergency 1"
            ),
            output="levels",
        ),
        PeerSpec(
            name="suicide-text-predictor",
            version="0.2.4",
            summary="bundled English BiLSTM (torch), model loaded once; torchtext replaced by a shim",
            install=((TORCH,), ("--no-deps", "suicide-text-predictor==0.2.4")),
            adapter="adapter_stp.py",
            mapping="softmax P(class 1, 'SUICIDE') of the package's own model, preprocessing as predict_tweet",
            output="probability",
            env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
            shims=("torchtext",),
            batch_size=64,
        ),
    )
}

OURS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("sahay", Path("artifacts/model"), "the default model (sahay train)"),
        ModelSpec("baseline", Path("artifacts/baseline"), "TF-IDF + logistic regression (sahay train --kind tfidf)"),
    )
}

SCORERS: tuple[str, ...] = (*OURS, *PEERS)
"""Every scorer name, ours first."""


class UnknownScorer(ValueError):
    """A name that is neither a peer, one of our models nor a model artifact directory."""


def peer_spec(name: str) -> PeerSpec:
    try:
        return PEERS[name]
    except KeyError:
        raise UnknownScorer(f"unknown peer {name!r}; expected one of {', '.join(PEERS)}") from None


def open_scorer(name: str, *, cache_dir: Path | None = None, threads: int | None = None):
    """A scorer by name: a peer (PeerScorer), one of ours (ModelScorer), or a path to a model artifact."""
    from eval.peers.scorer import PeerScorer
    from eval.scorers import ModelScorer

    if name in PEERS:
        return PeerScorer(name, cache_dir=cache_dir, threads=threads)
    if name in OURS:
        return ModelScorer(OURS[name].path, name)
    path = Path(name)
    if path.is_dir():
        return ModelScorer(path)
    raise UnknownScorer(f"unknown scorer {name!r}; expected one of {', '.join(SCORERS)} or a model directory")
