"""Headless Debian Chromium through Playwright, for the browser tests (the interstitial and the moderator page).

`launch_chromium()` backs a `browser` fixture; without /usr/bin/chromium or Playwright it skips the test, except under
CI (`CI` set), where it fails. `Visit` is one page load in a fresh browser context, with every request the page made
and every console or page error. `screenshot_folder()` backs a `shots` fixture.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = bool(os.environ.get("CI"))


def launch_chromium() -> Iterator:
    """Yield a launched headless Chromium (Debian's), closed afterwards: `yield from launch_chromium()` in a
    fixture."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("CI needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("playwright is not installed (pip install '.[dev]')")
    with sync_playwright() as p:
        # --no-sandbox: CI and this container run as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def screenshot_folder(request, tmp_path_factory, name: str) -> Iterator[Path]:
    """Yield the folder for screenshots: $SAHAY_TEST_ARTIFACTS/`name` (else a pytest temporary folder); afterwards
    print where the saved ones are, past pytest's output capture, so a plain `pytest -q` run shows it."""
    given = os.environ.get("SAHAY_TEST_ARTIFACTS")
    folder = Path(given) / name if given else tmp_path_factory.mktemp(f"{name}-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    saved = sorted(p.name for p in folder.glob("*.png"))
    if saved:
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"\n{name} screenshots in {folder}: {', '.join(saved)}")


class Visit:
    """One page load in a fresh browser context (`viewport` unless `context` says otherwise), with everything it
    asked the network for and every console error or warning and page error."""

    viewport: ClassVar[dict[str, int]] = {"width": 1280, "height": 900}

    def __init__(self, browser, url: str, **context):
        self.context = browser.new_context(**{"viewport": self.viewport, **context})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None)
        self.response = self.page.goto(url)

    def close(self) -> None:
        self.context.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
