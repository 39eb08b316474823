"""deployment health and on-demand diagnostics

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=nullable)


def _reference(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "deployment_health",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_object_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        _timestamp("checked_at"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "status IN ('healthy', 'degraded', 'failing', 'unknown')",
            name=op.f("ck_deployment_health_status"),
        ),
        _reference("deployment_health", "agent_id", "agents"),
        _reference("deployment_health", "deployment_object_id", "deployment_objects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_health")),
        sa.UniqueConstraint("agent_id", "deployment_object_id", name="unique_deployment_health"),
    )
    with op.batch_alter_table("deployment_health", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_health_deployment_object_id", ["deployment_object_id"], unique=False
        )
    op.create_table(
        "diagnostic_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_object_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=True),
        _timestamp("created_at"),
        _timestamp("claimed_at", nullable=True),
        _timestamp("completed_at", nullable=True),
        _timestamp("expires_at"),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'completed', 'failed', 'expired')",
            name=op.f("ck_diagnostic_requests_status"),
        ),
        sa.CheckConstraint(
            "status = 'pending' OR status = 'expired' OR claimed_at IS NOT NULL",
            name=op.f("ck_diagnostic_requests_claimed"),
        ),
        _reference("diagnostic_requests", "agent_id", "agents"),
        _reference("diagnostic_requests", "deployment_object_id", "deployment_objects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_requests")),
    )
    with op.batch_alter_table("diagnostic_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_diagnostic_requests_agent_id_status", ["agent_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_diagnostic_requests_status_expires_at", ["status", "expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_diagnostic_requests_deployment_object_id", ["deployment_object_id"], unique=False
        )
    op.create_table(
        "diagnostic_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("pod_statuses", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("log_tails", sa.Text(), nullable=True),
        _timestamp("collected_at"),
        _timestamp("created_at"),
        _reference("diagnostic_results", "request_id", "diagnostic_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_results")),
        sa.UniqueConstraint("request_id", name="unique_diagnostic_result"),
    )


def downgrade() -> None:
    op.drop_table("diagnostic_results")
    op.drop_table("diagnostic_requests")
    op.drop_table("deployment_health")
