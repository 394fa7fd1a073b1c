"""Tags: set from the API (a list) and the forms (comma-separated), shown on
cards and posts, and listed newest first at /tags/{tag} and ?tag=."""

import asyncio

import httpx
import pytest
from sqlmodel import select

from app.models import PostTag, Tag
from tests.helpers import Account, RunningApp, page_login, submit


async def publish(
    client: httpx.AsyncClient, account: Account, title: str, tags: object
) -> dict[str, object]:
    response = await client.post(
        "/api/posts",
        json={"title": title, "content": "Words", "tags": tags},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    post: dict[str, object] = response.json()
    return post


async def test_tags_are_cleaned_up_and_returned_sorted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    post = await publish(client, alice, "Tagged", [" Python ", "async-io", "python", "a1"])
    assert post["tags"] == ["a1", "async-io", "python"]
    again = await client.get(f"/api/posts/{post['id']}")
    assert again.json()["tags"] == ["a1", "async-io", "python"]


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["a", "b", "c", "d", "e", "f"], "at most 5 tags"),
        (["no spaces"], '\\"no spaces\\" is not one'),
        (["-dash"], "is not one"),
        (["x" * 31], "1 to 30"),
        (["café"], "is not one"),
        ([1], "valid string"),
        ("not-a-list", None),
    ],
)
async def test_bad_tags_are_refused_clearly(
    client: httpx.AsyncClient, alice: Account, tags: object, message: str | None
) -> None:
    response = await client.post(
        "/api/posts", json={"title": "T", "content": "C", "tags": tags}, headers=alice.headers
    )
    if message is None:
        # A comma-separated string is read as the forms send it.
        assert response.status_code == 201
        assert response.json()["tags"] == ["not-a-list"]
        return
    assert response.status_code == 422
    assert message in response.text


async def test_a_tags_list_is_newest_first_and_pages_by_cursor(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for n in range(5):
        await publish(client, alice, f"Post {n}", ["python"] if n % 2 == 0 else ["other"])
    first = (await client.get("/api/posts", params={"tag": "python", "limit": 2})).json()
    assert [post["title"] for post in first["posts"]] == ["Post 4", "Post 2"]
    assert first["has_more"] is True
    second = (
        await client.get(
            "/api/posts", params={"tag": "python", "limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [post["title"] for post in second["posts"]] == ["Post 0"]
    assert second["has_more"] is False
    unknown = await client.get("/api/posts", params={"tag": "nobody-uses-this"})
    assert unknown.json()["posts"] == []
    for bad in ("Bad Tag", "x" * 31, "a\x00b"):
        assert (await client.get("/api/posts", params={"tag": bad})).status_code == 422


async def test_editing_tags_replaces_them(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await publish(client, alice, "Retag me", ["one", "two"])
    url = f"/api/posts/{post['id']}"
    changed = await client.patch(url, json={"tags": ["two", "three"]}, headers=alice.headers)
    assert changed.json()["tags"] == ["three", "two"]
    assert changed.json()["updated_at"] != post["updated_at"]
    kept = await client.patch(url, json={"title": "New title"}, headers=alice.headers)
    assert kept.json()["tags"] == ["three", "two"]
    assert (await client.get("/api/posts", params={"tag": "one"})).json()["posts"] == []
    await client.delete(url, headers=alice.headers)
    async with server.sessionmaker() as session:
        assert (await session.exec(select(PostTag))).all() == []


async def test_the_same_new_tag_on_two_posts_at_once(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await asyncio.gather(
        publish(client, alice, "First", ["brand-new"]),
        publish(client, bob, "Second", ["brand-new"]),
    )
    async with server.sessionmaker() as session:
        tags = (await session.exec(select(Tag).where(Tag.name == "brand-new"))).all()
    assert len(tags) == 1
    listed = (await client.get("/api/posts", params={"tag": "brand-new"})).json()["posts"]
    # Both under the one tag (published at the same moment: in either order).
    assert sorted(post["title"] for post in listed) == ["First", "Second"]


async def test_the_forms_take_comma_separated_tags_and_pages_show_them(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    created = await submit(
        browser,
        "/posts/new",
        "/posts/new",
        {"title": "Form tags", "content": "Body", "tags": "Web, fastapi ,web"},
    )
    assert created.status_code == 303
    page = (await browser.get(created.headers["location"])).text
    assert '<a class="tag" href="/tags/fastapi">fastapi</a>' in page
    assert '<a class="tag" href="/tags/web">web</a>' in page
    listed = await browser.get("/tags/web")
    assert listed.status_code == 200
    assert "Posts tagged" in listed.text
    assert "Form tags" in listed.text
    edit = await browser.get(f"{created.headers['location']}/edit")
    assert 'value="fastapi, web"' in edit.text
    refused = await submit(
        browser, "/posts/new", "/posts/new", {"title": "T", "content": "C", "tags": "a b"}
    )
    assert refused.status_code == 422
    assert 'id="tags-note">A tag has 1 to 30' in refused.text
    assert (await browser.get("/tags/Not%20A%20Tag")).status_code == 422
