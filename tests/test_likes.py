"""Likes: one per user and post, counted on the post, shown to whoever asks."""

import asyncio

import httpx
from sqlmodel import select

from app.models import Like
from tests.helpers import Account, RunningApp, create_post, delete_account, page_login, submit


async def like_count(client: httpx.AsyncClient, post_id: object) -> int:
    count = (await client.get(f"/api/posts/{post_id}")).json()["like_count"]
    assert isinstance(count, int)
    return count


async def test_twenty_likes_at_once_are_one_like(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    url = f"/api/posts/{post['id']}/like"
    answers = await asyncio.gather(*(client.put(url, headers=bob.headers) for _ in range(20)))
    assert {answer.status_code for answer in answers} == {204}
    assert await like_count(client, post["id"]) == 1
    async with server.sessionmaker() as session:
        assert len((await session.exec(select(Like))).all()) == 1
    # And twenty unlikes at once take it away once.
    answers = await asyncio.gather(*(client.delete(url, headers=bob.headers) for _ in range(20)))
    assert {answer.status_code for answer in answers} == {204}
    assert await like_count(client, post["id"]) == 0


async def test_liked_by_me_is_for_whoever_asks(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    liked = await create_post(client, alice, title="Liked")
    await create_post(client, alice, title="Not liked")
    assert (
        await client.put(f"/api/posts/{liked['id']}/like", headers=bob.headers)
    ).status_code == 204
    for path in ("/api/posts", f"/api/users/{alice.id}/posts"):
        mine = (await client.get(path, headers=bob.headers)).json()["posts"]
        assert {post["title"]: post["liked_by_me"] for post in mine} == {
            "Liked": True,
            "Not liked": False,
        }
        assert {post["title"]: post["like_count"] for post in mine} == {"Liked": 1, "Not liked": 0}
        visitor = (await client.get(path)).json()["posts"]
        assert not any(post["liked_by_me"] for post in visitor)
    one = await client.get(f"/api/posts/{liked['id']}", headers=bob.headers)
    assert one.json()["liked_by_me"] is True
    other = await client.get(f"/api/posts/{liked['id']}", headers=alice.headers)
    assert other.json()["liked_by_me"] is False


async def test_likes_need_a_login_and_a_post(client: httpx.AsyncClient, bob: Account) -> None:
    assert (await client.put("/api/posts/1/like")).status_code == 401
    assert (await client.put("/api/posts/999/like", headers=bob.headers)).status_code == 404


async def test_the_like_button_is_a_plain_form(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    page_url = f"/posts/{post['id']}"
    await page_login(browser, bob.email)
    liked = await submit(browser, page_url, f"{page_url}/like", {})
    assert liked.status_code == 303
    page = (await browser.get(page_url)).text
    assert 'aria-pressed="true"' in page
    assert "1 like<" in page
    assert "♥ 1" in (await browser.get("/")).text
    await submit(browser, page_url, f"{page_url}/like", {})
    page = (await browser.get(page_url)).text
    assert 'aria-pressed="false"' in page
    assert "0 likes" in page


async def test_likes_go_with_their_post_and_their_user(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await create_post(client, alice, title="First")
    second = await create_post(client, alice, title="Second")
    for post in (first, second):
        await client.put(f"/api/posts/{post['id']}/like", headers=bob.headers)
        await client.put(f"/api/posts/{post['id']}/like", headers=alice.headers)
    await client.delete(f"/api/posts/{first['id']}", headers=alice.headers)
    assert (await delete_account(client, bob)).status_code == 204
    assert await like_count(client, second["id"]) == 1
    async with server.sessionmaker() as session:
        left = (await session.exec(select(Like.post_id, Like.user_id))).all()
    assert left == [(second["id"], alice.id)]
