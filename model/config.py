"""Training settings: a YAML file (model/configs/default.yaml unless --config) validated by Pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from model.backends.e5_config import E5Config
from model.backends.ensemble import EnsembleConfig
from model.backends.tfidf import TfidfConfig

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transliterate: bool = False
    """Add a romanised copy (data/transliterate.py) of every Devanagari training text, tagged hi-Latn."""
    read_romanised: bool = False
    """Read a Devanagari text also romanised at inference and average the two readings, with a weight chosen
    on validation (model/script_views.py; 0 when that does not help)."""
    obfuscate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of the Latin-script training texts respelt in leetspeak or with typos (the copies the model learns
    from; validation and test texts stay as written)."""


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    """Train the configured model as the teacher, then a student with fewer encoder layers from its soft targets."""
    student_layers: int = Field(6, ge=1, le=12)
    init: Literal["teacher", "pretrained"] = "teacher"
    """Start the student from the fine-tuned teacher's layers and head, or from the pretrained encoder's."""
    layers: Literal["lower", "spread"] = "lower"
    """Which teacher layers a teacher-initialised student keeps: the lowest, or spread evenly up to the top one."""
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    temperature: float = Field(2.0, gt=0.0)
    unlabelled_rows: int = Field(0, ge=0)
    """Public texts that no model trains on with their labels, added with the teacher's soft targets only: the
    student then imitates the teacher on real posts as well as on the labelled rows."""
    epochs: int | None = Field(None, ge=1)
    """Epochs of the student (None: the e5 setting). It starts from the fine-tuned teacher, so it needs fewer."""
    patience: int | None = Field(None, ge=0)
    """Early-stopping patience of the student (None: the e5 setting, which the teacher uses). The teacher's best
    epoch came right before its first worse one in every run so far, while the student improved again after a
    worse epoch, so the default stops the teacher at once (e5.patience 0) and gives the student one more."""
    max_gap: float = 0.02
    """The student becomes the default model when its validation figures are within this of the teacher's."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["e5", "tfidf", "ensemble"] = "e5"
    data_dir: Path = Path("artifacts/data")
    out_dir: Path = Path("artifacts/model")
    seed: int = 13
    max_public_rows: int | None = Field(6000, description="cap on rows from train-only public sources; None = all")
    public_holdout_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    """Share of the public sets' groups never trained on, to measure at_risk on real posts (0: none)."""
    hard_negative_weight: float = Field(1.0, gt=0.0)
    """Loss weight of texts tagged figurative/news/grief/recovery/negation that are not at risk."""
    int8_max_drop: float | None = 0.01
    """Serve the e5 encoder in int8 when pooled validation macro-F1 and at_risk F1 drop by at most this much, and
    each language's by at most twice this (None: never)."""
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    e5: E5Config = Field(default_factory=E5Config)
    tfidf: TfidfConfig = Field(default_factory=TfidfConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)


def load_config(path: Path | None = None, **overrides) -> TrainConfig:
    """Read a YAML config (default file when None) and apply non-None overrides (dotted keys allowed: e5.epochs)."""
    path = path or DEFAULT_CONFIG
    if not Path(path).is_file():
        raise FileNotFoundError(f"training config {path} not found")
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    for key, value in overrides.items():
        if value is None:
            continue
        target = raw
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return TrainConfig.model_validate(raw)
