"""deletion markers owed to unassigned agents only

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deployment_objects") as batch:
        batch.add_column(
            sa.Column("owed_only", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("deployment_objects") as batch:
        batch.drop_column("owed_only")
