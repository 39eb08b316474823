"""initial schema: identities, agent metadata, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-28 20:18:03.117042
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import brokkr.broker.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_role",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pak_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_admin_role_singleton")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_role")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("cluster_name", sa.String(length=255), nullable=False),
        sa.Column(
            "last_heartbeat", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("status", sa.String(length=50), server_default="INACTIVE", nullable=False),
        sa.Column("pak_hash", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.CheckConstraint("status IN ('ACTIVE', 'INACTIVE')", name=op.f("ck_agents_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(
            "unique_agent_cluster",
            ["name", "cluster_name"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ux_agents_live_pak_hash",
            ["pak_hash"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
        )

    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("resource_type", sa.String(length=50), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "actor_type IN ('admin', 'agent', 'generator', 'system')",
            name=op.f("ck_audit_logs_actor_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.create_index("ix_audit_logs_action", ["action", "timestamp"], unique=False)
        batch_op.create_index(
            "ix_audit_logs_actor", ["actor_type", "actor_id", "timestamp"], unique=False
        )
        batch_op.create_index("ix_audit_logs_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_audit_logs_resource", ["resource_type", "resource_id", "timestamp"], unique=False
        )
        batch_op.create_index("ix_audit_logs_timestamp", ["timestamp"], unique=False)

    op.create_table(
        "auth_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pak_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_revocations")),
    )
    op.create_table(
        "generators",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("pak_hash", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column(
            "last_active_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generators")),
    )
    with op.batch_alter_table("generators", schema=None) as batch_op:
        batch_op.create_index(
            "unique_generator_name",
            ["name"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ux_generators_live_pak_hash",
            ["pak_hash"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
        )

    op.create_table(
        "agent_annotations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_annotations_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_annotations")),
        sa.UniqueConstraint("agent_id", "key", name="unique_agent_annotation_key"),
    )
    with op.batch_alter_table("agent_annotations", schema=None) as batch_op:
        batch_op.create_index("ix_agent_annotations_key_value", ["key", "value"], unique=False)

    op.create_table(
        "agent_labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_labels_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_labels")),
        sa.UniqueConstraint("agent_id", "label", name="unique_agent_label"),
    )
    with op.batch_alter_table("agent_labels", schema=None) as batch_op:
        batch_op.create_index("ix_agent_labels_label", ["label"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agent_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_labels_label")

    op.drop_table("agent_labels")
    with op.batch_alter_table("agent_annotations", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_annotations_key_value")

    op.drop_table("agent_annotations")
    with op.batch_alter_table("generators", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_generators_live_pak_hash",
            postgresql_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
        )
        batch_op.drop_index(
            "unique_generator_name",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("generators")
    op.drop_table("auth_revocations")
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_logs_timestamp")
        batch_op.drop_index("ix_audit_logs_resource")
        batch_op.drop_index("ix_audit_logs_created_at")
        batch_op.drop_index("ix_audit_logs_actor")
        batch_op.drop_index("ix_audit_logs_action")

    op.drop_table("audit_logs")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_agents_live_pak_hash",
            postgresql_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL"),
        )
        batch_op.drop_index(
            "unique_agent_cluster",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("agents")
    op.drop_table("admin_role")
