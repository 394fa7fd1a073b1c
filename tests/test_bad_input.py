"""Input no person means to send: numbers past the database's range, NUL
characters, lone surrogates. Each gets a 4xx that says what is wrong, never a
500, and nothing is stored."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tests.helpers import (
    PASSWORD,
    TEST_SECRET,
    Account,
    create_post,
    csrf_from,
    page_login,
    submit,
)

HUGE = "99999999999999999999"
PAST_INT32 = str(2**31)


@pytest.mark.parametrize("number", [HUGE, PAST_INT32, "0", "-1"])
async def test_ids_outside_the_database_range_are_404_or_422(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, number: str
) -> None:
    await page_login(browser, alice.email)
    requests = [
        client.get(f"/api/posts/{number}"),
        client.get(f"/api/users/{number}"),
        client.get(f"/api/users/{number}/posts"),
        client.patch(f"/api/posts/{number}", json={"title": "t"}, headers=alice.headers),
        client.delete(f"/api/posts/{number}", headers=alice.headers),
        client.delete(f"/api/users/{number}/picture", headers=alice.headers),
        browser.get(f"/posts/{number}"),
        browser.get(f"/posts/{number}/edit"),
        browser.get(f"/users/{number}/posts"),
    ]
    for request in requests:
        response = await request
        assert response.status_code in (404, 422), response.request.url
        if response.request.url.path.startswith("/api"):
            assert response.json()["detail"]
        else:
            assert "<html" in response.text


@pytest.mark.parametrize("limit", [HUGE, "-1", "1e3", "NaN"])
async def test_limits_outside_the_range_are_422(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/api/posts", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": "nul\x00byte", "content": "c"},
        {"title": "t", "content": "a NUL \x00 in the middle"},
        {"title": "\x00", "content": "c"},
    ],
    ids=["title", "content", "only-nul"],
)
async def test_text_with_a_nul_character_is_422_and_not_saved(
    client: httpx.AsyncClient, alice: Account, body: dict[str, str]
) -> None:
    response = await client.post("/api/posts", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert "NUL character" in json.dumps(response.json())
    post = await create_post(client, alice, title="clean")
    patched = await client.patch(
        f"/api/posts/{post['id']}", json={"content": "x\x00"}, headers=alice.headers
    )
    assert patched.status_code == 422
    listed = (await client.get("/api/posts")).json()["posts"]
    assert [(p["title"], p["content"]) for p in listed] == [("clean", "World")]


async def test_accounts_refuse_nul_characters_in_every_field(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for body in (
        {"username": "ev\x00e", "email": "eve@example.com", "password": PASSWORD},
        {"username": "eve", "email": "eve\x00@example.com", "password": PASSWORD},
        {"username": "eve", "email": "eve@example.com", "password": PASSWORD + "\x00"},
    ):
        response = await client.post("/api/users", json=body)
        assert response.status_code == 422, body
    renamed = await client.patch(
        f"/api/users/{alice.id}", json={"username": "a\x00"}, headers=alice.headers
    )
    assert renamed.status_code == 422
    for username, password in (("alice\x00@example.com", PASSWORD), (alice.email, "pass\x00word")):
        token = await client.post(
            "/api/users/token", data={"username": username, "password": password}
        )
        assert token.status_code == 422
        assert "NUL character" in token.json()["detail"]
    assert (await client.get("/api/users/me", headers=alice.headers)).json()["username"] == "alice"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "\\ud800", "content": "c"}',
        b'{"title": "t", "content": "lone \\udfff surrogate"}',
        b'{"title": "\\ud800", "content": ""}',
    ],
    ids=["title", "content", "with-another-error"],
)
async def test_a_lone_surrogate_in_json_is_422(
    client: httpx.AsyncClient, alice: Account, raw: bytes
) -> None:
    response = await client.post(
        "/api/posts",
        content=raw,
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"]
    assert (await client.get("/api/posts")).json()["posts"] == []


async def test_forms_show_a_message_for_a_nul_character(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    registered = await submit(
        browser,
        "/register",
        "/register",
        {
            "username": "nul\x00user",
            "email": "nul@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    assert registered.status_code == 422
    assert "NUL character" in registered.text
    login = await submit(
        browser, "/login", "/login", {"email": "x\x00@example.com", "password": PASSWORD}
    )
    assert login.status_code == 422
    assert "NUL character" in login.text
    await page_login(browser, alice.email)
    form = await browser.get("/posts/new")
    published = await browser.post(
        "/posts/new",
        data={"title": "Fine", "content": "Not \x00 fine", "csrf_token": csrf_from(form.text)},
    )
    assert published.status_code == 422
    assert "NUL character" in published.text
    assert 'value="Fine"' in published.text


async def test_a_csrf_token_or_cookie_with_odd_characters_is_refused_not_a_500(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    forged = await browser.post(
        "/posts/new", data={"title": "t", "content": "c", "csrf_token": "é"}
    )
    assert forged.status_code == 403
    # A cookie's bytes reach the app as Latin-1 text: here "Ã©.Ã©".
    odd_flash = await browser.get("/", headers={b"Cookie": b"flash=\xc3\xa9.\xc3\xa9"})
    assert odd_flash.status_code == 200


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_numbers_json_cannot_carry_back_are_422(
    client: httpx.AsyncClient, alice: Account, number: str
) -> None:
    for method, path, body in (
        ("POST", "/api/posts", f'{{"title": {number}, "content": "c"}}'),
        ("POST", "/api/users", f'{{"username": {number}, "email": "e@example.com"}}'),
        ("PATCH", f"/api/users/{alice.id}", f'{{"username": {number}}}'),
    ):
        response = await client.request(
            method,
            path,
            content=body.encode(),
            headers={**alice.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"]


async def test_a_form_that_smuggles_a_lone_surrogate_is_422_not_a_500(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    # A multipart form may declare its own charset; this one decodes the
    # escape "\\ud800" into a lone surrogate, which no page could show back.
    await page_login(browser, alice.email)
    token = csrf_from((await browser.get("/posts/new")).text)
    fields = {
        "csrf_token": token,
        "title": "a\\ud800b",
        "content": "words",
        "username": "a\\ud800b",
        "email": "a\\ud800b@example.com",
        "password": PASSWORD,
        "next": "/\\ud800",
    }
    body = "".join(
        f'--X\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    body_bytes = (body + "--X--\r\n").encode()
    content_type = "multipart/form-data; boundary=X; charset=unicode_escape"
    for path in ("/posts/new", "/register", "/login", "/account"):
        response = await browser.post(
            path, content=body_bytes, headers={"Content-Type": content_type}
        )
        assert response.status_code == 422, path
        assert "<html" in response.text


async def test_a_token_for_an_id_past_the_database_range_is_refused(
    client: httpx.AsyncClient,
) -> None:
    claims = {"sub": str(2**63), "exp": datetime.now(UTC) + timedelta(minutes=5)}
    forged_by_the_key_holder = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {forged_by_the_key_holder}"}
    assert (await client.get("/api/users/me", headers=headers)).status_code == 401
    client.cookies.set("access_token", forged_by_the_key_holder)
    assert (await client.get("/")).status_code == 200
