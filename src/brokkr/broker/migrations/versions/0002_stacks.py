"""stacks, deployment objects, targeting, agent events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:40:30.422132
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    counters = op.create_table(
        "sequence_counters",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sequence_counters")),
    )
    op.bulk_insert(counters, [{"name": "deployment_objects", "value": 0}])
    op.create_table(
        "stacks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("generator_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["generator_id"],
            ["generators.id"],
            name=op.f("fk_stacks_generator_id_generators"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stacks")),
    )
    with op.batch_alter_table("stacks", schema=None) as batch_op:
        batch_op.create_index("ix_stacks_generator_id", ["generator_id"], unique=False)
        batch_op.create_index(
            "unique_stack_name",
            ["name"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "agent_targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("stack_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_targets_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stack_id"],
            ["stacks.id"],
            name=op.f("fk_agent_targets_stack_id_stacks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_targets")),
        sa.UniqueConstraint("agent_id", "stack_id", name="unique_agent_stack"),
    )
    with op.batch_alter_table("agent_targets", schema=None) as batch_op:
        batch_op.create_index("ix_agent_targets_stack_id", ["stack_id"], unique=False)

    op.create_table(
        "deployment_objects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sequence_id", sa.BigInteger(), nullable=False),
        sa.Column("stack_id", sa.Uuid(), nullable=False),
        sa.Column("yaml_content", sa.Text(), nullable=False),
        sa.Column("yaml_checksum", sa.String(length=64), nullable=False),
        sa.Column(
            "submitted_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("is_deletion_marker", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stack_id"],
            ["stacks.id"],
            name=op.f("fk_deployment_objects_stack_id_stacks"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_objects")),
        sa.UniqueConstraint("sequence_id", name="unique_deployment_object_sequence"),
    )
    with op.batch_alter_table("deployment_objects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_objects_latest_live",
            ["stack_id", "sequence_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "stack_annotations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("stack_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["stack_id"],
            ["stacks.id"],
            name=op.f("fk_stack_annotations_stack_id_stacks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_annotations")),
        sa.UniqueConstraint("stack_id", "key", name="unique_stack_annotation_key"),
    )
    with op.batch_alter_table("stack_annotations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stack_annotations_key_value_stack", ["key", "value", "stack_id"], unique=False
        )

    op.create_table(
        "stack_labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("stack_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["stack_id"],
            ["stacks.id"],
            name=op.f("fk_stack_labels_stack_id_stacks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_labels")),
        sa.UniqueConstraint("stack_id", "label", name="unique_stack_label"),
    )
    with op.batch_alter_table("stack_labels", schema=None) as batch_op:
        batch_op.create_index("ix_stack_labels_label_stack", ["label", "stack_id"], unique=False)

    op.create_table(
        "agent_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_object_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('SUCCESS', 'FAILURE')", name=op.f("ck_agent_events_status")),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_events_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_object_id"],
            ["deployment_objects.id"],
            name=op.f("fk_agent_events_deployment_object_id_deployment_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_events")),
    )
    with op.batch_alter_table("agent_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agent_events_agent_created", ["agent_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_agent_events_created", ["created_at"], unique=False)
        batch_op.create_index("ix_agent_events_object", ["deployment_object_id"], unique=False)
        batch_op.create_index(
            "ix_agent_events_success",
            ["agent_id", "deployment_object_id"],
            unique=False,
            postgresql_where=sa.text("status = 'SUCCESS' AND deleted_at IS NULL"),
            sqlite_where=sa.text("status = 'SUCCESS' AND deleted_at IS NULL"),
        )

    op.create_table(
        "deletion_recipients",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_object_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_deletion_recipients_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_object_id"],
            ["deployment_objects.id"],
            name=op.f("fk_deletion_recipients_deployment_object_id_deployment_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "agent_id", "deployment_object_id", name=op.f("pk_deletion_recipients")
        ),
    )
    with op.batch_alter_table("deletion_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deletion_recipients_object", ["deployment_object_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deletion_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_deletion_recipients_object")

    op.drop_table("deletion_recipients")
    with op.batch_alter_table("agent_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_agent_events_success",
            postgresql_where=sa.text("status = 'SUCCESS' AND deleted_at IS NULL"),
            sqlite_where=sa.text("status = 'SUCCESS' AND deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_agent_events_object")
        batch_op.drop_index("ix_agent_events_created")
        batch_op.drop_index("ix_agent_events_agent_created")

    op.drop_table("agent_events")
    with op.batch_alter_table("stack_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_stack_labels_label_stack")

    op.drop_table("stack_labels")
    with op.batch_alter_table("stack_annotations", schema=None) as batch_op:
        batch_op.drop_index("ix_stack_annotations_key_value_stack")

    op.drop_table("stack_annotations")
    with op.batch_alter_table("deployment_objects", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deployment_objects_latest_live",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("deployment_objects")
    with op.batch_alter_table("agent_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_targets_stack_id")

    op.drop_table("agent_targets")
    with op.batch_alter_table("stacks", schema=None) as batch_op:
        batch_op.drop_index(
            "unique_stack_name",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_stacks_generator_id")

    op.drop_table("stacks")
    op.drop_table("sequence_counters")
