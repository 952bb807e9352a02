"""The service leaves one core to its event loop: the encoder gets every core but one unless told otherwise."""

import pytest

from serve.settings import ServeSettings


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (8, 7), (None, 1)])
def test_inference_threads_default_to_all_cores_but_one(monkeypatch, cores, expected):
    monkeypatch.delenv("SAHAY_THREADS", raising=False)
    monkeypatch.setattr("serve.settings.os.cpu_count", lambda: cores)
    assert ServeSettings().inference_threads() == expected


def test_sahay_threads_overrides_the_default(monkeypatch):
    monkeypatch.setenv("SAHAY_THREADS", "2")
    monkeypatch.setattr("serve.settings.os.cpu_count", lambda: 2)
    assert ServeSettings().inference_threads() == 2


def test_zero_means_the_default_and_negative_is_refused_with_the_setting_named(monkeypatch):
    monkeypatch.setattr("serve.settings.os.cpu_count", lambda: 4)
    monkeypatch.setenv("SAHAY_THREADS", "0")
    assert ServeSettings().inference_threads() == 3
    monkeypatch.setenv("SAHAY_THREADS", "-1")
    with pytest.raises(ValueError, match="threads"):
        ServeSettings()
