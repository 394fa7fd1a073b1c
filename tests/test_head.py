"""`HEAD` works wherever `GET` does: the same status and headers, and no body."""

import httpx
import pytest

from tests.helpers import Account, create_post


async def test_head_on_the_home_page_has_the_headers_of_get_and_no_body(
    client: httpx.AsyncClient,
) -> None:
    get = await client.get("/")
    head = await client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert int(head.headers["content-length"]) == len(get.content)


@pytest.mark.parametrize(
    "path", ["/health", "/api/posts", "/static/css/site.css", "/docs", "/openapi.json"]
)
async def test_head_answers_200_on_pages_the_api_and_static_files(
    client: httpx.AsyncClient, path: str
) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_on_a_post_answers_like_get(client: httpx.AsyncClient, alice: Account) -> None:
    post = await create_post(client, alice)
    for path in (f"/posts/{post['id']}", f"/api/posts/{post['id']}"):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]


async def test_head_on_a_missing_post_is_404_like_get(client: httpx.AsyncClient) -> None:
    assert (await client.get("/posts/999999")).status_code == 404
    head = await client.head("/posts/999999")
    assert head.status_code == 404
    assert head.content == b""


async def test_head_on_a_post_only_route_is_405_like_get(client: httpx.AsyncClient) -> None:
    get = await client.get("/logout")
    head = await client.head("/logout")
    assert get.status_code == 405
    assert head.status_code == 405
    assert head.content == b""
    assert get.headers["allow"] == head.headers["allow"] == "POST"
