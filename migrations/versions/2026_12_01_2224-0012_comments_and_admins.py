"""Comments under posts with each post's count of them (app/comments.py), and
admins (users.is_admin).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 22:24:48.610206
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(), nullable=False),
        sa.Column("removed_by", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_comments_post_id_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_comments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_comments_post_id_created_at_id", ["post_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_comments_user_id", ["user_id"], unique=False)

    op.add_column(
        "posts", sa.Column("comment_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "users",
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("is_admin")

    with op.batch_alter_table("posts", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("comment_count")

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_user_id")
        batch_op.drop_index("ix_comments_post_id_created_at_id")

    op.drop_table("comments")
