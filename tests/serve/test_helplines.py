"""The helpline directory and the page's building blocks, in process: loading and validation (a broken file gives a
clear error), lookup by country and language, unverified entries hidden unless asked for, the fallback, the
locales, the continue link's rules and the rendered page's size and CSP.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

from serve.helplines import Directory, HelplineDirectoryError, cached_directory, load_directory
from serve.interstitial import (
    CSP,
    KINDS,
    LANGS,
    PAGE_LANG,
    check_continue_url,
    continue_allowed,
    load_locale,
    render_interstitial,
)
from serve.settings import SERVE_DIR

SHIPPED = SERVE_DIR / "helplines.yaml"
TODAY = dt.date.today()


def entry(id: str, countries: list[str], **fields) -> dict:
    base = {
        "id": id,
        "countries": countries,
        "name": id.title(),
        "phones": [{"dial": "1234", "display": "12 34"}],
        "languages": ["en"],
        "source": "https://example.org/",
        "last_verified": TODAY,
    }
    return {**base, **fields}


FALLBACK = entry("intl", ["*"], phones=[], url="https://findahelpline.com/", fallback=True)


def write(tmp_path: Path, *entries: dict, version: int = 1, name: str = "helplines.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"version": version, "helplines": list(entries)}, allow_unicode=True), "utf-8")
    return path


def directory(tmp_path: Path, *entries: dict) -> Directory:
    return load_directory(write(tmp_path, *entries, FALLBACK))


# -- the shipped file ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Directory:
    return load_directory(SHIPPED)


def test_shipped_directory_has_the_national_lines(shipped):
    by_id = {h.id: h for h in shipped.helplines}
    tele = by_id["in-tele-manas"]
    assert tele.countries == ["IN"] and [p.dial for p in tele.phones] == ["14416", "18008914416"]
    assert tele.phones[1].display == "1-800-891-4416" and tele.hours == "24x7" and tele.free
    assert {"hi", "en"} <= set(tele.languages)
    us = by_id["us-988-lifeline"]
    assert [p.dial for p in us.phones] == ["988"] and [s.dial for s in us.sms] == ["988"]
    assert us.chat.startswith("https://988lifeline.org/")
    sam = by_id["gb-ie-samaritans"]
    assert sam.countries == ["GB", "IE"] and [p.dial for p in sam.phones] == ["116123"]
    assert sam.email == "jo@samaritans.org"


def test_shipped_directory_marks_what_is_verified(shipped):
    status = {h.id: h.verified for h in shipped.helplines}
    assert status == {
        "in-tele-manas": True,
        "us-988-lifeline": True,
        "gb-ie-samaritans": True,
        "in-aasra": False,
        "intl-find-a-helpline": True,
    }
    for h in shipped.helplines:
        assert h.source.startswith("https://")
        assert h.model_dump(mode="json")["verified"] is (h.last_verified is not None)


@pytest.mark.parametrize(
    ("country", "lang", "ids"),
    [
        ("IN", "hi", ["in-tele-manas"]),
        ("in", "en", ["in-tele-manas"]),
        ("US", "en", ["us-988-lifeline"]),
        ("GB", None, ["gb-ie-samaritans"]),
        ("IE", "hi-Latn", ["gb-ie-samaritans"]),
    ],
)
def test_lookup_by_country(shipped, country, lang, ids):
    found = shipped.lookup(country, lang)
    assert [h.id for h in found.entries] == ids
    assert found.country == country.upper() and not found.fallback and found.message is None


def test_unverified_entries_are_hidden_unless_asked_for(shipped):
    assert "in-aasra" not in [h.id for h in shipped.lookup("IN", "hi").entries]
    shown = shipped.lookup("IN", "hi", show_unverified=True).entries
    assert [h.id for h in shown] == ["in-tele-manas", "in-aasra"]
    assert [h.verified for h in shown] == [True, False]


@pytest.mark.parametrize("country", ["ZZ", "FR", "jp"])
def test_a_country_without_an_entry_gets_the_international_fallback(shipped, country):
    found = shipped.lookup(country, "en")
    assert found.fallback
    assert [h.id for h in found.entries] == ["intl-find-a-helpline"]
    assert found.entries[0].url == "https://findahelpline.com/"
    assert country.upper() in found.message and "international" in found.message


# -- lookup rules on small files ---------------------------------------------------------------------------------


def test_entries_answering_in_the_language_come_first(tmp_path):
    d = directory(
        tmp_path,
        entry("in-english", ["IN"], languages=["en"]),
        entry("in-hindi", ["IN"], languages=["hi", "en"]),
        entry("in-tamil", ["IN"], languages=["ta"]),
    )
    assert [h.id for h in d.lookup("IN", "hi").entries] == ["in-hindi", "in-english", "in-tamil"]
    assert [h.id for h in d.lookup("IN", "hi-Latn").entries] == ["in-hindi", "in-english", "in-tamil"]
    assert [h.id for h in d.lookup("IN", "en").entries] == ["in-english", "in-hindi", "in-tamil"]
    assert [h.id for h in d.lookup("IN").entries] == ["in-english", "in-hindi", "in-tamil"]


def test_a_country_whose_only_entry_is_unverified_falls_back_unless_shown(tmp_path):
    d = directory(tmp_path, entry("np-line", ["NP"], last_verified=None))
    hidden = d.lookup("NP", "en")
    assert hidden.fallback and [h.id for h in hidden.entries] == ["intl"]
    shown = d.lookup("NP", "en", show_unverified=True)
    assert not shown.fallback and [h.id for h in shown.entries] == ["np-line"]


def test_cached_directory_rereads_an_edited_file(tmp_path):
    path = write(tmp_path, entry("a-line", ["NP"]), FALLBACK)
    assert [h.id for h in cached_directory(path).lookup("NP").entries] == ["a-line"]
    assert cached_directory(path) is cached_directory(path)
    write(tmp_path, entry("b-line", ["NP"]), FALLBACK)
    later = os.stat(path).st_mtime_ns + 10_000_000
    os.utime(path, ns=(later, later))
    assert [h.id for h in cached_directory(path).lookup("NP").entries] == ["b-line"]


# -- broken files ------------------------------------------------------------------------------------------------

BROKEN = {
    "unknown field": ([entry("x-line", ["IN"], fax="123")], "helplines[0].fax: Extra inputs are not permitted"),
    "letters in a number": (
        [entry("x-line", ["IN"], phones=[{"dial": "14416x", "display": "x"}])],
        "helplines[0].phones[0].dial",
    ),
    "number as an integer": (
        [entry("x-line", ["IN"], phones=[{"dial": 988, "display": "988"}])],
        "helplines[0].phones[0].dial: Input should be a valid string",
    ),
    "http url": ([entry("x-line", ["IN"], url="http://example.org/")], "helplines[0].url"),
    "javascript chat": ([entry("x-line", ["IN"], chat="javascript:alert(1)")], "helplines[0].chat"),
    "country name": ([entry("x-line", ["India"])], "'India' is not an upper-case ISO 3166-1 alpha-2 code"),
    "unquoted NO": ([entry("x-line", [False])], "helplines[0].countries[0]: Input should be a valid string"),
    "bad language": ([entry("x-line", ["IN"], languages=["Hindi"])], "'Hindi' is not a language code"),
    "no contact": ([entry("x-line", ["IN"], phones=[])], "needs at least one of phones, sms, chat or url"),
    "future date": (
        [entry("x-line", ["IN"], last_verified=TODAY + dt.timedelta(days=30))],
        "helplines[0].last_verified",
    ),
    "missing source": (
        [{k: v for k, v in entry("x-line", ["IN"]).items() if k != "source"}],
        "helplines[0].source: Field required",
    ),
    "duplicate ids": ([entry("x-line", ["IN"]), entry("x-line", ["US"])], "duplicate ids: x-line"),
    "fallback with a country": ([entry("x-line", ["IN"], fallback=True)], "fallback: true goes with countries"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_entry_gives_a_clear_error(tmp_path, case):
    entries, expected = BROKEN[case]
    path = write(tmp_path, *entries, FALLBACK)
    with pytest.raises(HelplineDirectoryError) as err:
        load_directory(path)
    assert str(path) in str(err.value) and expected in str(err.value), str(err.value)


def test_a_directory_without_a_verified_fallback_is_refused(tmp_path):
    for fallbacks in ([], [{**FALLBACK, "last_verified": None}]):
        path = write(tmp_path, entry("x-line", ["IN"]), *fallbacks)
        with pytest.raises(HelplineDirectoryError, match="needs a verified fallback entry"):
            load_directory(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nhelplines: [\n", "not valid YAML"),
        ("- just\n- a list\n", "Input should be a valid dictionary"),
        ("", "Input should be a valid dictionary"),
        ("version: 1\nhelplines: []\n", "helplines: List should have at least 1 item"),
    ],
)
def test_a_file_that_is_not_a_directory_gives_a_clear_error(tmp_path, text, expected):
    path = tmp_path / "helplines.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(HelplineDirectoryError, match=re.escape(expected)):
        load_directory(path)


def test_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(HelplineDirectoryError, match="cannot read the helpline directory") as err:
        load_directory(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(err.value)


# -- locales and the page ----------------------------------------------------------------------------------------


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [None] * len(value)
    return None


def test_locales_have_the_same_keys_and_every_kind():
    en, hi = load_locale("en"), load_locale("hi")
    assert _shape(en) == _shape(hi)
    assert set(en["kinds"]) == set(KINDS)
    assert en["page_lang"] == "en" and hi["page_lang"] == "hi"
    assert set(PAGE_LANG) == set(LANGS)


def test_wording_follows_safe_messaging():
    for lang in ("en", "hi"):
        text = yaml.safe_dump(load_locale(lang), allow_unicode=True).lower()
        for phrase in ("commit suicide", "committed suicide", "successful", "failed attempt", "%"):
            assert phrase not in text, (lang, phrase)
        assert not re.search(r"\d{2,}", text.replace("24x7", "").replace("24 ", "")), f"{lang}: a number in the text"
    assert load_locale("hi")["kinds"]["author_support"]["title"] == "आप अकेले नहीं हैं"
    hindi = yaml.safe_dump(load_locale("hi"), allow_unicode=True)
    assert len(re.findall(r"[\u0900-\u097F]", hindi)) > 500


@pytest.mark.parametrize("url", ["https://example.com/feed?x=1#y", "myapp://feed", "com.example.app://open/42"])
def test_continue_url_accepts_https_and_app_links(url):
    assert check_continue_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "javascript://%0aalert(1)",
        "JavaScript://x",
        "data:text/html,hi",
        "data://text/html,hi",
        "http://example.com/",
        "file:///etc/passwd",
        "intent://scan/#Intent;end",
        "https://",
        "https:///path",
        "//example.com/",
        "feed",
        'myapp://x"onmouseover="y',
        "myapp://a b",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_continue_url_refuses_anything_else(url):
    with pytest.raises(ValueError, match="continue_url must be"):
        check_continue_url(url)


class FakePolicy:
    kinds = ("author_support", "viewer_warning")

    def allows_continue(self, kind: str) -> bool:
        return {"author_support": True, "viewer_warning": False}[kind]


def test_continue_follows_the_policy():
    assert all(continue_allowed(None, kind) for kind in KINDS)
    assert continue_allowed(FakePolicy(), "author_support")
    assert not continue_allowed(FakePolicy(), "viewer_warning")
    assert not continue_allowed(FakePolicy(), "search_support")  # a kind the policy does not name


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", KINDS)
def test_page_is_small_self_contained_and_matches_its_csp(shipped, kind, lang):
    html = render_interstitial(kind=kind, lang=lang, lookup=shipped.lookup("IN", lang), allow_continue=True)
    assert len(html.encode("utf-8")) < 20_000
    assert f'<html lang="{PAGE_LANG[lang]}"' in html
    assert '<meta charset="utf-8">' in html and 'name="viewport"' in html
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    assert f"style-src {_csp_hash(style)};" in CSP and f"script-src {_csp_hash(script)};" in CSP
    assert "default-src 'none'" in CSP
    assert html.count("<script") == 1 and html.count("<style") == 1
    assert not re.search(r"\b(src|srcset)=|<link\b|@import|url\(|@font-face", html)
    assert 'href="tel:14416"' in html and 'href="tel:18008914416"' in html
    assert 'href="#continue"' in html


def test_page_without_continue_has_no_continue_link(shipped):
    html = render_interstitial(kind="search_support", lang="en", lookup=shipped.lookup("US"), allow_continue=False)
    assert 'id="continue"' not in html and "See results anyway" not in html


def test_page_escapes_directory_text(tmp_path):
    d = directory(tmp_path, entry("x-line", ["IN"], name='<img src=x onerror="alert(1)">'))
    html = render_interstitial(kind="author_support", lang="en", lookup=d.lookup("IN"), allow_continue=True)
    assert "<img" not in html and "&lt;img src=x" in html
