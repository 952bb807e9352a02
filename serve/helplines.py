"""The helpline directory: `load_directory(path)` validates serve/helplines.yaml; `Directory.lookup` picks entries.

An entry is verified when it has a `last_verified` date; unverified entries are hidden unless asked for. A country
with no shown entry gets the international fallback entry instead, flagged as a fallback.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator, model_validator

FALLBACK_COUNTRY = "*"
"""The `countries` value of the international fallback entry."""

_HTTPS_URL = r"^https://[^\s/$.?#][^\s]*$"


class HelplineDirectoryError(ValueError):
    """The directory file is missing, is not YAML, or breaks the schema; the message names the file and field."""


class Number(BaseModel):
    """A number to call or text: `dial` goes after tel: / sms:, `display` is how people write it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dial: str = Field(pattern=r"^\+?[0-9]{3,15}$", examples=["14416"])
    display: str = Field(min_length=1, max_length=32, examples=["1-800-891-4416"])


class Helpline(BaseModel):
    """One service in the directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    countries: list[str] = Field(min_length=1)
    """ISO 3166-1 alpha-2 codes (upper case), or ["*"] for the international fallback."""
    name: str = Field(min_length=1, max_length=120)
    phones: list[Number] = []
    sms: list[Number] = []
    chat: str | None = Field(None, pattern=_HTTPS_URL)
    url: str | None = Field(None, pattern=_HTTPS_URL)
    email: str | None = Field(None, pattern=r"^[^\s@]+@[^\s@]+\.[a-z]{2,}$")
    languages: list[str] = Field(min_length=1)
    """Language codes the service answers in, e.g. hi, en, es."""
    hours: str | None = Field(None, min_length=1, max_length=80)
    """"24x7" or the service's own words."""
    free: bool | None = None
    """Free to contact; None when unknown."""
    source: str = Field(pattern=_HTTPS_URL)
    """The official page the entry was checked against."""
    last_verified: dt.date | None
    """When a person last checked the entry against `source`; None = unverified."""
    fallback: bool = False
    """The international directory, shown when a country has no entry."""
    notes: str | None = None

    @computed_field
    @property
    def verified(self) -> bool:
        return self.last_verified is not None

    @field_validator("countries")
    @classmethod
    def _countries(cls, countries: list[str]) -> list[str]:
        for code in countries:
            if code != FALLBACK_COUNTRY and not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(f"{code!r} is not an upper-case ISO 3166-1 alpha-2 code (or '*')")
        if FALLBACK_COUNTRY in countries and len(countries) > 1:
            raise ValueError("'*' (the international fallback) stands alone")
        return countries

    @field_validator("languages")
    @classmethod
    def _languages(cls, languages: list[str]) -> list[str]:
        for code in languages:
            if not re.fullmatch(r"[a-z]{2,3}(-[A-Z][a-z]{3})?", code):
                raise ValueError(f"{code!r} is not a language code such as 'hi', 'en' or 'hi-Latn'")
        return languages

    @field_validator("last_verified")
    @classmethod
    def _not_in_future(cls, day: dt.date | None) -> dt.date | None:
        # a day's grace for time zones ahead of the machine's
        if day is not None and day > dt.date.today() + dt.timedelta(days=1):
            raise ValueError(f"{day} is in the future")
        return day

    @model_validator(mode="after")
    def _contact(self) -> Helpline:
        if not (self.phones or self.sms or self.chat or self.url):
            raise ValueError("an entry needs at least one of phones, sms, chat or url")
        if self.fallback != (self.countries == [FALLBACK_COUNTRY]):
            raise ValueError("fallback: true goes with countries: ['*'], and only with it")
        return self

    def speaks(self, lang: str) -> bool:
        """Whether the service answers in `lang` (hi-Latn counts as hi: same language, other script)."""
        return lang in self.languages or lang.split("-")[0] in self.languages


class Directory(BaseModel):
    """The whole file: a version and its entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    helplines: list[Helpline] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Directory:
        ids = [h.id for h in self.helplines]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate ids: {', '.join(dupes)}")
        if not any(h.fallback and h.verified for h in self.helplines):
            raise ValueError("the directory needs a verified fallback entry (countries: ['*'], fallback: true)")
        return self

    def lookup(self, country: str, lang: str | None = None, *, show_unverified: bool = False) -> Lookup:
        """Entries for `country` (those answering in `lang` first); the fallback entries when there are none."""
        country = country.upper()
        shown = [h for h in self.helplines if h.verified or show_unverified]
        entries = [h for h in shown if country in h.countries]
        fallback = not entries
        if fallback:
            entries = [h for h in shown if h.fallback]
        if lang:
            entries.sort(key=lambda h: not h.speaks(lang))  # stable: file order within each group
        return Lookup(country=country, entries=entries, fallback=fallback)


@dataclass(frozen=True)
class Lookup:
    country: str
    entries: list[Helpline]
    fallback: bool
    """True when `country` has no shown entry and `entries` are the international fallback."""

    @property
    def message(self) -> str | None:
        if not self.fallback:
            return None
        return f"no helpline is listed for {self.country}: showing an international directory instead"


def load_directory(path: str | os.PathLike) -> Directory:
    """Read and validate a directory file; any problem raises HelplineDirectoryError naming the file and field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HelplineDirectoryError(f"{path}: cannot read the helpline directory ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise HelplineDirectoryError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Directory.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
            problems.append(f"{loc or 'file'}: {err['msg'].removeprefix('Value error, ')}")
        raise HelplineDirectoryError(f"{path}: invalid helpline directory: " + "; ".join(problems)) from None


_cache: dict[Path, tuple[tuple[int, int], Directory]] = {}
_cache_lock = threading.Lock()


def cached_directory(path: str | os.PathLike) -> Directory:
    """`load_directory`, re-read only when the file changes (so an operator's edit shows without a restart)."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError:
        return load_directory(path)  # raises the clear error
    stamp = (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    directory = load_directory(path)
    with _cache_lock:
        _cache[path] = (stamp, directory)
    return directory
