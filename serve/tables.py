"""The database tables (SQLAlchemy 2 declarative models). Change them only together with a migration in
serve/migrations/versions/; `migrate()` applies them. Types are portable: SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import CheckConstraint, DateTime, Integer, MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

Role = Literal["service", "moderator", "admin"]
"""service: classify; moderator: the moderation queue; admin: everything, including policy and keys."""
ROLES: tuple[str, ...] = get_args(Role)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so that later migrations (batch mode on SQLite) can find and alter them."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC: `timestamptz` on PostgreSQL, UTC text on SQLite (which has no
    time zones). Naive datetimes are refused, so local time cannot slip in; values come back aware, in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone (e.g. datetime.now(UTC))")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    """An API key. Only a SHA-256 hash of the key is kept; `key_id` is public (it is part of the key, shown in
    lists, used to revoke)."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('service', 'moderator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:  # never the hash
        return f"ApiKey(key_id={self.key_id!r}, role={self.role!r}, name={self.name!r})"
