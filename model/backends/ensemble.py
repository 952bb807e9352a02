"""The e5 model and the character n-gram baseline, averaged.

They fail differently: e5 carries meaning across languages, the n-grams catch romanised-Hindi spellings that
the XLM-R vocabulary splits badly. The mixture p = w * p_e5 + (1 - w) * p_tfidf takes the weight w with the
best validation macro-F1 (ties: lower partial NLL); the facade then calibrates the mixture as for any backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from rich.progress import Progress
from scipy.special import softmax
from sklearn.metrics import f1_score

from model.backends.e5_config import E5Config
from model.backends.tfidf import TfidfBackend, TfidfConfig
from model.calibration import partial_nll


class EnsembleConfig(BaseModel):
    e5_weight: float | None = Field(None, ge=0.0, le=1.0, description="None: chosen on validation from `grid`")
    grid: list[float] = Field(default_factory=lambda: [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])


class EnsembleBackend:
    kind = "ensemble"

    def __init__(
        self,
        config: EnsembleConfig | None = None,
        e5=None,
        tfidf: TfidfBackend | None = None,
        weight: float = 0.5,
    ):
        self.config = config or EnsembleConfig()
        if e5 is None:
            from model.backends.e5 import E5Backend

            e5 = E5Backend(E5Config())
        self.e5 = e5
        self.tfidf = tfidf or TfidfBackend(TfidfConfig())
        self.weight = self.config.e5_weight if self.config.e5_weight is not None else weight

    @staticmethod
    def _mix(e5_logits: np.ndarray, tfidf_logits: np.ndarray, w: float) -> np.ndarray:
        probs = w * softmax(e5_logits, axis=1) + (1 - w) * softmax(tfidf_logits, axis=1)
        return np.log(np.maximum(probs, 1e-12))

    def fit(
        self,
        texts,
        masks,
        val_texts=None,
        val_masks=None,
        progress: Progress | None = None,
        sample_weight=None,
        teacher_logits=None,
    ) -> dict:
        """Fit both members (`teacher_logits` distil the e5 member), then choose the weight on validation."""
        distill = {} if teacher_logits is None else {"teacher_logits": teacher_logits}
        log = {
            "tfidf": self.tfidf.fit(texts, masks, val_texts, val_masks, progress, sample_weight=sample_weight),
            "e5": self.e5.fit(texts, masks, val_texts, val_masks, progress, sample_weight=sample_weight, **distill),
        }
        if self.config.e5_weight is None and val_texts is not None:
            e5_val, tf_val = self.e5.logits(list(val_texts)), self.tfidf.logits(list(val_texts))
            scores = {w: self._score(self._mix(e5_val, tf_val, w), val_masks) for w in self.config.grid}
            self.weight = max(scores, key=scores.get)
            log["weight_search"] = {
                str(w): {"macro_f1": round(f, 4), "partial_nll": round(-n, 4)} for w, (f, n) in scores.items()
            }
        log["e5_weight"] = self.weight
        return log

    @staticmethod
    def _score(logits: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
        """Validation macro-F1 on single-label rows (what the product is judged by), then -NLL to break ties."""
        single = masks.sum(axis=1) == 1
        macro = (
            f1_score(
                masks[single].argmax(1),
                logits[single].argmax(1),
                labels=range(masks.shape[1]),
                average="macro",
                zero_division=0,
            )
            if single.any()
            else 0.0
        )
        return float(macro), -partial_nll(logits, masks)

    def distill_logits(self, texts: list[str]) -> np.ndarray:
        """What a student e5 learns from: this ensemble's e5 member (the student joins its own n-gram model)."""
        return self.e5.logits(texts)

    def logits(self, texts: list[str]) -> np.ndarray:
        return self._mix(self.e5.logits(texts), self.tfidf.logits(texts), self.weight)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.e5.save(directory / "e5")
        self.tfidf.save(directory / "tfidf")
        members = {"e5": self.e5.kind, "tfidf": self.tfidf.kind}
        (directory / "config.json").write_text(
            json.dumps({**self.config.model_dump(), "weight": self.weight, "members": members})
        )

    @classmethod
    def load(cls, directory: Path, threads: int | None = None) -> EnsembleBackend:
        from model.backends import load_backend

        raw = json.loads((directory / "config.json").read_text())
        weight, members = raw.pop("weight"), raw.pop("members", {"e5": "e5", "tfidf": "tfidf"})
        e5 = load_backend(members["e5"], directory / "e5", threads)
        tfidf = load_backend(members["tfidf"], directory / "tfidf")
        return cls(EnsembleConfig(**raw), e5, tfidf, weight)

    def config_dict(self) -> dict:
        return {
            "ensemble": {**self.config.model_dump(), "weight": self.weight},
            "e5": self.e5.config_dict(),
            "tfidf": self.tfidf.config_dict(),
        }
