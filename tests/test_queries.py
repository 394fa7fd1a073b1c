"""How the data layer talks to the database: statement counts and no lazy loading."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlmodel import select

from app import security
from app.db import create_engine
from app.models import Post, User, utcnow
from tests import pictures
from tests.helpers import Account, RunningApp, create_post, csrf_from, login, page_login


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


async def _add_posts(server: RunningApp, authors: int, posts: int, name: str = "user") -> None:
    async with server.app.state.sessionmaker() as session, session.begin():
        users = [
            User(
                username=f"{name}{n}",
                username_key=f"{name}{n}",
                email=f"{name}{n}@example.com",
                password_hash="x",
            )
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
    server: RunningApp, client: httpx.AsyncClient
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
    # The posts with their authors, and the page's tags.
    assert counts[100] <= 4


async def test_reading_an_unloaded_author_raises_instead_of_querying(server: RunningApp) -> None:
    await _add_posts(server, authors=1, posts=1)
    async with server.app.state.sessionmaker() as session:
        post = (await session.exec(select(Post))).one()
        with (
            count_statements(server.engine) as statements,
            pytest.raises(InvalidRequestError, match="lazy='raise'"),
        ):
            _ = post.author
        assert statements == []


async def test_reading_unloaded_posts_of_a_user_raises(server: RunningApp) -> None:
    await _add_posts(server, authors=1, posts=1)
    async with server.app.state.sessionmaker() as session:
        user = (await session.exec(select(User))).one()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = user.posts


async def test_one_post_its_author_and_tags_are_read_in_one_statement(
    server: RunningApp, client: httpx.AsyncClient
) -> None:
    await _add_posts(server, authors=1, posts=1)
    (post,) = (await client.get("/api/posts")).json()["posts"]
    with count_statements(server.engine) as statements:
        response = await client.get(f"/api/posts/{post['id']}")
    assert response.status_code == 200
    assert "user0" in response.text
    assert len(statements) == 1, statements


async def test_pages_take_the_same_statements_for_few_and_many_rows(
    server: RunningApp, client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    """The home page and a post page, for a visitor and for a logged-in reader:
    at most four statements, whether they show two rows or a full page of them."""
    await _add_posts(server, authors=3, posts=2)
    post = await create_post(client, alice, content="Words")
    comments_url = f"/api/posts/{post['id']}/comments"
    await client.put(f"/api/posts/{post['id']}/like", headers=alice.headers)
    await client.post(comments_url, json={"content": "One"}, headers=alice.headers)
    await page_login(browser, alice.email)

    async def counts() -> dict[tuple[str, str], int]:
        found = {}
        for reader, who in ((client, "visitor"), (browser, "logged in")):
            for path in ("/", f"/posts/{post['id']}"):
                await reader.get(path)  # the first visit may connect or sign a cookie
                with count_statements(server.engine) as statements:
                    response = await reader.get(path)
                assert response.status_code == 200
                found[(path, who)] = len(statements)
        return found

    few = await counts()
    await _add_posts(server, authors=7, posts=40, name="more")
    for n in range(30):
        await client.post(comments_url, json={"content": f"c{n}"}, headers=alice.headers)
    many = await counts()
    assert few == many
    # Home: the page of posts with their authors, the page's tags, and for a
    # logged-in reader their account. A post: the post with its author and
    # tags, a page of comments with their authors, and for a logged-in reader
    # their account and whether they like it.
    assert many == {
        ("/", "visitor"): 2,
        ("/", "logged in"): 3,
        (f"/posts/{post['id']}", "visitor"): 2,
        (f"/posts/{post['id']}", "logged in"): 4,
    }


# --- no connection is held through slow work -----------------------------------------


@pytest.fixture
def connections_in_use(server: RunningApp) -> Callable[[], int]:
    pool = server.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout


async def test_uploads_hold_no_connection_while_their_image_is_processed(
    server: RunningApp,
    browser: httpx.AsyncClient,
    alice: Account,
    connections_in_use: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = server.app.state.images
    seen: list[int] = []
    processing = images.call

    async def observed(*args: Any, **kwargs: Any) -> Any:
        seen.append(connections_in_use())
        return await processing(*args, **kwargs)

    monkeypatch.setattr(images, "call", observed)

    file = {"file": ("me.jpg", pictures.jpeg(), "image/jpeg")}
    avatar = await browser.patch(
        f"/api/users/{alice.id}/picture", files=file, headers=alice.headers
    )
    assert avatar.status_code == 200
    post = await create_post(browser, alice)
    cover = await browser.patch(f"/api/posts/{post['id']}/image", files=file, headers=alice.headers)
    assert cover.status_code == 200
    await page_login(browser, alice.email)
    page = await browser.get("/posts/new")
    published = await browser.post(
        "/posts/new",
        data={"title": "With a cover", "content": "Words", "csrf_token": csrf_from(page.text)},
        files=[
            ("image", ("cover.png", pictures.png_with_alpha(), "image/png")),
            ("attachments", ("notes.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")),
        ],
    )
    assert published.status_code == 303
    # The avatar, the two covers and the attachment, each without a connection.
    assert seen == [0, 0, 0, 0]


async def test_logins_hold_no_connection_while_the_password_is_checked(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    alice: Account,
    connections_in_use: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    checking = security.verify_password

    async def observed(password_hash: str, password: str) -> bool:
        seen.append(connections_in_use())
        return await checking(password_hash, password)

    monkeypatch.setattr(security, "verify_password", observed)
    await login(client, alice.email)
    landed = await page_login(browser, alice.email)
    assert landed.status_code == 303
    wrong = await client.post(
        "/api/users/token", data={"username": "nobody@example.com", "password": "whatever1"}
    )
    assert wrong.status_code == 401
    assert seen == [0, 0, 0]


async def test_an_in_memory_sqlite_database_still_connects() -> None:
    # A file database gets a pool of its own size; memory has one connection.
    engine = create_engine("sqlite+aiosqlite://")
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
