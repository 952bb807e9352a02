"""Settings for the data pipeline, from a TOML file and the environment.

Precedence: explicit arguments > environment (`SAHAY_...`) > the `[data]` table of the settings file
(`SAHAY_CONFIG`, else `./sahay.toml` when present) > defaults. Other packages reuse `TomlSection`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
PUBLIC_SOURCES = (
    "hinglish_reddit_suicidal",
    "kaggle_suicide_detection_sample",
    "sdcnl",
    "twitter_suicidal_intention",
    "twitter_suicidal_tweet_detection_kaggle",
    "twitter_suicide_severity_3class",
)


def settings_file() -> Path | None:
    """The settings file in force, if any."""
    path = os.environ.get("SAHAY_CONFIG")
    if path:
        return Path(path)
    default = Path("sahay.toml")
    return default if default.is_file() else None


class TomlSection(PydanticBaseSettingsSource):
    """One table of the settings file, e.g. `[data]`."""

    def __init__(self, settings_cls: type[BaseSettings], section: str):
        super().__init__(settings_cls)
        path = settings_file()
        self.values: dict[str, Any] = {}
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(f"settings file {path} (from SAHAY_CONFIG) does not exist")
            with path.open("rb") as fh:
                self.values = tomllib.load(fh).get(section, {})

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in self.settings_cls.model_fields}


def default_datasets_dir() -> Path:
    """`../shared/datasets` beside the checkout (the layout on developer machines and CI)."""
    return (REPO_DIR.parent / "shared" / "datasets").resolve()


class DataSettings(BaseSettings):
    """Where the data comes from, where the build goes, and how it is split."""

    model_config = SettingsConfigDict(env_prefix="SAHAY_", extra="ignore")

    datasets_dir: Path = Field(default_factory=default_datasets_dir)
    seed_dir: Path = PACKAGE_DIR / "seed"
    data_dir: Path = Path("artifacts/data")
    exports: list[Path] = Field(default_factory=list, description="platform export files to include")
    split_seed: int = 13
    validation_fraction: float = Field(0.2, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    train_only_sources: list[str] = Field(
        default_factory=lambda: list(PUBLIC_SOURCES),
        description="noisy sources that only ever feed training (their READMEs advise against evaluating on them)",
    )
    near_duplicate_threshold: float = Field(
        0.6, gt=0, le=1, description="estimated Jaccard that ties records into one group"
    )
    duplicate_threshold: float = Field(
        0.9, gt=0, le=1, description="estimated Jaccard above which the later record is removed"
    )
    minhash_permutations: int = 128

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return init_settings, env_settings, TomlSection(settings_cls, "data")
