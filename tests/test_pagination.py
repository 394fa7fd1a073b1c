"""Keyset pagination as a reader sees it: every post once, in order, whatever
is published meanwhile; cursors that were tampered with are refused."""

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from app.models import Post, utcnow
from tests.helpers import (
    TEST_SECRET,
    Account,
    RunningApp,
    create_post,
    load_more_url,
    page_login,
)


async def _api_pages(
    client: httpx.AsyncClient,
    path: str,
    limit: int,
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> list[list[str]]:
    """Every page of an API list, by following next_cursor; `between_pages` is
    awaited after each page, before the next is asked for."""
    pages: list[list[str]] = []
    params: dict[str, str | int] = {"limit": limit}
    while True:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([post["title"] for post in body["posts"]])
        assert body["has_more"] is (body["next_cursor"] is not None)
        if not body["has_more"]:
            return pages
        if between_pages is not None:
            await between_pages()
        params = {"limit": limit, "cursor": body["next_cursor"]}


async def test_posts_published_while_paging_neither_repeat_nor_hide_one(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(12):
        await create_post(client, alice, title=f"old {number:02d}")
    published = 0

    async def publish() -> None:
        nonlocal published
        await create_post(client, alice, title=f"new {published}")
        published += 1

    pages = await _api_pages(client, "/api/posts", limit=5, between_pages=publish)
    seen = [title for page in pages for title in page]
    # Exactly the posts there were when paging began, newest first, each once.
    assert seen == [f"old {number:02d}" for number in range(11, -1, -1)]
    assert published == 2
    # And the new ones are at the top for whoever starts again.
    again = (await client.get("/api/posts", params={"limit": 2})).json()
    assert [post["title"] for post in again["posts"]] == ["new 1", "new 0"]


async def test_posts_published_at_the_same_instant_are_each_listed_once(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    # Seven posts share one timestamp: the id breaks the tie, so a page that
    # ends among them goes on exactly where it stopped.
    instant = utcnow() - timedelta(hours=1)
    async with server.app.state.sessionmaker() as session, session.begin():
        for number in range(7):
            author = alice if number % 2 else bob
            session.add(
                Post(
                    title=f"tied {number}",
                    content="c",
                    user_id=author.id,
                    date_posted=instant,
                    updated_at=instant,
                )
            )
    await create_post(client, alice, title="later")
    pages = await _api_pages(client, "/api/posts", limit=3)
    seen = [title for page in pages for title in page]
    assert seen == ["later", *(f"tied {number}" for number in range(6, -1, -1))]
    by_alice = await _api_pages(client, f"/api/users/{alice.id}/posts", limit=2)
    assert [title for page in by_alice for title in page] == [
        "later",
        "tied 5",
        "tied 3",
        "tied 1",
    ]


async def test_load_more_pages_walk_the_list_once_while_posts_are_published(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(25):
        await create_post(client, alice, title=f"Story {number:02d}")
    for path in ("/", f"/users/{alice.id}/posts"):
        seen: list[str] = []
        url = path
        while True:
            html = (await browser.get(url)).text
            seen += re.findall(r"Story (\d\d)", html)
            if "data-load-more" not in html:
                break
            url = load_more_url(html)
            await create_post(client, alice, title="Breaking news")
        assert seen == [f"{number:02d}" for number in range(24, -1, -1)], path


def _cursor(payload: object, secret: str = TEST_SECRET) -> str:
    return URLSafeSerializer(secret, salt="cursor").dumps(payload)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not-a-cursor",
        "W10.abc",
        "x" * 1000,
        "\u00e9\u00e9\u00e9",
        _cursor([1_700_000_000_000_000, 5], secret="someone else's secret key"),
        _cursor([1_700_000_000_000_000, 5])[:-2] + "AA",
        _cursor([1_700_000_000_000_000, 2**63]),
        _cursor([1_700_000_000_000_000, 0]),
        _cursor([10**30, 5]),
        _cursor(["yesterday", 5]),
        _cursor([1_700_000_000_000_000]),
        _cursor({"id": 5}),
        URLSafeSerializer(TEST_SECRET, salt="cursor").make_signer().sign(b"!!!!").decode(),
    ],
    ids=[
        "empty",
        "garbage",
        "unsigned",
        "too-long",
        "not-ascii",
        "other-key",
        "bad-signature",
        "id-out-of-range",
        "id-zero",
        "date-out-of-range",
        "date-not-a-number",
        "too-short",
        "not-a-list",
        "signed-but-not-json",
    ],
)
async def test_a_malformed_or_forged_cursor_is_422_with_a_message(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, cursor: str
) -> None:
    await create_post(client, alice)
    for path in ("/api/posts", f"/api/users/{alice.id}/posts"):
        response = await client.get(path, params={"cursor": cursor})
        assert response.status_code == 422, path
        assert response.json()["detail"]
    for path in ("/", f"/users/{alice.id}/posts"):
        response = await browser.get(path, params={"cursor": cursor})
        assert response.status_code == 422, path
        assert "<html" in response.text


async def test_a_cursor_passed_back_unchanged_is_accepted_by_every_list(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(3):
        await create_post(client, alice, title=f"post {number}")
    for path in ("/api/posts", f"/api/users/{alice.id}/posts"):
        cursor = (await client.get(path, params={"limit": 1})).json()["next_cursor"]
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", cursor), "cursors are safe in a URL as they are"
        rest = (await client.get(path, params={"cursor": cursor})).json()
        assert [post["title"] for post in rest["posts"]] == ["post 1", "post 0"], path
        # A cursor is a place in the order, so it serves the page lists too.
        page = (await browser.get("/", params={"cursor": cursor})).text
        assert re.findall(r"post \d", page) == ["post 1", "post 0"], path


async def test_author_post_count_stays_right_under_concurrent_writes(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    created = await asyncio.gather(
        *(create_post(client, alice, title=f"at once {n}") for n in range(20))
    )
    deletions = await asyncio.gather(
        *(client.delete(f"/api/posts/{post['id']}", headers=alice.headers) for post in created[:8])
    )
    assert [response.status_code for response in deletions] == [204] * 8
    await page_login(browser, alice.email)
    page = (await browser.get(f"/users/{alice.id}/posts")).text
    assert "12 posts" in page
    listed = (await client.get(f"/api/users/{alice.id}/posts", params={"limit": 100})).json()
    assert len(listed["posts"]) == 12


async def test_deleting_one_post_twice_at_once_deletes_and_counts_it_once(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(3):
        await create_post(client, alice, title=f"kept {number}")
    for _ in range(3):
        post = await create_post(client, alice, title="double-clicked")
        answers = await asyncio.gather(
            *(client.delete(f"/api/posts/{post['id']}", headers=alice.headers) for _ in range(2))
        )
        assert sorted(answer.status_code for answer in answers) == [204, 404]
    page = (await browser.get(f"/users/{alice.id}/posts")).text
    assert "3 posts" in page
