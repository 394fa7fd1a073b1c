"""Full-text search (app/search.py): an FTS5 table on SQLite, a tsvector per
post under a GIN index on PostgreSQL; filled from the posts there are.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 22:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = [
    # The rowid is the post's id. porter: "running" finds "run";
    # remove_diacritics: "cafe" finds "café".
    "CREATE VIRTUAL TABLE posts_search USING fts5("
    "title, tags, content, tokenize = 'porter unicode61 remove_diacritics 2')",
    # A virtual table has no foreign keys: a trigger stands in for ON DELETE CASCADE.
    "CREATE TRIGGER posts_search_delete AFTER DELETE ON posts BEGIN"
    " DELETE FROM posts_search WHERE rowid = old.id; END",
    "INSERT INTO posts_search (rowid, title, tags, content)"
    " SELECT posts.id, posts.title, coalesce((SELECT group_concat(tags.name, ' ')"
    " FROM post_tags JOIN tags ON tags.id = post_tags.tag_id"
    " WHERE post_tags.post_id = posts.id), ''), posts.content FROM posts",
]

POSTGRESQL = [
    "CREATE TABLE posts_search ("
    " post_id INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,"
    " document TSVECTOR NOT NULL)",
    "CREATE INDEX ix_posts_search_document ON posts_search USING gin (document)",
    "INSERT INTO posts_search (post_id, document)"
    " SELECT posts.id, setweight(to_tsvector('english', posts.title), 'A')"
    " || setweight(to_tsvector('english', coalesce((SELECT string_agg(tags.name, ' ')"
    " FROM post_tags JOIN tags ON tags.id = post_tags.tag_id"
    " WHERE post_tags.post_id = posts.id), '')), 'B')"
    " || setweight(to_tsvector('english', posts.content), 'D') FROM posts",
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER posts_search_delete")
    op.execute("DROP TABLE posts_search")
