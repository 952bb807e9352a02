"""`RiskClassifier`: the one object a user needs — fit, predict, save, load.

    clf = RiskClassifier.load("artifacts/model")
    clf.predict(["ab jeene ka mann nahi karta"])[0].at_risk

It wraps a backend (the TF-IDF baseline or the e5 encoder) with what every backend shares: model-input
normalisation, temperature calibration, a second (romanised) reading of unsure Devanagari texts, operating
points, language tags, explanations and a version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import Progress

from data.langid import detect_lang
from data.normalize import normalize
from data.taxonomy import LABELS
from model.backends import Backend, load_backend
from model.calibration import calibrated_probs, fit_temperature
from model.explain import occlusion_spans
from model.labels import SIGNAL_MASKS, label_masks
from model.operating_points import OperatingPoint, choose_operating_points
from model.prediction import Prediction
from model.script_views import choose_weight, devanagari_rows, mix, read_both, romanised, unsure_rows

MANIFEST = "classifier.json"
FORMAT_VERSION = 1
MAX_CHARS = 20_000
"""Texts are cut to this many characters before normalisation: the encoder reads far fewer tokens anyway."""


def _as_label_sets(y: Sequence[str | Sequence[str]]) -> list[list[str]]:
    return [[item] if isinstance(item, str) else list(item) for item in y]


class RiskClassifier:
    """Five-way self-harm-risk classifier with calibrated probabilities and derived signals."""

    def __init__(
        self,
        backend: Backend,
        temperature: float = 1.0,
        operating_points: dict[str, OperatingPoint] | None = None,
        version: str = "",
        romanised_weight: float = 0.0,
        read_romanised: bool = False,
    ):
        self.backend = backend
        self.temperature = temperature
        self.operating_points = operating_points or {}
        self.version = version
        self.romanised_weight = romanised_weight
        """Weight of a Devanagari text's romanised reading in its probabilities (model/script_views.py)."""
        self.read_romanised = read_romanised
        """Whether `calibrate` chooses that weight on validation (else it keeps the one it has)."""
        self.fit_log: dict = {}
        """What the backend reported while fitting (epochs, losses, weight search); empty after `load`."""

    @classmethod
    def baseline(cls, **config) -> RiskClassifier:
        from model.backends.tfidf import TfidfBackend, TfidfConfig

        return cls(TfidfBackend(TfidfConfig(**config)))

    # -- training -------------------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        y: Sequence[str | Sequence[str]],
        eval_set: tuple[Sequence[str], Sequence[str | Sequence[str]]] | None = None,
        progress: Progress | None = None,
        sample_weight: Sequence[float] | None = None,
        teacher: RiskClassifier | None = None,
    ) -> RiskClassifier:
        """Fit on texts with a label or a label set each; calibrate and choose operating points on `eval_set`.

        `sample_weight` scales each text's loss; `teacher` (a fitted e5 or ensemble classifier) is distilled
        into this one's e5 encoder through its soft targets on the same texts.
        """
        masks = label_masks(_as_label_sets(y))
        prepared = [self._prepare(t) for t in texts]
        if sample_weight is not None and len(sample_weight) != len(prepared):
            raise ValueError(f"sample_weight has {len(sample_weight)} values for {len(prepared)} texts")
        extra: dict = {}
        if sample_weight is not None:
            extra["sample_weight"] = np.asarray(sample_weight, dtype=float)
        if teacher is not None:
            if not hasattr(teacher.backend, "distill_logits") or self.backend.kind == "tfidf":
                raise ValueError("distillation needs an e5 or ensemble teacher and student")
            extra["teacher_logits"] = teacher.backend.distill_logits(prepared)
        val = None
        if eval_set is not None:
            val = ([self._prepare(t) for t in eval_set[0]], label_masks(_as_label_sets(eval_set[1])))
        self.fit_log = self.backend.fit(prepared, masks, *(val or (None, None)), progress=progress, **extra)
        if eval_set is not None:
            self.calibrate(*eval_set)
        self.version = ""
        return self

    def calibrate(self, texts: Sequence[str], y: Sequence[str | Sequence[str]]) -> RiskClassifier:
        """Fit the temperature and choose the operating points on held-out texts (validation, never training)."""
        masks = label_masks(_as_label_sets(y))
        texts = [t[:MAX_CHARS] if isinstance(t, str) else "" for t in texts]
        logits = self.backend.logits([self._prepare(t) for t in texts])
        self.temperature = fit_temperature(logits, masks)
        probs = calibrated_probs(logits, self.temperature)
        rows = unsure_rows(texts, probs)
        if rows and (self.read_romanised or self.romanised_weight):
            other = self._probs(romanised([texts[i] for i in rows]))
            if self.read_romanised:
                self.romanised_weight, search = choose_weight(probs, masks, rows, other)
                self.fit_log["romanised_weight_search"] = search
            probs = mix(probs, rows, other, self.romanised_weight)
        self.operating_points = choose_operating_points(probs, masks)
        return self

    # -- inference ------------------------------------------------------------------------------------------
    @staticmethod
    def _prepare(text: str) -> str:
        return normalize(text[:MAX_CHARS]) if text else ""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 5) calibrated probabilities in `data.taxonomy.LABELS` order."""
        if not texts:
            return np.zeros((0, len(LABELS)))
        texts = [t[:MAX_CHARS] if isinstance(t, str) else "" for t in texts]
        return read_both(texts, self.romanised_weight, self._probs)

    def _probs(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities of each text as written (one reading)."""
        return calibrated_probs(self.backend.logits([self._prepare(t) for t in texts]), self.temperature)

    def threshold(self, name: str, default: float = 0.5) -> float:
        point = self.operating_points.get(name)
        return point.threshold if point else default

    def predict(self, texts: Sequence[str], explain: bool | str = True) -> list[Prediction]:
        """Label, probabilities, signals, language and explanation spans for each text.

        `explain`: True (every text), "flagged" (only texts whose top signal passes its balanced operating
        point; cheaper in serving) or False.
        """
        texts = [t if isinstance(t, str) else "" for t in texts]
        probs = self.predict_proba(texts)
        signals = {name: probs[:, mask].sum(axis=1) for name, mask in SIGNAL_MASKS.items()}
        top = np.where(signals["violating"] > signals["at_risk"], "violating", "at_risk")
        spans: list[list] = [[] for _ in texts]
        if explain:
            chosen = [
                i
                for i, t in enumerate(texts)
                if t.strip() and (explain is True or signals[top[i]][i] >= self.threshold(f"{top[i]}.balanced"))
            ]
            if chosen:
                sub = [texts[i][:MAX_CHARS] for i in chosen]
                base = np.array([signals[top[i]][i] for i in chosen])
                rows = devanagari_rows(sub) if self.romanised_weight else []
                if rows:  # occlusion reads each variant once, as written, so its base must be read the same way
                    base[rows] = self._signal_of_variants([sub[j] for j in rows], [top[chosen[j]] for j in rows])
                explained = occlusion_spans(sub, [top[i] for i in chosen], base, self._signal_of_variants)
                for i, s in zip(chosen, explained, strict=True):
                    spans[i] = s
        return [
            Prediction(
                label=LABELS[int(probs[i].argmax())],
                probabilities={label: float(p) for label, p in zip(LABELS, probs[i], strict=True)},
                at_risk=float(signals["at_risk"][i]),
                urgent=float(signals["urgent"][i]),
                violating=float(signals["violating"][i]),
                lang=detect_lang(texts[i]),
                model_version=self.version,
                spans=spans[i],
                top_signal=str(top[i]),
            )
            for i in range(len(texts))
        ]

    def _signal_of_variants(self, variants: list[str], signals: list[str]) -> np.ndarray:
        """Each variant's signal from one reading, as written: a second, romanised reading of every variant would
        double the cost of explaining a Devanagari text (one variant per word or run of words)."""
        probs = self._probs(variants)
        masks = np.stack([SIGNAL_MASKS[s] for s in signals])
        return (probs * masks).sum(axis=1)

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the backend and `classifier.json`; the version is a hash of everything written."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(path / "backend", ignore_errors=True)  # no files of an earlier model may linger
        self.backend.save(path / "backend")
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": self.backend.kind,
            "labels": list(LABELS),
            "temperature": self.temperature,
            "romanised_weight": self.romanised_weight,
            "operating_points": {k: v.to_dict() for k, v in self.operating_points.items()},
            "backend_config": self.backend.config_dict(),
        }
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
        for file in sorted((path / "backend").rglob("*")):
            if file.is_file():
                digest.update(file.relative_to(path).as_posix().encode())
                digest.update(file.read_bytes())
        self.version = f"{self.backend.kind}-{digest.hexdigest()[:12]}"
        manifest["version"] = self.version
        (path / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> RiskClassifier:
        """Load an artifact directory written by `save` (or `sahay train`); `threads`: the encoder's inference
        threads (None: SAHAY_THREADS, else every core)."""
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise FileNotFoundError(f"{path} is not a Sahay model artifact (no {MANIFEST})")
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("labels") != list(LABELS):
            raise ValueError(f"{path}: artifact labels {manifest.get('labels')} differ from this version's {LABELS}")
        backend = load_backend(manifest["kind"], path / "backend", threads)
        points = {k: OperatingPoint(**v) for k, v in manifest.get("operating_points", {}).items()}
        return cls(backend, manifest["temperature"], points, manifest["version"], manifest.get("romanised_weight", 0.0))
