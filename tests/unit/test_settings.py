from pathlib import Path

import pytest

from data.settings import DataSettings


def test_defaults_point_beside_the_checkout():
    settings = DataSettings()
    assert settings.datasets_dir.name == "datasets" and settings.datasets_dir.parent.name == "shared"
    assert (settings.seed_dir / "en_a.jsonl").is_file()


def test_toml_file_then_environment_then_arguments(tmp_path, monkeypatch):
    config = tmp_path / "sahay.toml"
    config.write_text('[data]\nsplit_seed = 7\ndata_dir = "/tmp/from-toml"\n')
    monkeypatch.setenv("SAHAY_CONFIG", str(config))
    assert DataSettings().split_seed == 7
    monkeypatch.setenv("SAHAY_SPLIT_SEED", "9")
    settings = DataSettings()
    assert settings.split_seed == 9 and settings.data_dir == Path("/tmp/from-toml")
    assert DataSettings(split_seed=11).split_seed == 11


def test_missing_config_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SAHAY_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(FileNotFoundError, match=r"absent\.toml"):
        DataSettings()


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("SAHAY_TEST_FRACTION", "0.9")
    with pytest.raises(ValueError, match="test_fraction"):
        DataSettings()
