"""How the data layer talks to the database: statement counts and no lazy loading."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from app.models import Post, User, utcnow
from tests.conftest import LiveServer


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _add_posts(server: LiveServer, authors: int, posts: int) -> None:
    async with server.app.state.sessionmaker() as session, session.begin():
        users = [
            User(username=f"user{n}", email=f"user{n}@example.com", password_hash="x")
            for n in range(authors)
        ]
        session.add_all(users)
        await session.flush()
        start = utcnow()
        for n in range(posts):
            author = users[n % authors]
            assert author.id is not None
            posted = start + timedelta(seconds=n)
            session.add(
                Post(
                    title=f"post {n}",
                    content="c",
                    user_id=author.id,
                    date_posted=posted,
                    updated_at=posted,
                )
            )


async def test_post_list_statement_count_does_not_grow_with_page_size(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await _add_posts(server, authors=7, posts=120)
    # Connecting the first time may run the driver's own set-up queries.
    assert (await client.get("/api/posts")).status_code == 200
    counts = {}
    for limit in (10, 100):
        with count_statements(server.engine) as statements:
            response = await client.get("/api/posts", params={"limit": limit})
        assert response.status_code == 200
        assert len(response.json()["posts"]) == limit
        counts[limit] = len(statements)
    assert counts[10] == counts[100]
    assert counts[100] <= 3


async def test_reading_an_unloaded_author_raises_instead_of_querying(server: LiveServer) -> None:
    await _add_posts(server, authors=1, posts=1)
    async with server.app.state.sessionmaker() as session:
        post = (await session.exec(select(Post))).one()
        with (
            count_statements(server.engine) as statements,
            pytest.raises(InvalidRequestError, match="lazy='raise'"),
        ):
            _ = post.author
        assert statements == []


async def test_reading_unloaded_posts_of_a_user_raises(server: LiveServer) -> None:
    await _add_posts(server, authors=1, posts=1)
    async with server.app.state.sessionmaker() as session:
        user = (await session.exec(select(User))).one()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = user.posts
