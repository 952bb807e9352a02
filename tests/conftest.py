"""Shared fixtures: paths to the small hand-made fixture files (never copies of the real datasets)."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_datasets() -> Path:
    return FIXTURES / "datasets"


@pytest.fixture
def seed_dir() -> Path:
    return Path(__file__).parents[1] / "data" / "seed"
