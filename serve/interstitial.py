"""The support page an app embeds in a WebView (GET /interstitial): localised (en, hi), accessible, self-contained.

One HTML response with its CSS and a few lines of JS inline, allowed by hash in a Content-Security-Policy that
allows nothing else: no fonts, images, scripts or connections from anywhere, so the page works offline and cannot
track. Links (tel:, sms:, https:) work with JavaScript off; the script only tells the host app about "continue".
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, get_args

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from serve.helplines import Helpline, Lookup
from serve.schemas import Lang

KINDS: tuple[str, ...] = ("author_support", "search_support", "viewer_warning")
"""author_support: to someone whose own text suggests risk; search_support: after a search; viewer_warning: to
other viewers before content that may be upsetting."""
LANGS: tuple[str, ...] = get_args(Lang)
PAGE_LANG = {"en": "en", "hi": "hi", "hi-Latn": "en"}
"""The page's wording by requested language. Hinglish (hi-Latn) readers get the English page: they read Latin
script, and many cannot read Devanagari; their helplines are still ranked as for Hindi speakers."""

SERVE_DIR = Path(__file__).resolve().parent
LOCALES_DIR = SERVE_DIR / "locales"

STYLE = """
:root{color-scheme:light dark;--fg:#1b1b1f;--bg:#fff;--muted:#474751;--accent:#0b57d0;--card:#f2f4f8;--line:#c9ceda}
@media (prefers-color-scheme:dark){:root{--fg:#f1f1f4;--bg:#121317;--muted:#c4c6d0;--accent:#a8c7fa;--card:#1e2026;
--line:#4a4d57}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font-size:1.0625rem;line-height:1.6;
font-family:system-ui,"Noto Sans Devanagari","Mangal",sans-serif}
main{max-width:40rem;margin:0 auto;padding:1.25rem 1rem 2.5rem}
h1{font-size:1.6rem;line-height:1.3;margin:.25rem 0 .75rem}
h2{font-size:1.2rem;line-height:1.35;margin:1.75rem 0 .5rem}
h3{font-size:1.05rem;margin:0 0 .2rem}
p{margin:.5rem 0}
ul.plain{list-style:none;margin:0;padding:0}
.helpline{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:.9rem 1rem;margin:.75rem 0}
.meta{color:var(--muted);font-size:.95rem;margin:0 0 .6rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem}
a{color:var(--accent)}
.action,.continue{display:inline-flex;align-items:center;justify-content:center;min-height:48px;min-width:48px;
padding:.55rem 1.15rem;border-radius:24px;font-weight:600;text-decoration:none}
.action{background:var(--accent);color:var(--bg)}
.continue{border:2px solid var(--line);color:var(--fg)}
a:focus{outline:3px solid var(--fg);outline-offset:3px}
a:focus:not(:focus-visible){outline:none}
a:focus-visible{outline:3px solid var(--fg);outline-offset:3px}
.coping{padding-left:1.3rem;margin:.25rem 0}
.coping li{margin:.35rem 0}
.hope{font-weight:600;margin-top:1.5rem}
.continue-row{margin-top:2rem;text-align:center}
"""

SCRIPT = """
(function(){var c=document.getElementById("continue");if(!c||c.getAttribute("href")!=="#continue")return;
c.addEventListener("click",function(){var m={type:"sahay:continue",kind:c.getAttribute("data-kind")};
if(window.parent!==window)window.parent.postMessage(m,"*");
if(window.ReactNativeWebView)window.ReactNativeWebView.postMessage(JSON.stringify(m));});})();
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (
    f"default-src 'none'; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; "
    "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
)
"""Nothing loads from anywhere; only the page's own inline style and script run."""

HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "private, max-age=3600",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
"""Response headers of the page: `private` lets the app's WebView keep it for offline use, no shared cache may."""

_APP_LINK = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://[!#-&(-;=?-\[\]-~]+$")
"""scheme://rest, with no whitespace, quotes, angle brackets or backslashes in the rest."""
_REFUSED_SCHEMES = frozenset(
    {"javascript", "vbscript", "data", "file", "blob", "filesystem", "about", "http", "ftp", "ws", "wss", "intent"}
)
CONTINUE_URL_RULE = (
    "continue_url must be an https:// URL or an app link such as myapp://feed, at most 2048 characters "
    "(javascript:, data:, http: and similar schemes are refused)"
)


def check_continue_url(url: str) -> str:
    """`url` if it may be the continue link's href, else ValueError with CONTINUE_URL_RULE."""
    match = _APP_LINK.match(url) if len(url) <= 2048 else None
    if match is None or match.group(1).lower() in _REFUSED_SCHEMES:
        raise ValueError(CONTINUE_URL_RULE)
    if match.group(1).lower() == "https" and not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?([/?#]|$)", url):
        raise ValueError(CONTINUE_URL_RULE)
    return url


def continue_allowed(policy: Any, kind: str) -> bool:
    """Whether the page offers continue / "see results anyway" for `kind`.

    The policy in force decides (`policy.allows_continue(kind)`); a kind the policy does not name gets none. With
    no policy loaded every kind allows it: a support page must not trap a person who did not ask for it.
    """
    if policy is None:
        return True
    kinds = getattr(policy, "kinds", None)
    if kinds is not None and kind not in kinds:
        return False
    return bool(policy.allows_continue(kind))


@cache
def load_locale(page_lang: str) -> dict[str, Any]:
    """The strings of serve/locales/{page_lang}.yaml."""
    with open(LOCALES_DIR / f"{page_lang}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(SERVE_DIR / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _helpline_view(h: Helpline, t: dict[str, Any]) -> dict[str, Any]:
    """What the template shows of one entry: a line of facts and its links, each with an accessible name."""
    actions: list[dict[str, str]] = []

    def add(kind: str, href: str, text: str) -> None:
        actions.append({"kind": kind, "href": href, "text": text, "aria": f"{text}, {h.name}"})

    for n in h.phones:
        add("call", f"tel:{n.dial}", t["call"].replace("{number}", n.display))
    for n in h.sms:
        add("sms", f"sms:{n.dial}", t["text"].replace("{number}", n.display))
    if h.chat:
        add("chat", h.chat, t["chat"])
    if h.email:
        add("email", f"mailto:{h.email}", t["email"])
    if h.url:
        add("web", h.url, t["fallback_link"] if h.fallback else t["website"])
    facts = []
    if h.hours:
        facts.append(t["hours"].get(h.hours, h.hours))
    if h.free:
        facts.append(t["free"])
    if not h.fallback:
        names = [t["language_names"].get(code, code) for code in h.languages]
        facts.append(f"{t['languages_label']} {', '.join(names)}")
    return {"name": h.name, "meta": " · ".join(facts), "actions": actions}


def render_interstitial(
    *, kind: str, lang: str, lookup: Lookup, allow_continue: bool, continue_url: str | None = None
) -> str:
    """The page for `kind` in `lang`'s page language, listing `lookup`'s entries.

    With `allow_continue`, a continue link: to `continue_url` (already checked) when given, else to `#continue`,
    which also posts {type: "sahay:continue", kind} to a parent frame or a React Native WebView.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    page_lang = PAGE_LANG[lang]
    t = load_locale(page_lang)
    return (
        _environment()
        .get_template("interstitial.html.j2")
        .render(
            t=t,
            k=t["kinds"][kind],
            kind=kind,
            page_lang=page_lang,
            csp=CSP,
            style=Markup(STYLE),
            script=Markup(SCRIPT),
            fallback=lookup.fallback,
            helplines=[_helpline_view(h, t) for h in lookup.entries],
            continue_href=(continue_url or "#continue") if allow_continue else None,
        )
    )
