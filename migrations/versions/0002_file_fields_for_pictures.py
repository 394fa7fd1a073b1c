"""File fields: users' profile pictures and posts' cover images.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.storage

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("image", app.storage.FileType(), nullable=True))
    op.add_column("posts", sa.Column("image", app.storage.FileType(), nullable=True))


def downgrade() -> None:
    # SQLite cannot always drop a column in place; batch mode rebuilds the table.
    with op.batch_alter_table("posts") as batch_op:
        batch_op.drop_column("image")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("image")
