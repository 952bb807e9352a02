"""What `sahay eval` scores with: Sahay model artifacts and peers (functions texts -> at_risk scores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from eval.dataset import EvalData, EvalInputError
from model.labels import SIGNAL_MASKS, signal_scores


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores texts for risk. Optional extras, used when present:
    `probs(texts) -> (n, 5)` in LABELS order (replaces `at_risk`), `points` (operating-point name ->
    (signal, threshold); the `<signal>.balanced` ones decide the signals), `explain(texts) -> spans per text`
    (dicts with start, end, weight) and `info` (a dict shown in the report)."""

    name: str

    def at_risk(self, texts: Sequence[str]) -> np.ndarray: ...


class ModelScorer:
    """A Sahay model artifact as a scorer."""

    def __init__(self, path: Path, name: str | None = None):
        from model.classifier import RiskClassifier

        try:
            self.clf = RiskClassifier.load(path)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise EvalInputError(f"cannot load model {path}: {exc}") from None
        self.name = name or Path(path).name
        self.points = {k: (p.signal, p.threshold) for k, p in self.clf.operating_points.items()}
        self.info = {"kind": self.clf.backend.kind, "version": self.clf.version, "path": str(path), "peer": False}

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        return self.clf.predict_proba(list(texts))

    def score(self, texts: Sequence[str]) -> list[dict]:
        """One dict per text, as peers give (`sahay eval peers score`)."""
        return [{"at_risk": float(x)} for x in self.at_risk(texts)]

    def close(self) -> None:
        """Nothing to release: the model lives in this process (peers run in their own)."""

    def __enter__(self) -> ModelScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def at_risk(self, texts: Sequence[str]) -> np.ndarray:
        return signal_scores(self.probs(texts))["at_risk"]

    def explain(self, texts: Sequence[str]) -> list[list[dict]]:
        """Words whose removal lowers at_risk most (the signal errors are ranked by), as offsets into each text."""
        from model.explain import occlusion_spans

        texts = list(texts)
        if not texts:
            return []

        def score(variants: list[str], _signals: list[str]) -> np.ndarray:
            return self.probs(variants)[:, SIGNAL_MASKS["at_risk"]].sum(axis=1)

        spans = occlusion_spans(texts, ["at_risk"] * len(texts), score(texts, []), score)
        return [[{"start": s.start, "end": s.end, "weight": round(s.weight, 4)} for s in row] for row in spans]


@dataclass
class FunctionScorer:
    """A peer classifier given as a function texts -> at_risk scores, flagged at `threshold`."""

    name: str
    fn: Callable[[Sequence[str]], Sequence[float]]
    threshold: float = 0.5
    info: dict = field(default_factory=dict)

    @property
    def points(self) -> dict[str, tuple[str, float]]:
        return {"at_risk.peer": ("at_risk", self.threshold)}

    def at_risk(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.fn(list(texts)), dtype=float)


@dataclass
class Scored:
    """One scorer's outputs on the evaluation set."""

    name: str
    info: dict
    probs: np.ndarray | None
    signals: dict[str, np.ndarray]
    thresholds: dict[str, float]
    points: dict[str, tuple[str, float]]
    explain: Callable[[Sequence[str]], list[list[dict]]] | None


def score(scorer: Scorer, data: EvalData) -> Scored:
    """Run a scorer once over every text; signals come from probabilities when it has them."""
    probs = None
    if callable(getattr(scorer, "probs", None)):
        probs = np.asarray(scorer.probs(data.texts), dtype=float)
        signals = signal_scores(probs)
    else:
        signals = {"at_risk": np.asarray(scorer.at_risk(data.texts), dtype=float)}
    for name, values in signals.items():
        if values.shape != (len(data),):
            raise EvalInputError(f"{scorer.name} gave {values.shape} {name} scores for {len(data)} texts")
    points = dict(getattr(scorer, "points", {}) or {})
    thresholds = {}
    for signal in signals:  # the balanced point decides; a peer's single point otherwise; else 0.5
        named = {name: float(t) for name, (sig, t) in points.items() if sig == signal}
        only = next(iter(named.values())) if len(named) == 1 else 0.5
        thresholds[signal] = named.get(f"{signal}.balanced", only)
    info = {"peer": probs is None, **dict(getattr(scorer, "info", {}) or {})}
    return Scored(scorer.name, info, probs, signals, thresholds, points, getattr(scorer, "explain", None))
