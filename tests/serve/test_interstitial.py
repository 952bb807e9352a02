"""GET /v1/resources and GET /interstitial on the real server, then the page in headless Chromium: both languages
render (Devanagari included), helpline links are tel: / sms: with the right numbers, Tab walks the links in order,
continue follows the policy, and the page asks the network for nothing. Screenshots go to $SAHAY_TEST_ARTIFACTS
(else a pytest temporary folder); the path is printed at the end of the run.

Needs Debian's `chromium` (apt-get install -y chromium) and a Devanagari font (apt-get install -y fonts-lohit-deva
or fonts-noto-core); without them these browser tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.interstitial import KINDS, load_locale
from serve.logging import LOGGER_NAME
from serve.settings import ServeSettings
from tests.serve.browser import IN_CI, screenshot_folder
from tests.serve.browser import Visit as BrowserVisit

PHONE = {"width": 390, "height": 844}


def page_url(server, **query) -> str:
    return f"{server.base_url}/interstitial?{urlencode(query)}"


# -- JSON ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "lang", "ids", "dials"),
    [
        ("IN", "hi", ["in-tele-manas"], ["14416", "18008914416"]),
        ("in", "hi-Latn", ["in-tele-manas"], ["14416", "18008914416"]),
        ("US", "en", ["us-988-lifeline"], ["988"]),
        ("GB", "en", ["gb-ie-samaritans"], ["116123"]),
        ("IE", "en", ["gb-ie-samaritans"], ["116123"]),
    ],
)
def test_resources_for_a_country(client, country, lang, ids, dials):
    r = client.get("/v1/resources", params={"country": country, "lang": lang})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["country"] == country.upper() and body["lang"] == lang
    assert body["fallback"] is False and body["message"] is None
    assert [h["id"] for h in body["helplines"]] == ids
    assert [p["dial"] for h in body["helplines"] for p in h["phones"]] == dials
    assert all(h["verified"] and h["last_verified"] and h["source"].startswith("https://") for h in body["helplines"])
    assert r.headers["cache-control"] == "public, max-age=3600"


def test_resources_us_has_text_and_chat(client):
    (h,) = client.get("/v1/resources", params={"country": "US"}).json()["helplines"]
    assert [s["dial"] for s in h["sms"]] == ["988"] and h["chat"].startswith("https://")


def test_unverified_entries_are_not_served_by_default(client):
    ids = [h["id"] for h in client.get("/v1/resources", params={"country": "IN"}).json()["helplines"]]
    assert "in-aasra" not in ids


def test_resources_for_an_unknown_country_fall_back(client):
    r = client.get("/v1/resources", params={"country": "zz", "lang": "hi"})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is True and "ZZ" in body["message"]
    assert [h["id"] for h in body["helplines"]] == ["intl-find-a-helpline"]
    assert body["helplines"][0]["fallback"] is True


VIEWER = {"country": "IN", "kind": "viewer_warning"}


@pytest.mark.parametrize(
    ("path", "query", "names"),
    [
        ("/v1/resources", {"country": "IND"}, "country"),
        ("/v1/resources", {"country": "1N"}, "country"),
        ("/v1/resources", {"country": "IN", "lang": "fr"}, "lang"),
        ("/interstitial", {"country": "IN", "kind": "popup"}, "kind"),
        ("/interstitial", {"country": "", "kind": "author_support"}, "country"),
        ("/interstitial", {"country": "IN", "kind": "author_support", "lang": "hi-Deva"}, "lang"),
        ("/interstitial", {**VIEWER, "continue_url": "javascript:alert(1)"}, "continue"),
        ("/interstitial", {**VIEWER, "continue_url": "data:text/html,x"}, "continue"),
        ("/interstitial", {**VIEWER, "continue_url": "http://x.org/"}, "continue"),
    ],
)
def test_bad_query_values_are_refused_clearly(client, path, query, names):
    r = client.get(path, params=query)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(f"{names}") and "must" in detail, detail


def test_resources_are_in_the_openapi_schema(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/resources"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ResourcesResponse")
    assert {p["name"] for p in op["parameters"]} == {"country", "lang"}
    assert "/interstitial" in spec["paths"]


def test_page_headers(client):
    r = client.get("/interstitial", params={"country": "IN", "kind": "author_support", "lang": "hi"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe" not in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "private, max-age=3600"
    assert "set-cookie" not in r.headers
    assert len(r.content) < 20_000


# -- in process: settings and policy that the shared server does not have ---------------------------------------


def _app_client(tiny_artifact, **settings) -> TestClient:
    # no `with`: the lifespan (model load) is not needed for these public routes
    return TestClient(create_app(ServeSettings(model_path=tiny_artifact, **settings)))


def test_unverified_entries_are_served_with_the_setting(tiny_artifact):
    client = _app_client(tiny_artifact, show_unverified_helplines=True)
    hs = client.get("/v1/resources", params={"country": "IN", "lang": "hi"}).json()["helplines"]
    assert [(h["id"], h["verified"]) for h in hs] == [("in-tele-manas", True), ("in-aasra", False)]


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_a_broken_directory_is_a_logged_server_error(tiny_artifact, tmp_path):
    broken = tmp_path / "helplines.yaml"
    broken.write_text("version: 1\nhelplines: [{id: x}]\n", "utf-8")
    client = _app_client(tiny_artifact, helplines_path=broken)
    handler = Records()
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    try:
        r = client.get("/v1/resources", params={"country": "IN"})
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
    assert r.status_code == 500 and "helpline directory is invalid" in r.json()["detail"]
    (logged,) = [r for r in handler.records if r.getMessage() == "helplines_invalid"]
    assert "helplines[0].countries: Field required" in logged.fields["error"]


def test_continue_follows_the_policy_in_force(tiny_artifact, tmp_path):
    policy_mod = pytest.importorskip("serve.policy", reason="serve/policy.py is not written yet")
    spec = yaml.safe_load((Path(policy_mod.__file__).parent / "policy.yaml").read_text("utf-8"))
    spec["interstitials"]["search_support"]["allow_continue"] = False
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), "utf-8")
    client = _app_client(tiny_artifact)
    client.app.state.policy = policy_mod.load_policy(path)
    for kind in KINDS:
        html = client.get("/interstitial", params={"country": "US", "kind": kind}).text
        assert ('id="continue"' in html) is (kind != "search_support"), kind


# -- the browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shots(request, tmp_path_factory) -> Path:
    yield from screenshot_folder(request, tmp_path_factory, "interstitial")


class Visit(BrowserVisit):
    """One page load on a phone-sized screen, with everything it asked the network for and every console error or
    page error."""

    viewport = PHONE


@pytest.mark.parametrize(
    ("lang", "country", "kind"),
    [
        ("en", "IN", "author_support"),
        ("hi", "IN", "author_support"),
        ("hi", "US", "search_support"),
        ("en", "GB", "viewer_warning"),
        ("hi", "ZZ", "viewer_warning"),
        ("hi-Latn", "IN", "search_support"),
    ],
)
def test_page_renders_in_the_browser(server, browser, shots, lang, country, kind):
    url = page_url(server, country=country, lang=lang, kind=kind)
    page_lang = "hi" if lang == "hi" else "en"
    t = load_locale(page_lang)
    with Visit(browser, url) as v:
        page = v.page
        assert v.response.status == 200
        assert page.get_attribute("html", "lang") == page_lang
        h1 = page.locator("h1")
        assert h1.inner_text() == t["kinds"][kind]["title"]
        box = h1.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 10
        assert page.title() == t["kinds"][kind]["title"]
        # every heading level in order, one h1; each helpline link is a big enough tap target
        levels = page.eval_on_selector_all("h1,h2,h3", "hs => hs.map(h => +h.tagName[1])")
        assert levels[0] == 1 and levels.count(1) == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels))
        for link in page.locator("a.action").all():
            b = link.bounding_box()
            assert b["height"] >= 44 and b["width"] >= 44, link.inner_text()
            assert link.get_attribute("aria-label").startswith(link.inner_text())
        assert page.locator("section h2").count() == 3
        shot = shots / f"interstitial-{kind}-{lang}-{country}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000
    assert v.requests == [url], "the page asked the network for something besides itself"
    assert v.problems == []


def test_helpline_links_are_tel_and_sms_with_the_right_numbers(server, browser):
    expected = {
        "IN": ["tel:14416", "tel:18008914416"],
        "US": ["tel:988", "sms:988"],
        "GB": ["tel:116123"],
        "IE": ["tel:116123"],
        "ZZ": [],
    }
    for country, hrefs in expected.items():
        with Visit(browser, page_url(server, country=country, lang="en", kind="author_support")) as v:
            links = v.page.eval_on_selector_all(
                "a.action", "as => as.map(a => [a.getAttribute('href'), a.getAttribute('aria-label')])"
            )
        numbers = [href for href, _ in links if href.startswith(("tel:", "sms:"))]
        assert numbers == hrefs, country
        assert all(re.fullmatch(r"(tel|sms):\+?\d+", href) for href in numbers)
        others = [href for href, _ in links if not href.startswith(("tel:", "sms:"))]
        assert all(h.startswith(("https://", "mailto:")) for h in others), others
        if country == "IN":
            assert ["tel:14416", "Call 14416, Tele-MANAS"] in links
        if country == "ZZ":
            assert others == ["https://findahelpline.com/"]


def test_tel_links_in_hindi_keep_the_numbers(server, browser):
    with Visit(browser, page_url(server, country="IN", lang="hi", kind="author_support")) as v:
        links = v.page.eval_on_selector_all("a.action", "as => as.map(a => [a.getAttribute('href'), a.innerText])")
    assert links[:2] == [["tel:14416", "14416 पर कॉल करें"], ["tel:18008914416", "1-800-891-4416 पर कॉल करें"]]


def test_devanagari_renders_with_real_glyphs(server, browser):
    """Tofu (missing-glyph boxes) are all one width; real Devanagari glyphs are not, and differ from tofu."""
    with Visit(browser, page_url(server, country="IN", lang="hi", kind="author_support")) as v:
        widths = v.page.evaluate(
            """() => {
              const h1 = document.querySelector('h1');
              const w = s => { const e = document.createElement('span'); e.textContent = s; h1.appendChild(e);
                               const r = e.getBoundingClientRect().width; e.remove(); return r; };
              return {ka: w('कककककककक'), ri: w('ऋऋऋऋऋऋऋऋ'), tofu: w('\\u0378'.repeat(8))};
            }"""
        )
    rendered = widths["ka"] != widths["ri"] and widths["tofu"] not in (widths["ka"], widths["ri"])
    if not rendered:
        message = f"no Devanagari font: Hindi shows as boxes {widths} (apt-get install -y fonts-lohit-deva)"
        pytest.fail(message) if IN_CI else pytest.skip(message)


def test_tab_walks_every_link_in_reading_order_with_a_visible_focus(server, browser):
    url = page_url(server, country="US", lang="en", kind="search_support", continue_url="myapp://results")
    with Visit(browser, url) as v:
        page = v.page
        order = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
        assert order[:4] == ["tel:988", "sms:988", "https://988lifeline.org/chat/", "https://988lifeline.org/"]
        assert order[-1] == "myapp://results"
        visited = []
        for _ in order:
            page.keyboard.press("Tab")
            focused = page.evaluate(
                """() => { const a = document.activeElement; const s = getComputedStyle(a);
                           return [a.getAttribute('href'), s.outlineStyle, parseFloat(s.outlineWidth)]; }"""
            )
            visited.append(focused[0])
            assert focused[1] != "none" and focused[2] >= 2, f"no visible focus on {focused[0]}"
        assert visited == order
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == order[-2]
    assert v.problems == []


def test_continue_matches_the_policy_file(server, browser):
    """The running server's policy (serve/policy.yaml): continue shown exactly for the kinds it allows."""
    policy_mod = pytest.importorskip("serve.policy", reason="serve/policy.py is not written yet")
    policy = policy_mod.load_policy(ServeSettings().policy_path)
    for kind in KINDS:
        with Visit(browser, page_url(server, country="IN", lang="en", kind=kind)) as v:
            present = v.page.locator("#continue").count() == 1
        assert present is policy.allows_continue(kind), kind


def test_continue_without_a_url_tells_the_host_app(server, browser):
    """In an iframe: clicking continue posts {type: 'sahay:continue', kind} to the parent and sets #continue."""
    url = page_url(server, country="IN", lang="hi", kind="viewer_warning")
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.set_content(
            f'<iframe src="{url}" style="width:380px;height:800px"></iframe>'
            "<script>window.got=[];addEventListener('message',e=>window.got.push(e.data))</script>"
        )
        frame = page.frame_locator("iframe")
        link = frame.locator("#continue")
        assert link.inner_text() == load_locale("hi")["kinds"]["viewer_warning"]["continue"]
        link.click()
        page.wait_for_function("window.got.length > 0")
        assert page.evaluate("window.got") == [{"type": "sahay:continue", "kind": "viewer_warning"}]
        assert page.frames[1].url.endswith("#continue")
        assert problems == []
    finally:
        context.close()


def test_page_works_with_javascript_off(server, browser, shots):
    url = page_url(server, country="IN", lang="hi", kind="search_support", continue_url="myapp://results")
    with Visit(browser, url, java_script_enabled=False) as v:
        hrefs = v.page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
        assert hrefs[:2] == ["tel:14416", "tel:18008914416"] and hrefs[-1] == "myapp://results"
        v.page.screenshot(path=str(shots / "interstitial-search_support-hi-IN-nojs.png"), full_page=True)
    assert v.requests == [url]


def test_pages_are_public(server):
    """No API key: the page and the JSON are for end users."""
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        assert c.get("/v1/resources", params={"country": "IN"}).status_code == 200
        assert c.get("/interstitial", params={"country": "IN", "kind": "author_support"}).status_code == 200
