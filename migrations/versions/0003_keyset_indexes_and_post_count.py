"""Indexes in the order of each post list, and users' post counts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each list reads its page straight off an index in its own order; the
    # single-column indexes they replace made the author's list sort all of
    # the author's posts.
    op.create_index("ix_posts_date_posted_id", "posts", ["date_posted", "id"])
    op.create_index("ix_posts_user_id_date_posted_id", "posts", ["user_id", "date_posted", "id"])
    op.drop_index("ix_posts_date_posted", table_name="posts")
    op.drop_index("ix_posts_user_id", table_name="posts")
    op.add_column(
        "users", sa.Column("post_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.execute(
        "UPDATE users SET post_count = (SELECT count(*) FROM posts WHERE posts.user_id = users.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("post_count")
    op.create_index("ix_posts_user_id", "posts", ["user_id"])
    op.create_index("ix_posts_date_posted", "posts", ["date_posted"])
    op.drop_index("ix_posts_user_id_date_posted_id", table_name="posts")
    op.drop_index("ix_posts_date_posted_id", table_name="posts")
