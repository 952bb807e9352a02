"""The moderation queue: queued items (author only as a keyed HMAC) and the append-only audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIONS = "'resources_shown', 'contacted_via_platform_channel', 'escalated_per_policy', 'content_removed', 'no_action'"


def upgrade() -> None:
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("author_hash", sa.String(length=64), nullable=True),
        sa.Column("surface", sa.String(length=16), nullable=False),
        sa.Column("lang", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("sla_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=32), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_label", sa.String(length=32), nullable=True),
        sa.Column("decision_action", sa.String(length=40), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"decision_action IS NULL OR decision_action IN ({_ACTIONS})", name=op.f("ck_queue_items_action")
        ),
        sa.CheckConstraint("state IN ('queued', 'claimed', 'decided')", name=op.f("ck_queue_items_state")),
        sa.CheckConstraint("priority >= 1 AND priority <= 5", name=op.f("ck_queue_items_priority")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_items")),
        sa.UniqueConstraint("item_id", "model_version", name=op.f("uq_queue_items_item_id_model_version")),
    )
    op.create_index(
        op.f("ix_queue_items_state_priority_sla_deadline_id"),
        "queue_items",
        ["state", "priority", "sla_deadline", "id"],
        unique=False,
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("queue_item_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.CheckConstraint("event IN ('enqueue', 'list', 'claim', 'decision')", name=op.f("ck_audit_events_event")),
        sa.ForeignKeyConstraint(
            ["queue_item_id"], ["queue_items.id"], name=op.f("fk_audit_events_queue_item_id_queue_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_queue_item_id"), "audit_events", ["queue_item_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_queue_item_id"), table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index(op.f("ix_queue_items_state_priority_sla_deadline_id"), table_name="queue_items")
    op.drop_table("queue_items")
