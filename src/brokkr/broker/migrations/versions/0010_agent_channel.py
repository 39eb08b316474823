"""agent channel: stack telemetry tables and hints for SQLite brokers

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agent_k8s_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("stack_id", sa.Uuid(), nullable=False),
        _timestamp("observed_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("involved_object", brokkr.broker.db.types.JSONDocument, nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_k8s_events")),
    )
    op.create_index(
        "ix_agent_k8s_events_stack_id_created_at", "agent_k8s_events", ["stack_id", "created_at"]
    )
    op.create_index("ix_agent_k8s_events_created_at", "agent_k8s_events", ["created_at"])
    op.create_table(
        "agent_pod_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("stack_id", sa.Uuid(), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("pod", sa.String(length=253), nullable=False),
        sa.Column("container", sa.String(length=253), nullable=False),
        _timestamp("ts"),
        sa.Column("line", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_pod_logs")),
    )
    op.create_index(
        "ix_agent_pod_logs_stack_id_created_at", "agent_pod_logs", ["stack_id", "created_at"]
    )
    op.create_index("ix_agent_pod_logs_created_at", "agent_pod_logs", ["created_at"])
    op.create_table(
        "agent_hints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_hints")),
    )


def downgrade() -> None:
    op.drop_table("agent_hints")
    op.drop_index("ix_agent_pod_logs_created_at", table_name="agent_pod_logs")
    op.drop_index("ix_agent_pod_logs_stack_id_created_at", table_name="agent_pod_logs")
    op.drop_table("agent_pod_logs")
    op.drop_index("ix_agent_k8s_events_created_at", table_name="agent_k8s_events")
    op.drop_index("ix_agent_k8s_events_stack_id_created_at", table_name="agent_k8s_events")
    op.drop_table("agent_k8s_events")
