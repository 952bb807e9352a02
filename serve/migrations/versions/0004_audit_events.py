"""Audit events `export` (decided texts read in bulk by `sahay queue export`) and `purge` (retention removed texts):
the CHECK constraint on audit_events.event takes the two new values.

SQLite cannot alter a constraint: batch mode copies the table (recreate="auto" does so on SQLite only); PostgreSQL
drops and re-adds the constraint. The constraint keeps the name 0002 gave it (`ck_audit_events_event`).

Downgrade restores the old list; it refuses while `export` or `purge` records exist, since the audit log is
append-only and a migration must not delete records on its own (archive and delete them deliberately first).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("enqueue", "list", "claim", "decision")
_NEW = (*_OLD, "export", "purge")
_NAME = "ck_audit_events_event"


def _event_in(values: tuple[str, ...]) -> str:
    return f"event IN ({', '.join(repr(v) for v in values)})"


def _replace_check(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("audit_events", recreate="auto") as batch:
        batch.drop_constraint(op.f(_NAME), type_="check")
        batch.create_check_constraint(op.f(_NAME), _event_in(values))


def upgrade() -> None:
    _replace_check(_NEW)


def downgrade() -> None:
    added = tuple(v for v in _NEW if v not in _OLD)
    if not context.is_offline_mode():
        found = op.get_bind().scalar(
            sa.text("SELECT count(*) FROM audit_events WHERE event IN :events").bindparams(
                sa.bindparam("events", added, expanding=True)
            )
        )
        if found:
            raise RuntimeError(
                f"cannot downgrade below 0004: {found} audit record(s) of type {' or '.join(added)} exist and the "
                "old constraint forbids them; the audit log is append-only, so archive and delete them deliberately "
                "first"
            )
    _replace_check(_OLD)
