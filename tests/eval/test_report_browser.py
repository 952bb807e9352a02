"""The HTML report in headless Chromium: every plot is drawn, a blurred error text is revealed on click, and the
page asks the network for nothing. Needs Debian's `chromium` (apt-get install -y chromium) and the playwright
Python client; no browser is downloaded.
"""

from pathlib import Path

import pytest

from eval.evaluate import EvalData, ModelScorer, evaluate
from eval.report import write_report

from .test_report import N_PLOTS, make_rows, train_models

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    data = EvalData.from_rows(make_rows(8, seed=3, flips=8), description="fixture")
    result = evaluate([ModelScorer(p) for p in train_models(root / "models")], data, n_boot=20, n_errors=3)
    return write_report(result, data, root / "report.html")


def test_report_draws_every_plot_and_reveals_a_text_on_click(report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')")
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI and this container run as root, where Chromium's sandbox refuses to start
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            requests, problems = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(report.as_uri())

            plots = page.locator("svg.plot")
            assert plots.count() == N_PLOTS
            for i in range(N_PLOTS):
                box = plots.nth(i).bounding_box()
                assert box and box["width"] > 0 and box["height"] > 0, f"plot {i} has no size"
                assert plots.nth(i).locator("polyline").count() > 0, f"plot {i} has no curve"

            text = page.locator(".err-text").first
            assert "blur" in text.evaluate("e => getComputedStyle(e).filter")
            text.click()
            assert text.evaluate("e => getComputedStyle(e).filter") == "none"
            assert text.get_attribute("aria-pressed") == "true"

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 0
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert problems == []
