"""The moderator page, GET /moderate: one self-contained HTML page (serve/templates/moderate.html.j2) for the
moderation queue API.

The page holds no data: it is public, and everything it shows comes from `/v1/queue` and friends with the key the
moderator types in, kept in a JavaScript variable only (never in storage, a cookie or a URL; reloading signs out).
Its CSS and JS are inline and allowed by hash in a Content-Security-Policy that allows nothing else: no fonts,
images or scripts from anywhere, connections only to this origin, no framing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

router = APIRouter()

TEMPLATES = Path(__file__).resolve().parent / "templates"
_INLINE = re.compile(r"<(style|script)>(.*?)</\1>", re.DOTALL)


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


@lru_cache(maxsize=1)
def render_moderate() -> tuple[str, dict[str, str]]:
    """The page and its response headers; the CSP names the hash of each inline <style> and <script> as rendered."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("moderate.html.j2").render()
    hashes: dict[str, list[str]] = {"style": [], "script": []}
    for tag, body in _INLINE.findall(html):
        hashes[tag].append(_sha256(body))
    csp = (
        f"default-src 'none'; connect-src 'self'; script-src {' '.join(hashes['script'])}; "
        f"style-src {' '.join(hashes['style'])}; img-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    return html, headers


@router.get("/moderate", response_class=HTMLResponse, tags=["queue"])
async def moderate_page() -> HTMLResponse:
    """The moderator page (role moderator, checked by the API calls it makes): the queue most urgent first with SLA
    countdowns, claim, the text blurred until revealed with its explanation spans marked, label and action by
    keyboard, decision. The page itself is public and holds no data."""
    html, headers = render_moderate()
    return HTMLResponse(html, headers=headers)
