"""Posts keep their Markdown rendered: sanitised HTML and a plain-text excerpt.

Existing posts are rendered here, a batch at a time (app/markdown.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:27:45.522548
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.markdown import render_post

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BATCH = 500


def upgrade() -> None:
    op.add_column("posts", sa.Column("content_html", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "posts", sa.Column("excerpt", sa.String(length=300), server_default="", nullable=False)
    )
    posts = sa.table(
        "posts",
        sa.column("id", sa.Integer),
        sa.column("content", sa.Text),
        sa.column("content_html", sa.Text),
        sa.column("excerpt", sa.String),
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(posts.c.id, posts.c.content)
            .where(posts.c.id > last)
            .order_by(posts.c.id)
            .limit(BATCH)
        ).all()
        for post_id, content in rows:
            rendered = render_post(content)
            connection.execute(
                posts.update()
                .where(posts.c.id == post_id)
                .values(content_html=rendered.html, excerpt=rendered.excerpt)
            )
        if len(rows) < BATCH:
            break
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("posts", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("excerpt")
        batch_op.drop_column("content_html")
