"""stack templates, their labels and annotations, and rendered-object provenance

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "stack_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("deleted_at", nullable=True),
        sa.Column("generator_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("template_content", sa.Text(), nullable=False),
        sa.Column("parameters_schema", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["generator_id"],
            ["generators.id"],
            name=op.f("fk_stack_templates_generator_id_generators"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_templates")),
    )
    with op.batch_alter_table("stack_templates", schema=None) as batch_op:
        batch_op.create_index("ix_stack_templates_family", ["name", "generator_id"], unique=False)
        batch_op.create_index(
            "unique_template_version",
            ["generator_id", "name", "version"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
    op.create_table(
        "template_labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["stack_templates.id"],
            name=op.f("fk_template_labels_template_id_stack_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_labels")),
        sa.UniqueConstraint("template_id", "label", name="unique_template_label"),
    )
    op.create_table(
        "template_annotations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["stack_templates.id"],
            name=op.f("fk_template_annotations_template_id_stack_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_annotations")),
        sa.UniqueConstraint("template_id", "key", name="unique_template_annotation_key"),
    )
    op.create_table(
        "rendered_deployment_objects",
        sa.Column("deployment_object_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("template_parameters", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["deployment_object_id"],
            ["deployment_objects.id"],
            name=op.f("fk_rendered_deployment_objects_deployment_object_id_deployment_objects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["stack_templates.id"],
            name=op.f("fk_rendered_deployment_objects_template_id_stack_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(
            "deployment_object_id", name=op.f("pk_rendered_deployment_objects")
        ),
    )
    with op.batch_alter_table("rendered_deployment_objects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rendered_deployment_objects_template", ["template_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("rendered_deployment_objects")
    op.drop_table("template_annotations")
    op.drop_table("template_labels")
    op.drop_table("stack_templates")
