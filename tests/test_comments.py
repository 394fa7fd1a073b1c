"""Comments: written under a post, read oldest first page by page, counted on
cards, removed by their author, the post's author or an admin."""

import asyncio
import re
from html import unescape

import httpx
import pytest
from sqlmodel import col, select, update

from app.models import Comment, User
from tests.helpers import (
    Account,
    RunningApp,
    add_account,
    create_post,
    delete_account,
    page_login,
    running,
    submit,
)


@pytest.fixture
async def admin(server: RunningApp) -> Account:
    account = await add_account(server, "root")
    async with server.sessionmaker() as session:
        await session.exec(update(User).where(col(User.id) == account.id).values(is_admin=True))
        await session.commit()
    return account


async def comment(
    client: httpx.AsyncClient, account: Account, post_id: object, content: str = "Nice post"
) -> dict[str, object]:
    response = await client.post(
        f"/api/posts/{post_id}/comments", json={"content": content}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def comment_count(client: httpx.AsyncClient, post_id: object) -> int:
    count = (await client.get(f"/api/posts/{post_id}")).json()["comment_count"]
    assert isinstance(count, int)
    return count


async def test_comments_are_listed_oldest_first_page_by_page(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    for n in range(5):
        await comment(client, bob if n % 2 else alice, post["id"], f"Comment **{n}**")
    seen: list[str] = []
    url = f"/api/posts/{post['id']}/comments"
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get(url, params=params)).json()
        seen += [item["content"] for item in page["comments"]]
        if not page["has_more"]:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == [f"Comment **{n}**" for n in range(5)]
    first = (await client.get(url)).json()["comments"][0]
    assert first["content_html"] == "<p>Comment <strong>0</strong></p>\n"
    assert first["author"]["username"] == "alice"
    assert await comment_count(client, post["id"]) == 5
    # The card says so, with no statement of its own (see test_queries.py).
    assert (await client.get("/api/posts")).json()["posts"][0]["comment_count"] == 5


async def test_bad_comments_are_refused_with_a_message(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    url = f"/api/posts/{post['id']}/comments"
    for content in ("", "   ", "x" * 2001, "nul\x00byte"):
        refused = await client.post(url, json={"content": content}, headers=bob.headers)
        assert refused.status_code == 422, content
    assert (await client.post(url, json={"content": "hi"})).status_code == 401
    missing = await client.post(
        "/api/posts/999/comments", json={"content": "hi"}, headers=bob.headers
    )
    assert missing.status_code == 404
    assert (await client.get("/api/posts/999/comments")).status_code == 404
    forged = await client.get(url, params={"cursor": "not-a-cursor"})
    assert forged.status_code == 422
    scripted = await comment(client, bob, post["id"], "<script>alert(1)</script>[x](javascript:1)")
    assert "<script" not in str(scripted["content_html"])
    assert "href" not in str(scripted["content_html"])


async def test_who_may_remove_a_comment(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, server: RunningApp
) -> None:
    carol = await add_account(server, "carol")
    post = await create_post(client, alice)
    by_bob = [await comment(client, bob, post["id"], f"bob {n}") for n in range(3)]
    # Someone else entirely may not.
    refused = await client.delete(f"/api/comments/{by_bob[0]['id']}", headers=carol.headers)
    assert refused.status_code == 403
    assert (await client.delete("/api/comments/999", headers=carol.headers)).status_code == 404
    # The author, the post's author and an admin may.
    for comment_, remover in zip(by_bob, (bob, alice, admin), strict=True):
        removed = await client.delete(f"/api/comments/{comment_['id']}", headers=remover.headers)
        assert removed.status_code == 204
    again = await client.delete(f"/api/comments/{by_bob[1]['id']}", headers=bob.headers)
    assert again.status_code == 404
    # The author's own is gone; the others keep their place and say who removed them.
    listed = (await client.get(f"/api/posts/{post['id']}/comments")).json()["comments"]
    assert [(item["content"], item["removed_by"]) for item in listed] == [
        ("", "post-author"),
        ("", "admin"),
    ]
    assert await comment_count(client, post["id"]) == 0
    page = (await client.get(f"/posts/{post['id']}")).text
    assert "Comment removed by the post\N{RIGHT SINGLE QUOTATION MARK}s author." in page
    assert "Comment removed by an admin." in page
    assert "bob 1" not in page


async def test_removing_a_comment_twice_at_once_counts_once(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    await comment(client, bob, post["id"], "stays")
    doomed = await comment(client, bob, post["id"], "goes")
    answers = await asyncio.gather(
        *(client.delete(f"/api/comments/{doomed['id']}", headers=bob.headers) for _ in range(5))
    )
    assert sorted(answer.status_code for answer in answers) == [204, 404, 404, 404, 404]
    assert await comment_count(client, post["id"]) == 1


async def test_comments_go_with_their_post_and_their_user(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await create_post(client, alice, title="First")
    second = await create_post(client, alice, title="Second")
    for post in (first, second):
        await comment(client, bob, post["id"], "from bob")
        await comment(client, alice, post["id"], "from alice")
    assert (
        await client.delete(f"/api/posts/{first['id']}", headers=alice.headers)
    ).status_code == 204
    assert (await delete_account(client, bob)).status_code == 204
    assert await comment_count(client, second["id"]) == 1
    async with server.sessionmaker() as session:
        left = (await session.exec(select(Comment.post_id, Comment.content))).all()
    assert left == [(second["id"], "from alice")]


async def test_an_admin_may_delete_any_post(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
) -> None:
    first = await create_post(client, alice, title="First")
    second = await create_post(client, alice, title="Second")
    refused = await client.delete(f"/api/posts/{first['id']}", headers=bob.headers)
    assert refused.status_code == 403
    me = (await client.get("/api/users/me", headers=admin.headers)).json()
    assert me["is_admin"] is True
    removed = await client.delete(f"/api/posts/{first['id']}", headers=admin.headers)
    assert removed.status_code == 204
    # And through the page, which says whose post it was.
    await page_login(browser, admin.email)
    page = (await browser.get(f"/posts/{second['id']}")).text
    assert "Delete as admin" in page
    assert f'href="/posts/{second["id"]}/edit"' not in page
    deleted = await submit(browser, f"/posts/{second['id']}", f"/posts/{second['id']}/delete", {})
    assert deleted.status_code == 303
    home = await browser.get(deleted.headers["location"])
    assert "You deleted alice&#39;s post as an admin." in home.text
    assert (await client.get("/api/posts")).json()["posts"] == []


async def test_commenting_through_the_page(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    url = f"/posts/{post['id']}"
    visitor = (await browser.get(url)).text
    assert "Log in</a> to comment" in visitor
    await page_login(browser, bob.email)
    empty = await submit(browser, url, f"{url}/comments", {"content": "  "})
    assert empty.status_code == 422
    assert 'class="field-error"' in empty.text
    posted = await submit(browser, url, f"{url}/comments", {"content": "First! _really_"})
    assert posted.status_code == 303
    assert posted.headers["location"].startswith(f"{url}#comment-")
    page = (await browser.get(url)).text
    assert "<em>really</em>" in page
    assert "1 comment<" in page
    assert "💬 1" in (await browser.get("/")).text
    comment_id = posted.headers["location"].rsplit("-", 1)[1]
    removed = await submit(browser, url, f"/comments/{comment_id}/delete", {})
    assert removed.status_code == 303
    assert "First!" not in (await browser.get(url)).text


async def test_many_comments_page_with_a_more_link(
    server: RunningApp, client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    for n in range(25):
        await comment(client, alice, post["id"], f"number {n:02}")
    first = (await browser.get(f"/posts/{post['id']}")).text
    assert "number 19" in first
    assert "number 20" not in first
    more = re.search(r'href="([^"]+)">More comments', first)
    assert more is not None
    second = (await browser.get(unescape(more.group(1)))).text
    assert "number 20" in second
    assert "number 24" in second
    assert "number 19" not in second


async def test_a_browser_line_break_counts_as_one_character(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    # 1,401 characters in the textarea (which counts CRLF as one), 2,101 as sent.
    typed = "a\r\n" * 700 + "a"
    made = await comment(client, bob, post["id"], typed)
    assert made["content"] == "a\n" * 700 + "a"
    for invisible in ("\u200b", "\ufeff \u200b", "\x01\x02"):
        refused = await client.post(
            f"/api/posts/{post['id']}/comments",
            json={"content": invisible},
            headers=bob.headers,
        )
        assert refused.status_code == 422
        assert "Write something a reader can see." in refused.text


async def test_a_cursor_of_another_list_is_refused(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    await create_post(client, alice)
    posts_cursor = (await client.get("/api/posts", params={"limit": 1})).json()["next_cursor"]
    for url in (f"/api/posts/{post['id']}/comments", f"/posts/{post['id']}"):
        assert (await client.get(url, params={"cursor": posts_cursor})).status_code == 422
    for n in range(3):
        await comment(client, alice, post["id"], f"c{n}")
    page = await client.get(f"/api/posts/{post['id']}/comments", params={"limit": 1})
    comments_cursor = page.json()["next_cursor"]
    assert (await client.get("/api/posts", params={"cursor": comments_cursor})).status_code == 422


async def test_an_unverified_user_commenting_on_a_missing_post_gets_a_404(
    alice: Account, server: RunningApp
) -> None:
    verified_only = server.settings.model_copy(update={"require_verified_email": True})
    async with running(verified_only) as app, app.client() as client:
        missing = await client.post(
            "/api/posts/999999/comments", json={"content": "hi"}, headers=alice.headers
        )
        assert missing.status_code == 404
        post = await create_post_as_verified(app)
        refused = await client.post(
            f"/api/posts/{post}/comments", json={"content": "hi"}, headers=alice.headers
        )
        assert refused.status_code == 403


async def create_post_as_verified(app: RunningApp) -> int:
    author = await add_account(app, "vera")
    async with app.sessionmaker() as session:
        await session.exec(
            update(User).where(col(User.id) == author.id).values(email_verified=True)
        )
        await session.commit()
    async with app.client() as client:
        post = await create_post(client, author)
    post_id = post["id"]
    assert isinstance(post_id, int)
    return post_id


async def test_removing_a_comment_while_its_post_is_deleted(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Both requests take the post's row first: one wins, the other finds
    nothing (404), and neither waits on the other for good (no deadlock, 409)."""
    for _round in range(5):
        post = await create_post(client, alice)
        made = await comment(client, bob, post["id"])
        answers = await asyncio.gather(
            client.delete(f"/api/comments/{made['id']}", headers=bob.headers),
            client.delete(f"/api/posts/{post['id']}", headers=alice.headers),
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses in ([204, 204], [204, 404]), statuses


async def _comment_until(
    client: httpx.AsyncClient,
    done: "asyncio.Future[httpx.Response]",
    post: dict[str, object],
    account: Account,
    allowed: set[int],
) -> None:
    while not done.done():
        answer = await client.post(
            f"/api/posts/{post['id']}/comments",
            json={"content": "meanwhile"},
            headers=account.headers,
        )
        assert answer.status_code in allowed, answer.text


async def _remove_until(
    client: httpx.AsyncClient,
    done: "asyncio.Future[httpx.Response]",
    comments: list[dict[str, object]],
    remover: Account,
) -> None:
    for made in comments:
        if done.done():
            return
        answer = await client.delete(f"/api/comments/{made['id']}", headers=remover.headers)
        assert answer.status_code in (204, 404), answer.text


async def test_counts_stay_right_when_a_commenter_deletes_their_account_meanwhile(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """A commenter deletes their account while they go on commenting, and
    while the post's author removes their comments: every request ends (no
    deadlock), and the counts end equal to the comments left."""
    posts = [await create_post(client, alice, title=f"P{n}") for n in range(3)]
    for post in posts:
        await comment(client, bob, post["id"], "stays")
    # 201 before the deletion, 401 or 403 after it. On SQLite a comment begun
    # before the deletion committed may also be told to try again (409):
    # SQLite lets one writer at a time go on from what it read.
    allowed = {201, 401, 403}
    if server.engine.dialect.name == "sqlite":
        allowed.add(409)
    for round_ in range(3):
        carol = await add_account(server, f"carol{round_}")
        theirs = [await comment(client, carol, posts[n % 3]["id"]) for n in range(12)]
        deletion = asyncio.ensure_future(delete_account(client, carol))
        await asyncio.gather(
            _remove_until(client, deletion, theirs, alice),
            *(_comment_until(client, deletion, posts[k % 3], carol, allowed) for k in range(6)),
        )
        assert (await deletion).status_code == 204
    async with server.sessionmaker() as session:
        for post in posts:
            left = (
                await session.exec(
                    select(Comment).where(
                        col(Comment.post_id) == post["id"], col(Comment.removed_by).is_(None)
                    )
                )
            ).all()
            assert await comment_count(client, post["id"]) == len(left)


async def test_a_new_comment_is_on_the_page_its_form_leads_to(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    for n in range(25):
        await comment(client, alice, post["id"], f"earlier {n}")
    url = f"/posts/{post['id']}"
    await page_login(browser, bob.email)
    posted = await submit(browser, url, f"{url}/comments", {"content": "The newest one"})
    assert posted.status_code == 303
    landed = await browser.get(posted.headers["location"])
    assert "The newest one" in landed.text
    assert f'href="{url}#comments">Back to the first comments' in landed.text
    assert f'id="comment-{posted.headers["location"].rsplit("-", 1)[1]}"' in landed.text
