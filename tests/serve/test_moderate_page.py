"""GET /moderate, the moderator page: its headers and CSP, then the whole flow in headless Chromium against the real
server: sign in with a moderator key, the queue most urgent first with SLA countdowns, claim by keyboard, the text
blurred until `r`, Hindi in Devanagari rendered with lang="hi", label and action by keyboard, submit; then through
the API the item is decided, gone from the queue, and in the audit log under the moderator's key id; the model's
explanation spans of the search item are <mark>ed at their character offsets, in order. A key of another role gets
a clear message. The page asks no other origin for anything.

The texts are neutral and invented. Screenshots go to $SAHAY_TEST_ARTIFACTS/moderate/ (else a pytest temporary
folder); the path is printed at the end. Needs Debian's `chromium` and Playwright; without them the browser tests
skip, except under CI, where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from playwright.sync_api import expect

from tests.serve.browser import Visit as BrowserVisit
from tests.serve.browser import screenshot_folder
from tests.serve.conftest import start_server, stop_server
from tests.serve.queue_helpers import enqueue_all_policy, write_enqueue_all_policy

DESKTOP = {"width": 1280, "height": 900}

QUEUE_ALL_POLICY = enqueue_all_policy("test-moderate-page")
# enqueued in this order: the search is priority 1 (first row); then Hindi, then English, both priority 3
ITEMS = [
    ("search", "en", "train timetable for sunday morning"),
    ("post", "hi", "आज बाज़ार में ताज़ी सब्ज़ियाँ आई हैं"),
    ("comment", "en", "the museum has a new dinosaur exhibit"),
]


# A tiny model that explains the search item. The shared tiny artifact (tests/neutral_texts.py) is calibrated on its
# own training sentences, so its signals are exactly 0 or 1 and its balanced thresholds 1.0: removing a word never
# moves a score, and no text gets explanation spans. Here (labels are arbitrary, texts neutral) the sentences with
# one of these words are `promotion` (the violating signal) and temperature and operating points are chosen on
# held-out texts too, two of them against the pattern, so scores stay graded.
CUES = ("train", "bus", "traffic")
HELD_OUT = [
    ("the bus to the station", "promotion"),
    ("a train at noon", "promotion"),
    ("traffic near the bridge", "promotion"),
    ("our garden has roses", "none"),
    ("the cat likes fish", "none"),
    ("a quiet morning", "promotion"),
    ("the late train home", "none"),
]


@pytest.fixture(scope="module")
def explaining_model(tmp_path_factory) -> SimpleNamespace:
    """The artifact's path, and the spans it gives the search item's text (ITEMS[0]) with explain="flagged", as
    /v1/classify does: at least two, so their order is tested too."""
    from data.taxonomy import LABELS
    from model.classifier import RiskClassifier
    from tests.neutral_texts import SENTENCES

    labels = [
        "promotion" if set(CUES) & set(s.split()) else LABELS[i % len(LABELS)].replace("promotion", "none")
        for i, s in enumerate(SENTENCES)
    ]
    held = (list(SENTENCES) + [t for t, _ in HELD_OUT], labels + [label for _, label in HELD_OUT])
    clf = RiskClassifier.baseline(min_df=1, max_iter=50).fit(SENTENCES, labels, eval_set=held)
    path = clf.save(tmp_path_factory.mktemp("moderate-artifact"))
    (prediction,) = RiskClassifier.load(path).predict([ITEMS[0][2]], explain="flagged")
    spans = [s.to_dict() for s in prediction.spans]
    assert len(spans) >= 2, ("the test model no longer explains the search item", prediction.top_signal, spans)
    return SimpleNamespace(path=path, spans=spans)


@pytest.fixture(scope="module")
def mserver(explaining_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("moderate-server")
    policy = write_enqueue_all_policy(directory, QUEUE_ALL_POLICY)
    srv = start_server(explaining_model.path, directory, SAHAY_POLICY_PATH=str(policy))
    try:
        yield srv
    finally:
        stop_server(srv)


def _get(srv, path: str, role: str, **params) -> httpx.Response:
    return httpx.get(f"{srv.base_url}{path}", params=params, headers=srv.auth_headers(role), timeout=30)


def enqueue_items(srv) -> list[int]:
    items = [{"id": f"mod-{uuid.uuid4().hex[:10]}", "text": t, "surface": s} for s, _, t in ITEMS]
    ids = []
    for item in items:  # one request each, so the created times (and SLA deadlines) follow ITEMS' order
        r = httpx.post(
            f"{srv.base_url}/v1/classify", json={"items": [item]}, headers=srv.auth_headers("service"), timeout=30
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["results"][0]["queue_item_id"])
    assert all(isinstance(i, int) for i in ids)
    return ids


# -- the response ------------------------------------------------------------------------------------------------


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def test_page_headers_and_csp(mserver):
    r = httpx.get(f"{mserver.base_url}/moderate", timeout=30)  # public: no key
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in r.headers
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp and "http" not in csp
    (style,) = re.findall(r"<style>(.*?)</style>", r.text, re.DOTALL)
    (script,) = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert f"style-src {_hash(style)}" in csp and f"script-src {_hash(script)}" in csp
    assert len(r.content) < 30_000
    # nothing loads from anywhere, and the page never touches storage or puts data in HTML
    assert not re.search(r"(src|href)=", r.text)
    assert "localStorage" not in r.text and "sessionStorage" not in r.text and "innerHTML" not in r.text
    assert "/moderate" in httpx.get(f"{mserver.base_url}/openapi.json", timeout=30).json()["paths"]


# -- the browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shots(request, tmp_path_factory) -> Path:
    yield from screenshot_folder(request, tmp_path_factory, "moderate")


class Visit(BrowserVisit):
    """The page in a fresh desktop-sized browser context, with every request it made and every console or page
    error."""

    viewport = DESKTOP

    def sign_in(self, key: str) -> None:
        self.page.fill("#key", key)
        self.page.keyboard.press("Enter")


def _filter(page) -> str:
    return page.eval_on_selector("#text", "e => getComputedStyle(e).filter")


def test_claim_reveal_decide_in_the_browser(mserver, explaining_model, browser, shots):
    queue_ids = enqueue_items(mserver)
    api_order = [i["id"] for i in _get(mserver, "/v1/queue", "moderator", limit=100).json()["items"]]
    assert api_order[0] == queue_ids[0] and api_order.index(queue_ids[1]) < api_order.index(queue_ids[2])
    hindi_id = queue_ids[1]
    moderator_key = mserver.key("moderator")
    moderator_id = moderator_key.split("_")[1]

    with Visit(browser, f"{mserver.base_url}/moderate") as v:
        page = v.page
        assert v.response.status == 200
        assert page.evaluate("document.activeElement.id") == "key"
        v.sign_in(moderator_key)
        page.wait_for_selector("#queue:not([hidden]) #rows tr")
        assert page.input_value("#key") == ""  # the field is emptied; the key lives in a JS variable only

        # the list: the API's order, no text, an SLA countdown that ticks
        rows = page.eval_on_selector_all("#rows tr", "rs => rs.map(r => +r.id.slice(4))")
        assert rows == api_order
        first = page.locator("#rows tr").first
        cells = first.locator("td").all_inner_texts()
        assert cells[0] == "P1" and cells[2] == "search" and cells[6] == "search_first"
        assert re.fullmatch(r"(at_risk|urgent|violating) \d\.\d\d", cells[5])
        sla = first.locator(".sla")
        assert re.fullmatch(r"in 1[45]:\d\d", sla.inner_text())
        before = sla.inner_text()
        page.wait_for_function(f"() => document.querySelector('#rows .sla').textContent !== {before!r}", timeout=3000)
        hindi_row = page.locator(f"#row-{hindi_id}")
        assert hindi_row.locator("td").nth(3).inner_text() == "hi"
        assert re.fullmatch(r"in 23h 5\dm", hindi_row.locator(".sla").inner_text())
        listed = page.inner_text("#queue")
        assert not any(t in listed for _, _, t in ITEMS)
        assert page.get_attribute("#rows tr:first-child", "aria-selected") == "true"
        page.screenshot(path=str(shots / "moderate-1-queue.png"), full_page=True)

        # select the Hindi row with j, claim with c
        page.keyboard.press("j")
        assert hindi_row.get_attribute("aria-selected") == "true"
        with page.expect_response(lambda r: r.url.endswith(f"/v1/queue/{hindi_id}/claim")) as claimed:
            page.keyboard.press("c")
        claim = claimed.value.json()
        assert claimed.value.status == 200 and claim["claimed_by"] == moderator_id
        page.wait_for_selector("#detail:not([hidden])")
        text = page.locator("#text")
        assert "blur" in _filter(page) and text.get_attribute("aria-hidden") == "true"
        assert text.get_attribute("lang") == "hi"
        assert text.inner_text() == ITEMS[1][2]
        assert re.fullmatch(r"in [45]:\d\d", page.inner_text("#lease"))
        spans = claim["content"]["spans"]
        marks = page.eval_on_selector_all("#text mark", "ms => ms.map(m => m.textContent)")
        assert marks == [s["text"] for s in sorted(spans, key=lambda s: s["start"])], (len(marks), len(spans))
        # preselected with the model's label; no action yet
        assert page.is_checked(f"#label-{claim['label']}")
        assert page.eval_on_selector_all("input[name=action]:checked", "x => x.length") == 0
        page.screenshot(path=str(shots / "moderate-2-claimed-blurred.png"), full_page=True)

        page.keyboard.press("r")
        page.wait_for_function(
            "() => getComputedStyle(document.getElementById('text')).filter === 'none'", timeout=3000
        )
        assert text.get_attribute("aria-hidden") == "false"
        assert page.get_attribute("#reveal", "aria-pressed") == "true"
        box = text.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 20
        inner = page.eval_on_selector(
            "#text",
            "e => { const r = document.createRange(); r.selectNodeContents(e); "
            "const b = r.getBoundingClientRect(); return [b.width, b.height]; }",
        )
        assert inner[0] > 50 and inner[1] > 10
        page.screenshot(path=str(shots / "moderate-3-revealed-hindi.png"), full_page=True)

        # label 4 (informational), action g (no_action), a note, Ctrl+Enter
        page.keyboard.press("4")
        page.keyboard.press("g")
        assert page.is_checked("#label-informational") and page.is_checked("#action-no_action")
        page.fill("#note", "checked in the browser test")
        with page.expect_response(lambda r: r.url.endswith(f"/v1/queue/{hindi_id}/decision")) as decided:
            page.keyboard.press("Control+Enter")
        assert decided.value.status == 200
        page.wait_for_selector("#queue:not([hidden])")
        page.wait_for_function("() => document.getElementById('msg').textContent.startsWith('Decided')")
        assert page.locator(f"#row-{hindi_id}").count() == 0
        assert page.inner_text("#text") == ""
        assert page.locator("#rows tr").count() == len(api_order) - 1
        page.screenshot(path=str(shots / "moderate-4-decided.png"), full_page=True)

        # the search item (the model's explanation has spans for it): its spans are <mark>ed, by character offsets
        page.keyboard.press("Home")
        for _ in range(3):
            page.keyboard.press("k")
        with page.expect_response(lambda r: r.url.endswith(f"/v1/queue/{queue_ids[0]}/claim")) as claimed:
            page.keyboard.press("Enter")
        assert claimed.value.status == 200
        content = claimed.value.json()["content"]
        search_text, spans = content["text"], content["spans"]
        assert search_text == ITEMS[0][2]
        expected = [(s["start"], s["end"], s["text"]) for s in explaining_model.spans]
        assert [(s["start"], s["end"], s["text"]) for s in spans] == expected  # the model's spans, through the API
        assert len(spans) >= 2 and all(search_text[s["start"] : s["end"]] == s["text"] for s in spans), spans
        page.wait_for_selector("#detail:not([hidden])")
        assert text.get_attribute("lang") == "en" and "blur" in _filter(page)
        # each <mark> where its span is: offsets counted in code points over #text's children, in document order
        marks = page.eval_on_selector(
            "#text",
            "e => { const out = []; let pos = 0; for (const n of e.childNodes) { "
            "const len = Array.from(n.textContent).length; "
            "if (n.nodeName === 'MARK') out.push([pos, pos + len, n.textContent]); pos += len; } return out; }",
        )
        assert len(marks) >= 1 and page.locator("#text mark").count() == len(spans)
        assert [tuple(m) for m in marks] == sorted(expected), (marks, spans)
        assert all(search_text[start:end] == mark for start, end, mark in marks)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(marks)), marks  # in order, none overlapping
        assert page.eval_on_selector("#text", "e => e.textContent") == search_text  # the text itself is unchanged
        page.keyboard.press("r")
        page.wait_for_function("() => getComputedStyle(document.getElementById('text')).filter === 'none'")
        assert page.locator("#text mark").first.is_visible()
        page.screenshot(path=str(shots / "moderate-5-spans.png"), full_page=True)
        page.keyboard.press("Escape")
        page.wait_for_selector("#queue:not([hidden])")
        # back in the list, now claimed by this key (the list re-renders after Escape: wait for it)
        expect(page.locator(f"#row-{queue_ids[0]}")).to_contain_text(f"claimed by {moderator_id}", timeout=10_000)

        # the key was never written anywhere the browser keeps
        kept = page.evaluate("JSON.stringify([localStorage, sessionStorage, document.cookie, location.href])")
        assert moderator_key not in kept

    assert v.requests and all(u.startswith(f"{mserver.base_url}/") for u in v.requests), v.requests
    assert v.problems == []

    # through the API: decided, not queued, and audited under the moderator's key id
    queued = [i["id"] for i in _get(mserver, "/v1/queue", "moderator", limit=100).json()["items"]]
    assert hindi_id not in queued
    (done,) = [
        i for i in _get(mserver, "/v1/queue", "moderator", state="decided").json()["items"] if i["id"] == hindi_id
    ]
    assert done["decision"]["label"] == "informational" and done["decision"]["action"] == "no_action"
    assert done["decision"]["decided_by"] == moderator_id and done["decision"]["note"] == "checked in the browser test"
    events = _get(mserver, "/v1/audit", "admin", queue_item_id=hindi_id).json()["events"]
    assert [(e["event"], e["key_id"]) for e in events if e["event"] in ("claim", "decision")] == [
        ("decision", moderator_id),
        ("claim", moderator_id),
    ]


@pytest.mark.parametrize("role", ["service", None])
def test_a_key_that_is_not_a_moderator_key_is_refused(mserver, browser, shots, role):
    key = mserver.key(role) if role else "sahay_000000000000_" + "x" * 43
    with Visit(browser, f"{mserver.base_url}/moderate") as v:
        v.sign_in(key)
        v.page.wait_for_function("() => document.getElementById('msg').textContent.includes('not a moderator key')")
        assert v.page.get_attribute("#msg", "class") == "error"
        assert v.page.is_visible("#login") and not v.page.is_visible("#queue")
        v.page.screenshot(path=str(shots / f"moderate-refused-{role or 'unknown'}.png"), full_page=True)
    assert all(u.startswith(f"{mserver.base_url}/") for u in v.requests), v.requests
    # the only console noise allowed is Chromium's own line about the refused request
    assert all(re.search(r"status of 40[13]", p) for p in v.problems), v.problems
