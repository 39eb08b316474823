"""work orders: the active queue, its targeting, and the log of finished orders

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=nullable)


def _owned_by_work_order(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["work_order_id"],
        ["work_orders.id"],
        name=op.f(f"fk_{table}_work_order_id_work_orders"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("work_type", sa.String(length=50), nullable=False),
        sa.Column("yaml_content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("claimed_by", sa.Uuid(), nullable=True),
        _timestamp("claimed_at", nullable=True),
        sa.Column("claim_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("backoff_seconds", sa.Integer(), nullable=False),
        _timestamp("next_retry_after", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("last_error_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('PENDING', 'CLAIMED', 'RETRY_PENDING')", name=op.f("ck_work_orders_status")
        ),
        sa.CheckConstraint(
            "(status = 'CLAIMED') = (claimed_by IS NOT NULL AND claimed_at IS NOT NULL)",
            name=op.f("ck_work_orders_claimed"),
        ),
        sa.CheckConstraint(
            "retry_count >= 0 AND retry_count <= max_retries",
            name=op.f("ck_work_orders_retry_count"),
        ),
        sa.CheckConstraint(
            "claim_timeout_seconds > 0 AND backoff_seconds > 0",
            name=op.f("ck_work_orders_durations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_orders_status_created_at", ["status", "created_at"], unique=False
        )
    op.create_table(
        "work_order_targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_order_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_work_order_targets_agent_id_agents"),
            ondelete="CASCADE",
        ),
        _owned_by_work_order("work_order_targets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_targets")),
        sa.UniqueConstraint("work_order_id", "agent_id", name="unique_work_order_target"),
    )
    with op.batch_alter_table("work_order_targets", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_targets_agent_id", ["agent_id"], unique=False)
    op.create_table(
        "work_order_labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_order_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        _owned_by_work_order("work_order_labels"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_labels")),
        sa.UniqueConstraint("work_order_id", "label", name="unique_work_order_label"),
    )
    with op.batch_alter_table("work_order_labels", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_labels_label", ["label"], unique=False)
    op.create_table(
        "work_order_annotations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_order_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        _owned_by_work_order("work_order_annotations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_annotations")),
        sa.UniqueConstraint("work_order_id", "key", "value", name="unique_work_order_annotation"),
    )
    with op.batch_alter_table("work_order_annotations", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_annotations_key_value", ["key", "value"], unique=False)
    op.create_table(
        "work_order_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_type", sa.String(length=50), nullable=False),
        _timestamp("created_at"),
        _timestamp("claimed_at", nullable=True),
        _timestamp("completed_at"),
        sa.Column("claimed_by", sa.Uuid(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("retries_attempted", sa.Integer(), nullable=False),
        sa.Column("result_message", sa.Text(), nullable=True),
        sa.Column("yaml_content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_log")),
    )
    with op.batch_alter_table("work_order_log", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_log_completed_at", ["completed_at"], unique=False)


def downgrade() -> None:
    op.drop_table("work_order_log")
    op.drop_table("work_order_annotations")
    op.drop_table("work_order_labels")
    op.drop_table("work_order_targets")
    op.drop_table("work_orders")
