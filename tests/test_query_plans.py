"""Every list reads its page off an index: no sort of the whole table, no full scan.

The statements are the ones the app really runs for each list (recorded while
it serves the page), explained by the database itself on a table big enough
for its planner to choose as it would in production.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.models import Comment, Post, PostTag, Tag, User, utcnow
from tests.helpers import RunningApp, load_more_url

POSTS, AUTHORS, COMMENTS = 20_000, 20, 10_000


async def _fill(server: RunningApp) -> None:
    """AUTHORS users; user 1 has half of the posts, the others share the rest."""
    async with server.engine.begin() as connection:
        await connection.execute(
            insert(User),
            [
                {
                    "username": f"user{n}",
                    "username_key": f"user{n}",
                    "email": f"user{n}@example.com",
                    "password_hash": "x",
                }
                for n in range(1, AUTHORS + 1)
            ],
        )
        start = utcnow() - timedelta(seconds=POSTS)
        await connection.execute(
            insert(Post),
            [
                {
                    "title": f"post {n}",
                    "content": "words",
                    "user_id": 1 if n % 2 else 2 + n % (AUTHORS - 1),
                    "date_posted": start + timedelta(seconds=n),
                    "updated_at": start + timedelta(seconds=n),
                }
                for n in range(POSTS)
            ],
        )
        # Every other post is tagged "python"; one in a hundred "rare".
        await connection.execute(insert(Tag), [{"name": "python"}, {"name": "rare"}])
        await connection.execute(
            insert(PostTag),
            [
                {
                    "post_id": n + 1,
                    "tag_id": 1 if n % 2 else 2,
                    "date_posted": start + timedelta(seconds=n),
                }
                for n in range(POSTS)
                if n % 2 or n % 100 == 0
            ],
        )
        # Half of COMMENTS under post 1, the rest spread over the others.
        await connection.execute(
            insert(Comment),
            [
                {
                    "post_id": 1 if n % 2 else 2 + n % (POSTS - 1),
                    "user_id": 1 + n % AUTHORS,
                    "content": "c",
                    "content_html": "<p>c</p>",
                    "created_at": start + timedelta(seconds=n),
                }
                for n in range(COMMENTS)
            ],
        )
        await connection.execute(text("ANALYZE"))


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters `engine` sends to the database meanwhile."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _plan(connection: AsyncConnection, statement: str, parameters: Any) -> str:
    if connection.dialect.name == "sqlite":
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)
    rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
    return "\n".join(str(row[0]) for row in rows)


def _problems(plan: str) -> list[str]:
    """The steps of `plan` whose cost grows with the table."""
    problems = []
    for line in plan.splitlines():
        step = line.strip().lstrip("->").strip()
        # SQLite: "SCAN posts" reads every row ("SCAN posts USING INDEX ..." walks
        # an index in order and stops at the LIMIT); a temporary B-tree is a sort.
        # PostgreSQL: "Seq Scan on posts" reads every row; any Sort node sorts.
        if step in ("SCAN posts", "SCAN post_tags", "SCAN comments") or "TEMP B-TREE" in step:
            problems.append(line)
        if step.startswith(
            ("Seq Scan on post", "Seq Scan on comments", "Sort", "Incremental Sort")
        ):
            problems.append(line)
    return problems


def _finds_the_author_in_the_index(plan: str) -> bool:
    """Whether the index lookup itself picks the author's posts. Walking the
    date index and skipping other authors' posts is fine for an author with
    half of them, but would read most of the table for a rare one."""
    sqlite = re.search(r"SEARCH posts USING .*INDEX .*\(user_id=\?", plan)
    postgres = re.search(r"Index Cond: \(+user_id = ", plan)
    return bool(sqlite or postgres)


@pytest.mark.parametrize(
    ("path", "rare_author"),
    [
        ("/", False),
        ("/api/posts", False),
        ("/users/1/posts", False),
        ("/api/users/1/posts", False),
        ("/users/7/posts", True),
        ("/api/users/7/posts", True),
        ("/tags/python", False),
        ("/api/posts?tag=rare", False),
        ("/api/posts/1/comments", False),
    ],
)
async def test_each_list_page_is_read_off_an_index(
    server: RunningApp, client: httpx.AsyncClient, path: str, rare_author: bool
) -> None:
    await _fill(server)
    first = await client.get(path)
    assert first.status_code == 200
    if path.startswith("/api"):
        separator = "&" if "?" in path else "?"
        next_page = f"{path}{separator}cursor={first.json()['next_cursor']}"
    else:
        next_page = load_more_url(first.text)
    for url in (path, next_page):
        with recorded_statements(server.engine) as statements:
            response = await client.get(url)
        assert response.status_code == 200
        (listing,) = [
            (statement, parameters)
            for statement, parameters in statements
            if "ORDER BY" in statement and "LIMIT" in statement
        ]
        async with server.engine.connect() as connection:
            plan = await _plan(connection, *listing)
        assert _problems(plan) == [], f"{url}:\n{plan}"
        if rare_author:
            assert _finds_the_author_in_the_index(plan), f"{url}:\n{plan}"
