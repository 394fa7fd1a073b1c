"""The post routes of the JSON API, as a client sees them."""

from typing import Any

import httpx
import pytest

from app import posts
from app.models import Post
from tests.helpers import Account, RunningApp, create_post


async def _post_count(client: httpx.AsyncClient) -> int:
    """How many posts the list shows (these tests make fewer than a page of 100)."""
    page = (await client.get("/api/posts", params={"limit": 100})).json()
    assert page["has_more"] is False
    return len(page["posts"])


async def test_new_post_is_returned_with_its_author(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.post(
        "/api/posts", json={"title": " Hello ", "content": "First post"}, headers=alice.headers
    )
    assert response.status_code == 201
    post = response.json()
    assert post["title"] == "Hello"
    assert post["content"] == "First post"
    assert post["image_url"] is None
    assert post["date_posted"] == post["updated_at"]
    assert post["date_posted"].endswith("Z") or post["date_posted"].endswith("+00:00")
    assert post["author"] == {
        "id": alice.id,
        "username": "alice",
        "image_url": "/static/img/default-avatar.svg",
        "image": None,
    }
    assert (await client.get(f"/api/posts/{post['id']}")).json() == post


async def test_creating_a_post_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/posts", json={"title": "t", "content": "c"})
    assert response.status_code == 401
    assert await _post_count(client) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "content": "c"},
        {"title": "   ", "content": "c"},
        {"title": "t" * 101, "content": "c"},
        {"title": "t", "content": "c" * 10_001},
        {"title": {"nested": 1}, "content": "c"},
        {"title": "t"},
    ],
    ids=["empty-title", "blank-title", "long-title", "long-content", "wrong-type", "missing"],
)
async def test_invalid_post_is_422_and_not_saved(
    client: httpx.AsyncClient, alice: Account, body: dict[str, object]
) -> None:
    response = await client.post("/api/posts", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert await _post_count(client) == 0


async def test_malformed_json_post_is_422_and_not_saved(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.post(
        "/api/posts",
        content=b'{"title": "t", "content"',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert await _post_count(client) == 0


async def test_list_is_newest_first_and_paginated(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(5):
        await create_post(client, alice, title=f"post {number}")
    first = (await client.get("/api/posts", params={"limit": 2})).json()
    assert [post["title"] for post in first["posts"]] == ["post 4", "post 3"]
    assert (first["limit"], first["has_more"]) == (2, True)
    second = (
        await client.get("/api/posts", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [post["title"] for post in second["posts"]] == ["post 2", "post 1"]
    last = (
        await client.get("/api/posts", params={"limit": 2, "cursor": second["next_cursor"]})
    ).json()
    assert [post["title"] for post in last["posts"]] == ["post 0"]
    assert (last["has_more"], last["next_cursor"]) == (False, None)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1000}, {"limit": 2**70}, {"limit": "x"}, {"cursor": "x"}]
)
async def test_bad_pagination_is_422(
    client: httpx.AsyncClient, params: dict[str, str | int]
) -> None:
    response = await client.get("/api/posts", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_missing_post_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/posts/999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Post not found."}


async def test_author_can_patch_one_field(client: httpx.AsyncClient, alice: Account) -> None:
    post = await create_post(client, alice, title="Before", content="Body")
    response = await client.patch(
        f"/api/posts/{post['id']}", json={"title": "After"}, headers=alice.headers
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["title"], changed["content"]) == ("After", "Body")
    assert changed["updated_at"] > post["updated_at"]
    assert changed["date_posted"] == post["date_posted"]


async def test_author_can_put_whole_post(client: httpx.AsyncClient, alice: Account) -> None:
    post = await create_post(client, alice)
    url = f"/api/posts/{post['id']}"
    response = await client.put(
        url, json={"title": "New", "content": "Text"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["content"]) == ("New", "Text")
    incomplete = await client.put(url, json={"title": "Only"}, headers=alice.headers)
    assert incomplete.status_code == 422
    assert (await client.get(url)).json()["title"] == "New"


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
async def test_other_users_cannot_change_a_post(
    client: httpx.AsyncClient, alice: Account, bob: Account, method: str
) -> None:
    post = await create_post(client, alice, title="Mine")
    url = f"/api/posts/{post['id']}"
    body = {"title": "Stolen", "content": "Stolen"}
    response = await client.request(method, url, json=body, headers=bob.headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "Only the author can change this post."}
    assert (await client.get(url)).json()["title"] == "Mine"


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
async def test_writes_need_a_login(client: httpx.AsyncClient, alice: Account, method: str) -> None:
    post = await create_post(client, alice)
    body = {"title": "x", "content": "y"}
    response = await client.request(method, f"/api/posts/{post['id']}", json=body)
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
async def test_missing_post_is_404_before_ownership(
    client: httpx.AsyncClient, bob: Account, method: str
) -> None:
    body = {"title": "x", "content": "y"}
    response = await client.request(method, "/api/posts/999", json=body, headers=bob.headers)
    assert response.status_code == 404


async def test_invalid_patch_is_422_and_changes_nothing(
    client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice, title="Keep")
    url = f"/api/posts/{post['id']}"
    for body in ({"title": ""}, {"title": "t" * 101}, {"content": 5}):
        assert (await client.patch(url, json=body, headers=alice.headers)).status_code == 422
    assert (await client.get(url)).json() == post


async def test_author_can_delete_post(client: httpx.AsyncClient, alice: Account) -> None:
    post = await create_post(client, alice)
    response = await client.delete(f"/api/posts/{post['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert (await client.get(f"/api/posts/{post['id']}")).status_code == 404
    assert await _post_count(client) == 0


async def test_a_change_racing_a_delete_is_a_404(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post is deleted by another request after this one loaded it."""
    post = await create_post(client, alice)
    updating = posts.update_post

    async def deleted_meanwhile(*args: Any, **kwargs: Any) -> Any:
        async with server.sessionmaker() as session:
            row = await session.get(Post, post["id"])
            assert row is not None
            await posts.delete_post(session, row)
            await session.commit()
        return await updating(*args, **kwargs)

    monkeypatch.setattr(posts, "update_post", deleted_meanwhile)
    response = await client.patch(
        f"/api/posts/{post['id']}", json={"title": "Too late"}, headers=alice.headers
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Post not found."}
