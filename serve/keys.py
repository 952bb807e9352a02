"""API keys: create, verify, revoke, list. Only a SHA-256 hash of each key is stored.

A key reads `sahay_<key_id>_<secret>`: `key_id` is 12 hex digits, public (lists, logs, revocation); `secret` is
`secrets.token_urlsafe(32)`, 256 random bits, shown once when the key is created and never stored.

Why SHA-256 and not bcrypt/argon2: slow, salted hashes exist to make guessing *low-entropy passwords* expensive.
A 256-bit random secret cannot be guessed, so one fast hash is as strong and keeps a per-request check in
microseconds (the norm for API keys: GitHub tokens, Stripe keys). A stolen database yields hashes that cannot be
turned back into keys. The stored hash is compared in constant time.

Verified keys are cached in memory (by hash, never the key) for `cache_ttl` seconds: a revocation through the same
`KeyStore` (the admin API) takes effect at once; one made elsewhere (`sahay keys revoke`, another server process)
within `cache_ttl` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from serve.db import make_engine, migrate, session_factory
from serve.tables import ROLES, ApiKey, utcnow

__all__ = ["ROLES", "KeyRecord", "KeyStore", "UnknownKeyError", "create_key"]

PREFIX = "sahay"
KEY_PATTERN = re.compile(r"^sahay_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")
NAME_MAX = 100
CACHE_TTL_S = 5.0
CACHE_MAX = 4096
LAST_USED_EVERY = timedelta(minutes=1)
"""`last_used_at` is written at most this often per key, so that verifying is not a write per request."""


class UnknownKeyError(LookupError):
    """No API key has this key_id."""


@dataclass(frozen=True)
class KeyRecord:
    """What may be shown about a key: everything but its hash."""

    key_id: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        return cls(row.key_id, row.role, row.name, row.created_at, row.revoked_at, row.last_used_at)


def hash_key(plaintext: str) -> str:
    """SHA-256 (hex) of the whole key."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("the key needs a name (who or what uses it, e.g. 'web-app' or 'asha.moderator')")
    if len(name) > NAME_MAX:
        raise ValueError(f"name is longer than {NAME_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("name contains control characters")
    return name


class KeyStore:
    """API keys kept in the database behind `engine` (migrated already: `serve.db.migrate`). Thread-safe."""

    def __init__(self, engine: Engine, *, cache_ttl: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.engine = engine
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._read = session_factory(engine)
        self._write = session_factory(engine, write=True)
        self._cache: dict[str, tuple[float, KeyRecord]] = {}
        self._lock = threading.Lock()

    def create(self, role: str, name: str) -> tuple[KeyRecord, str]:
        """A new key: its record and the plaintext key, which is not kept and cannot be shown again."""
        role, name = check_role(role), check_name(name)
        for attempt in range(3):
            key_id = secrets.token_hex(6)
            plaintext = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            row = ApiKey(key_id=key_id, secret_hash=hash_key(plaintext), role=role, name=name, created_at=utcnow())
            try:
                with self._write.begin() as session:
                    session.add(row)
            except IntegrityError:  # a key_id drawn twice (1 in 2**48): draw again
                if attempt == 2:
                    raise
                continue
            return KeyRecord.of(row), plaintext
        raise AssertionError("unreachable")

    def cached(self, plaintext: str) -> KeyRecord | None:
        """The record of a key verified within `cache_ttl` seconds, else None (None: ask `verify`)."""
        digest = hash_key(plaintext)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None:
                return None
            if self._clock() - hit[0] >= self.cache_ttl:
                del self._cache[digest]
                return None
            return hit[1]

    def verify(self, plaintext: str) -> KeyRecord | None:
        """The record of an active key, or None for anything else (malformed, unknown, wrong secret, revoked)."""
        if not isinstance(plaintext, str) or (match := KEY_PATTERN.match(plaintext)) is None:
            return None
        if (record := self.cached(plaintext)) is not None:
            return record
        digest = hash_key(plaintext)
        with self._read() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.key_id == match["key_id"]))
        if row is None or not hmac.compare_digest(row.secret_hash, digest) or row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            try:
                with self._write.begin() as session:
                    session.execute(update(ApiKey).where(ApiKey.key_id == row.key_id).values(last_used_at=now))
                row.last_used_at = now
            except OperationalError:  # advisory only: a busy database must not refuse a valid key
                pass
        record = KeyRecord.of(row)
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (self._clock(), record)
        return record

    def get(self, key_id: str) -> KeyRecord:
        with self._read() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if row is None:
            raise UnknownKeyError(f"no API key with id {key_id!r}")
        return KeyRecord.of(row)

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke the key (idempotent: a revoked key keeps its first revocation time); UnknownKeyError if none."""
        if not KEY_ID_PATTERN.match(key_id):
            raise UnknownKeyError(f"no API key with id {key_id!r} (a key id is 12 hex digits, as `list` shows)")
        with self._write.begin() as session:
            session.execute(
                update(ApiKey).where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
        with self._lock:
            for digest in [d for d, (_, rec) in self._cache.items() if rec.key_id == key_id]:
                del self._cache[digest]
        return self.get(key_id)

    def list(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first; no hashes."""
        with self._read() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()
        return [KeyRecord.of(row) for row in rows]


def create_key(database_url: str, role: str, name: str) -> str:
    """Migrate the database at `database_url`, create a key there and return it (for scripts and test fixtures)."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        return KeyStore(engine).create(role, name)[1]
    finally:
        engine.dispose()
