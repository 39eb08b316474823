"""webhook subscriptions and deliveries

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, brokkr.broker.db.types.JSONDocument, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("auth_header_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=True),
        _json("event_types", nullable=False),
        _json("filters", nullable=True),
        _json("target_labels", nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "max_retries >= 0 AND timeout_seconds > 0",
            name=op.f("ck_webhook_subscriptions_limits"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_subscriptions_created_at", ["created_at"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _json("target_labels", nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("acquired_by", sa.Uuid(), nullable=True),
        _timestamp("acquired_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("last_attempt_at", nullable=True),
        _timestamp("next_retry_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("completed_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'acquired', 'success', 'failed', 'dead')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_deliveries_attempts")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_status_next_retry_at", ["status", "next_retry_at"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_deliveries_subscription_id_created_at",
            ["subscription_id", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_webhook_deliveries_completed_at", ["completed_at"], unique=False)


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
