"""Training settings: a YAML file (model/configs/default.yaml unless --config) validated by Pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from model.backends.e5 import E5Config
from model.backends.ensemble import EnsembleConfig
from model.backends.tfidf import TfidfConfig

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["e5", "tfidf", "ensemble"] = "e5"
    data_dir: Path = Path("artifacts/data")
    out_dir: Path = Path("artifacts/model")
    seed: int = 13
    max_public_rows: int | None = Field(6000, description="cap on rows from train-only public sources; None = all")
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
