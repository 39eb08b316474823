"""job schedule: periodic jobs run once per interval per database, not once per broker process

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import brokkr.broker.db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_schedule",
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("due_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("last_run_at", brokkr.broker.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_schedule")),
    )


def downgrade() -> None:
    op.drop_table("job_schedule")
