"""Public routes: GET /v1/resources (helplines as JSON) and GET /interstitial (the embeddable support page).

No API key: apps show these to end users. Nothing here reads or logs anything about the person: the query names
only a country, a language and a page kind.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from serve import logging as slog
from serve.helplines import Directory, Helpline, HelplineDirectoryError, Lookup, cached_directory
from serve.interstitial import (
    CONTINUE_URL_RULE,
    HEADERS,
    KINDS,
    LANGS,
    check_continue_url,
    continue_allowed,
    render_interstitial,
)
from serve.schemas import ErrorResponse

router = APIRouter()

COUNTRY_RULE = "country must be a two-letter ISO 3166-1 alpha-2 code, e.g. IN"
LANG_RULE = f"lang must be one of: {', '.join(LANGS)}"
KIND_RULE = f"kind must be one of: {', '.join(KINDS)}"

LANG_HELP = (
    "Language of the reader: entries answering in it come first. On the page, hi gets Hindi (Devanagari); en and "
    "hi-Latn (Hinglish readers, who read Latin script) get English."
)


def _country_query() -> Any:
    return Query(
        description="ISO 3166-1 alpha-2 country code (either case). A country with no entry gets the international "
        "fallback.",
        json_schema_extra={"pattern": "^[A-Za-z]{2}$"},
        examples=["IN"],
    )


def _lang_query() -> Any:
    return Query("en", description=LANG_HELP, json_schema_extra={"enum": list(LANGS)})


class ResourcesResponse(BaseModel):
    country: str = Field(description="The country asked for, upper case.")
    lang: str
    fallback: bool = Field(description="True when the country has no entry and `helplines` is the international one.")
    message: str | None = Field(description="Why a fallback was given; null otherwise.")
    helplines: list[Helpline]


class Refused(Exception):
    def __init__(self, detail: str, status: int = 422):
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _refused(exc: Refused) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def _check(country: str, lang: str) -> tuple[str, str]:
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise Refused(COUNTRY_RULE)
    if lang not in LANGS:
        raise Refused(LANG_RULE)
    return country.upper(), lang


def _directory(request: Request) -> Directory:
    """The directory the app loaded at startup, if it did; else the settings' file (re-read when it changes)."""
    loaded = getattr(request.app.state, "helplines", None)
    if isinstance(loaded, Directory):
        return loaded
    return cached_directory(request.app.state.settings.helplines_path)


def _lookup(request: Request, country: str, lang: str) -> Lookup:
    """Raises Refused(500) when the directory file is broken, after logging why (the operator's error)."""
    try:
        directory = _directory(request)
    except HelplineDirectoryError as exc:
        slog.log_event(logging.getLogger(slog.LOGGER_NAME), "helplines_invalid", logging.ERROR, error=str(exc))
        raise Refused("the helpline directory is invalid; see the server log", status=500) from None
    show = bool(getattr(request.app.state.settings, "show_unverified_helplines", False))
    return directory.lookup(country, lang, show_unverified=show)


_PUBLIC_CACHE = {"Cache-Control": "public, max-age=3600"}


@router.get(
    "/v1/resources",
    response_model=ResourcesResponse,
    responses={
        422: {"model": ErrorResponse, "description": "A bad country or lang"},
        500: {"model": ErrorResponse, "description": "The helpline directory file is invalid"},
    },
    tags=["resources"],
)
async def resources(request: Request, country: str = _country_query(), lang: str = _lang_query()) -> Any:
    """Helplines for a country, those answering in `lang` first. Unverified entries are left out unless the
    service runs with SAHAY_SHOW_UNVERIFIED_HELPLINES=true. A country with no entry gets the international
    directory with `fallback: true` and a `message` (still 200)."""
    try:
        country, lang = _check(country, lang)
        found = _lookup(request, country, lang)
    except Refused as exc:
        return _refused(exc)
    body = ResourcesResponse(
        country=country, lang=lang, fallback=found.fallback, message=found.message, helplines=found.entries
    )
    return JSONResponse(body.model_dump(mode="json"), headers=_PUBLIC_CACHE)


@router.get(
    "/interstitial",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The support page"},
        422: {"model": ErrorResponse, "description": "A bad country, lang, kind or continue_url"},
        500: {"model": ErrorResponse, "description": "The helpline directory file is invalid"},
    },
    tags=["resources"],
)
async def interstitial(
    request: Request,
    country: str = _country_query(),
    kind: str = Query(
        description="author_support: to the author of a text that suggests risk; search_support: after a search; "
        "viewer_warning: to other viewers before content that may be upsetting.",
        json_schema_extra={"enum": list(KINDS)},
    ),
    lang: str = _lang_query(),
    continue_url: str | None = Query(
        None,
        description="Where the continue link goes (https:// or an app link such as myapp://feed). Without it the "
        "link goes to #continue and posts {type: 'sahay:continue', kind} to the host. Shown only where the policy "
        "allows continue for the kind.",
    ),
) -> Any:
    """The support page to embed in a WebView: helplines with tap-to-call and text links, someone to trust, a few
    coping steps, and continue only where the policy allows it. Self-contained: no external assets, no cookies,
    no tracking; a CSP allows nothing but its own inline style and script."""
    try:
        country, lang = _check(country, lang)
        if kind not in KINDS:
            raise Refused(KIND_RULE)
        if continue_url is not None:
            try:
                check_continue_url(continue_url)
            except ValueError:
                raise Refused(CONTINUE_URL_RULE) from None
        found = _lookup(request, country, lang)
    except Refused as exc:
        return _refused(exc)
    html = render_interstitial(
        kind=kind,
        lang=lang,
        lookup=found,
        allow_continue=continue_allowed(getattr(request.app.state, "policy", None), kind),
        continue_url=continue_url,
    )
    return HTMLResponse(html, headers=HEADERS)
