"""The baseline: character + word n-gram TF-IDF with a multinomial logistic regression.

Label sets are handled by soft EM: each record is spread over the labels its set allows, weighted first by
the class prior and then by the model's own posterior restricted to the set, and the model is refitted.
That is the partial-label likelihood, maximised with an estimator that only takes hard labels.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from pydantic import BaseModel
from rich.progress import Progress
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from model.labels import N_LABELS

TOKEN = r"[\w\u0900-\u097f]+"
"""Words including Devanagari vowel signs, which \\w alone would split."""


class TfidfConfig(BaseModel):
    char_ngram_range: tuple[int, int] = (2, 5)
    word_ngram_range: tuple[int, int] = (1, 2)
    max_features: int = 300_000
    min_df: int = 2
    C: float = 4.0
    em_rounds: int = 2
    class_weighting: bool = True
    max_iter: int = 300
    seed: int = 13


class TfidfBackend:
    kind = "tfidf"

    def __init__(self, config: TfidfConfig | None = None):
        self.config = config or TfidfConfig()
        self.vectorizer: FeatureUnion | None = None
        self.model: LogisticRegression | None = None

    def _new_vectorizer(self) -> FeatureUnion:
        c = self.config
        return FeatureUnion(
            [
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=c.char_ngram_range,
                        min_df=c.min_df,
                        max_features=c.max_features,
                        sublinear_tf=True,
                        lowercase=True,
                    ),
                ),
                (
                    "word",
                    TfidfVectorizer(
                        analyzer="word",
                        token_pattern=TOKEN,
                        ngram_range=c.word_ngram_range,
                        min_df=c.min_df,
                        max_features=c.max_features,
                        sublinear_tf=True,
                        lowercase=True,
                    ),
                ),
            ]
        )

    def fit(
        self, texts, masks, val_texts=None, val_masks=None, progress: Progress | None = None, sample_weight=None
    ) -> dict:
        c = self.config
        informative = masks.sum(axis=1) < N_LABELS  # a set of all labels (an unlabelled text) teaches nothing
        if not informative.all():
            texts = [t for t, keep in zip(texts, informative, strict=True) if keep]
            masks = masks[informative]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[informative]
        if not len(texts):
            raise ValueError("no labelled training texts")
        row_weight = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        min_df = c.min_df if len(texts) >= 50 else 1
        self.config = c.model_copy(update={"min_df": min_df})
        self.vectorizer = self._new_vectorizer()
        X = self.vectorizer.fit_transform(texts)
        prior = masks[masks.sum(axis=1) == 1].sum(axis=0) + 1.0
        q = masks * prior
        q = q / q.sum(axis=1, keepdims=True)
        task = progress.add_task("tf-idf + logistic regression", total=c.em_rounds + 1) if progress else None
        history = []
        for round_ in range(c.em_rounds + 1):
            rows, cls = np.nonzero(q > 1e-6)
            weight = q[rows, cls] * row_weight[rows]
            if c.class_weighting:
                mass = np.bincount(cls, weights=q[rows, cls], minlength=N_LABELS)
                class_w = len(texts) / (N_LABELS * np.maximum(mass, 1e-6))
                weight = weight * np.clip(class_w, 0.1, 10.0)[cls]
            self.model = LogisticRegression(C=c.C, max_iter=c.max_iter, random_state=c.seed)
            self.model.fit(X[rows], cls, sample_weight=weight)
            probs = self._full_proba(X)
            nll = float(-np.log(np.maximum((probs * masks).sum(axis=1), 1e-12)).mean())
            history.append({"round": round_, "train_partial_nll": nll})
            q = probs * masks
            q = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
            if task is not None:
                progress.advance(task)
        return {"em_rounds": history, "features": int(X.shape[1])}

    def _full_proba(self, X) -> np.ndarray:
        """Probabilities over all five labels, even if a label was absent from training."""
        out = np.full((X.shape[0], N_LABELS), 1e-9)
        out[:, self.model.classes_] = self.model.predict_proba(X)
        return out / out.sum(axis=1, keepdims=True)

    def logits(self, texts: list[str]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("the baseline is not fitted")
        if not texts:
            return np.zeros((0, N_LABELS))
        return np.log(self._full_proba(self.vectorizer.transform(texts)))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump({"vectorizer": self.vectorizer, "model": self.model}, directory / "tfidf.joblib", compress=3)
        (directory / "config.json").write_text(self.config.model_dump_json(indent=2))

    @classmethod
    def load(cls, directory: Path) -> TfidfBackend:
        backend = cls(TfidfConfig.model_validate_json((directory / "config.json").read_text()))
        state = joblib.load(directory / "tfidf.joblib")
        backend.vectorizer, backend.model = state["vectorizer"], state["model"]
        return backend

    def config_dict(self) -> dict:
        return self.config.model_dump()
