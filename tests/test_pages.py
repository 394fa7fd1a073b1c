"""The server-rendered pages, used over HTTP with cookies the way a browser uses them."""

import re
from html import escape

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from app.config import Settings
from app.pages.auth import CSRF_COOKIE
from tests.databases import Databases
from tests.helpers import (
    PASSWORD,
    TEST_SECRET,
    Account,
    RunningApp,
    add_account,
    create_post,
    csrf_from,
    load_more_url,
    page_login,
    running,
    submit,
)


async def test_anonymous_visitor_sees_public_pages(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice, title="Public title", content="Public body")
    home = await browser.get("/")
    assert home.status_code == 200
    assert "Public title" in home.text
    assert 'href="/login"' in home.text
    assert "Log out" not in home.text
    detail = await browser.get(f"/posts/{post['id']}")
    assert "Public body" in detail.text
    assert "alice" in detail.text
    assert "/delete" not in detail.text
    assert f"/posts/{post['id']}/edit" not in detail.text
    by_user = await browser.get(f"/users/{alice.id}/posts")
    assert "Posts by alice" in by_user.text
    assert "Public title" in by_user.text
    register_page = await browser.get("/register")
    for name in ("username", "email", "password", "confirm_password", "csrf_token"):
        assert f'name="{name}"' in register_page.text
    login_page = await browser.get("/login")
    assert 'name="email"' in login_page.text
    assert 'name="password"' in login_page.text


@pytest.mark.parametrize(
    ("path", "login_url"),
    [
        ("/posts/new", "/login?next=%2Fposts%2Fnew"),
        ("/account", "/login?next=%2Faccount"),
        ("/posts/1/edit", "/login?next=%2Fposts%2F1%2Fedit"),
    ],
)
async def test_pages_for_users_send_visitors_to_login(
    browser: httpx.AsyncClient, path: str, login_url: str
) -> None:
    response = await browser.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == login_url


async def test_logged_in_user_sees_own_pages(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice, title="Mine", content="My words")
    await page_login(browser, alice.email)
    home = await browser.get("/")
    assert "Log out" in home.text
    assert ">alice<" in home.text
    assert 'href="/posts/new"' in home.text
    detail = await browser.get(f"/posts/{post['id']}")
    assert f'href="/posts/{post["id"]}/edit"' in detail.text
    assert f'action="/posts/{post["id"]}/delete"' in detail.text
    edit = await browser.get(f"/posts/{post['id']}/edit")
    assert 'value="Mine"' in edit.text
    assert "My words" in edit.text
    new = await browser.get("/posts/new")
    assert 'name="title"' in new.text
    account = await browser.get("/account")
    assert 'value="alice"' in account.text
    assert 'value="alice@example.com"' in account.text
    assert (await browser.get("/login")).status_code == 303
    assert (await browser.get("/register")).status_code == 303


async def test_register_login_write_edit_delete_through_the_forms(
    browser: httpx.AsyncClient,
) -> None:
    registered = await submit(
        browser,
        "/register",
        "/register",
        {
            "username": "dora",
            "email": "dora@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    # Registered and logged in at once.
    assert registered.status_code == 303
    assert registered.headers["location"] == "/"
    assert "Welcome, dora!" in (await browser.get("/")).text

    created = await submit(
        browser, "/posts/new", "/posts/new", {"title": "Hello forms", "content": "Body one"}
    )
    assert created.status_code == 303
    post_url = created.headers["location"]
    assert re.fullmatch(r"/posts/\d+", post_url)
    page = await browser.get(post_url)
    assert "Your post is published." in page.text
    assert "Hello forms" in page.text

    edited = await submit(
        browser, f"{post_url}/edit", f"{post_url}/edit", {"title": "Edited", "content": "Body two"}
    )
    assert edited.status_code == 303
    assert edited.headers["location"] == post_url
    page = await browser.get(post_url)
    assert "Edited" in page.text
    assert "Body two" in page.text

    deleted = await browser.post(f"{post_url}/delete", data={"csrf_token": csrf_from(page.text)})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/"
    assert "Your post is deleted." in (await browser.get("/")).text
    assert (await browser.get(post_url)).status_code == 404

    home = await browser.get("/")
    logged_out = await browser.post("/logout", data={"csrf_token": csrf_from(home.text)})
    assert logged_out.status_code == 303
    home = await browser.get("/")
    assert "You are logged out." in home.text
    assert 'href="/login"' in home.text
    assert (await browser.get("/posts/new")).status_code == 303


@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["missing", "empty", "wrong"])
async def test_form_without_valid_csrf_token_is_403_and_writes_nothing(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account, token: str | None
) -> None:
    await page_login(browser, alice.email)
    data = {"title": "Forged", "content": "Forged"}
    if token is not None:
        data["csrf_token"] = token
    response = await browser.post("/posts/new", data=data)
    assert response.status_code == 403
    assert "expired or was sent from another site" in response.text
    assert "<html" in response.text
    assert (await client.get("/api/posts")).json()["posts"] == []


async def test_token_from_another_browser_is_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # An attacker's own valid token does not work with the victim's cookie.
    attacker_token = csrf_from((await client.get("/register")).text)
    await browser.get("/register")
    response = await browser.post(
        "/register",
        data={
            "username": "victim",
            "email": "victim@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
            "csrf_token": attacker_token,
        },
    )
    assert response.status_code == 403
    created = await client.post(
        "/api/users",
        json={"username": "victim", "email": "victim@example.com", "password": PASSWORD},
    )
    assert created.status_code == 201


async def test_api_is_not_subject_to_csrf(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/api/posts", json={"title": "t", "content": "c"}, headers=alice.headers
    )
    assert response.status_code == 201


async def test_other_users_post_cannot_be_edited_or_deleted(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice, title="Alice's")
    await page_login(browser, bob.email)
    edit_page = await browser.get(f"/posts/{post['id']}/edit")
    assert edit_page.status_code == 403
    assert "Only the author can change this post." in edit_page.text
    token = csrf_from((await browser.get("/")).text)
    edit = await browser.post(
        f"/posts/{post['id']}/edit", data={"title": "Bob's", "content": "x", "csrf_token": token}
    )
    assert edit.status_code == 403
    delete = await browser.post(f"/posts/{post['id']}/delete", data={"csrf_token": token})
    assert delete.status_code == 403
    assert (await client.get(f"/api/posts/{post['id']}")).json()["title"] == "Alice's"


async def test_missing_post_gets_a_404_page_in_the_layout(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    response = await browser.get("/posts/999")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert "Post not found." in response.text
    assert 'class="site-header"' in response.text
    await page_login(browser, alice.email)
    for path in ("/posts/999/edit", "/users/999/posts", "/no/such/page"):
        assert (await browser.get(path)).status_code == 404
    token = csrf_from((await browser.get("/")).text)
    assert (await browser.post("/posts/999/delete", data={"csrf_token": token})).status_code == 404


async def test_api_errors_stay_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/no-such-route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_bad_cursor_is_a_page_not_a_500(browser: httpx.AsyncClient) -> None:
    for query in ("cursor=abc", "cursor=" + "x" * 1000, "fragment=maybe"):
        response = await browser.get(f"/?{query}")
        assert response.status_code == 422
        assert "<html" in response.text


async def test_script_in_a_title_is_escaped_everywhere(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    evil = "<script>alert(1)</script>"
    post = await create_post(client, alice, title=evil, content=evil)
    await page_login(browser, alice.email)
    for path in (
        "/",
        "/?fragment=1",
        f"/posts/{post['id']}",
        f"/posts/{post['id']}/edit",
        f"/users/{alice.id}/posts",
    ):
        html = (await browser.get(path)).text
        assert evil not in html, path
        assert escape(evil) in html, path


@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/posts/new", "/posts/new"),
    ],
)
async def test_login_follows_next_only_to_local_paths(
    browser: httpx.AsyncClient, alice: Account, next_path: str, expected: str
) -> None:
    response = await page_login(browser, alice.email, next_path=next_path)
    assert response.headers["location"] == expected


async def test_login_form_carries_next_from_the_redirect(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    redirect = await browser.get("/account")
    login_page = await browser.get(redirect.headers["location"])
    assert 'name="next" value="/account"' in login_page.text
    evil_page = await browser.get("/login", params={"next": "//evil.example"})
    assert 'name="next" value="/"' in evil_page.text


async def test_wrong_password_re_renders_login_with_email_kept(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    response = await submit(
        browser, "/login", "/login", {"email": alice.email, "password": "wrong password"}
    )
    assert response.status_code == 400
    assert "Incorrect email or password." in response.text
    assert f'value="{alice.email}"' in response.text
    assert "access_token" not in response.headers.get("set-cookie", "")


async def test_page_two_via_the_link_and_no_link_on_the_last_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(12):
        await create_post(client, alice, title=f"Post number {number:02d}")
    first = (await browser.get("/")).text
    titles = re.findall(r"Post number (\d\d)", first)
    assert titles == [f"{n:02d}" for n in range(11, 1, -1)]
    next_url = load_more_url(first)
    assert next_url.startswith("/?cursor=")
    second = (await browser.get(next_url)).text
    assert re.findall(r"Post number (\d\d)", second) == ["01", "00"]
    assert "Load more" not in second
    fragment = (await browser.get(next_url + "&fragment=1")).text
    assert "<html" not in fragment
    assert re.findall(r"Post number (\d\d)", fragment) == ["01", "00"]
    assert "Load more" not in fragment
    by_user = (await browser.get(f"/users/{alice.id}/posts")).text
    assert "12 posts" in by_user
    assert load_more_url(by_user).startswith(f"/users/{alice.id}/posts?cursor=")


async def test_duplicate_username_re_renders_registration_with_values_kept(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    response = await submit(
        browser,
        "/register",
        "/register",
        {
            "username": "alice",
            "email": "new-alice@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "That username is already taken" in response.text
    assert 'value="alice"' in response.text
    assert 'value="new-alice@example.com"' in response.text
    assert PASSWORD not in response.text


async def test_invalid_registration_shows_messages_beside_fields(
    browser: httpx.AsyncClient,
) -> None:
    response = await submit(
        browser,
        "/register",
        "/register",
        {"username": "", "email": "nope", "password": "short", "confirm_password": "other"},
    )
    assert response.status_code == 422
    assert 'id="username-note">Please fill in this field.' in response.text
    assert 'id="email-note">Enter a valid email address' in response.text
    assert (
        'id="password-note">Use at least 8 characters (spaces at either end do not count).'
        in response.text
    )
    assert 'id="confirm_password-note">The two passwords do not match.' in response.text


async def test_invalid_post_form_keeps_what_was_typed(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    response = await submit(
        browser, "/posts/new", "/posts/new", {"title": "  ", "content": "Keep this text"}
    )
    assert response.status_code == 422
    assert 'id="title-note">Please fill in this field.' in response.text
    assert "Keep this text" in response.text
    too_long = await submit(
        browser, "/posts/new", "/posts/new", {"title": "t" * 101, "content": "c"}
    )
    assert too_long.status_code == 422
    assert "Use at most 100 characters." in too_long.text
    assert (await client.get("/api/posts")).json()["posts"] == []


async def test_a_cover_over_the_limit_comes_back_beside_its_field_with_the_text_kept(
    settings: Settings,
) -> None:
    limited = settings.model_copy(update={"max_upload_bytes": 200_000})
    async with running(limited) as live, live.client() as browser:
        await add_account(live, "alice")
        await page_login(browser, "alice@example.com")
        form = await browser.get("/posts/new")
        response = await browser.post(
            "/posts/new",
            data={
                "title": "My trip",
                "content": "Keep every word of this",
                "csrf_token": csrf_from(form.text),
            },
            files={"image": ("big.jpg", b"\xff" * 500_000, "image/jpeg")},
        )
        assert response.status_code == 422
        assert "My trip" in response.text
        assert "Keep every word of this" in response.text
        assert 'id="image-note">The file is too large. The limit is 195 KB.' in response.text
        assert (await browser.get("/api/posts")).json()["posts"] == []
        assert [stored async for stored in live.storage.scan()] == []


async def test_error_pages_show_who_is_logged_in(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    for path in ("/no/such/page", "/posts/999"):
        response = await browser.get(path)
        assert response.status_code == 404
        assert "alice" in response.text
        assert "Log in" not in response.text


async def test_account_form_updates_and_reports_conflicts(
    browser: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await page_login(browser, alice.email)
    taken = await submit(browser, "/account", "/account", {"username": "bob", "email": alice.email})
    assert taken.status_code == 422
    assert "That username is already taken" in taken.text
    assert 'value="bob"' in taken.text
    updated = await submit(
        browser, "/account", "/account", {"username": "alicia", "email": alice.email}
    )
    assert updated.status_code == 303
    page = await browser.get("/account")
    assert "Your account is updated." in page.text
    assert 'value="alicia"' in page.text
    assert "Your account is updated." not in (await browser.get("/account")).text


async def test_login_cookie_is_httponly_and_lax(browser: httpx.AsyncClient, alice: Account) -> None:
    response = await page_login(browser, alice.email)
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("access_token=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie


async def test_production_cookies_are_secure(settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production"})
    assert production.secret_key is not None
    assert production.secret_key.get_secret_value() == TEST_SECRET
    async with running(production) as live, live.client() as client:
        response = await client.get("/login")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("csrf=")
    assert "Secure" in cookie


@pytest.mark.parametrize("path", ["/", "/api/posts", "/static/css/site.css", "/nope"])
async def test_security_headers_on_every_response(browser: httpx.AsyncClient, path: str) -> None:
    headers = (await browser.get(path)).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    policy = headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "camera=()" in headers["permissions-policy"]
    # Development is plain HTTP: no HSTS.
    assert "strict-transport-security" not in headers


async def test_the_relaxed_policy_is_for_the_docs_pages_alone(browser: httpx.AsyncClient) -> None:
    docs = await browser.get("/docs")
    assert docs.status_code == 200
    assert "'unsafe-inline'" in docs.headers["content-security-policy"]
    for path in ("/docs-and-more", "/docsx", "/redoc/../posts/new"):
        response = await browser.get(path)
        assert "'unsafe-inline'" not in response.headers["content-security-policy"], path


async def test_production_sends_hsts_and_can_hide_the_docs(settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production", "docs_enabled": False})
    async with running(production) as live, live.client() as client:
        home = await client.get("/")
        docs = [await client.get(path) for path in ("/docs", "/redoc", "/openapi.json")]
    assert home.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert [response.status_code for response in docs] == [404, 404, 404]


async def test_pages_have_no_inline_scripts(browser: httpx.AsyncClient) -> None:
    html = (await browser.get("/")).text
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/site.js" defer>']
    assert " onclick=" not in html


async def test_server_error_page_shows_no_traceback(
    settings: Settings, databases: Databases
) -> None:
    # A database without the tables: every query fails.
    broken = settings.model_copy(update={"database_url": databases.empty()})
    async with running(broken) as live, live.client() as client:
        page = await client.get("/")
        api = await client.get("/api/posts")
    assert page.status_code == 500
    assert "Something went wrong" in page.text
    assert "Traceback" not in page.text
    assert "sqlite" not in page.text.lower()
    assert "postgres" not in page.text.lower()
    assert api.status_code == 500
    assert api.json() == {
        "detail": "Something went wrong on our side. Please try again in a moment."
    }


async def test_form_posted_after_logout_returns_to_its_page_after_login(
    browser: httpx.AsyncClient, server: RunningApp
) -> None:
    token = csrf_from((await browser.get("/register")).text)
    data = {"csrf_token": token, "title": "t", "content": "c"}
    same_site = await browser.post(
        "/posts/new", data=data, headers={"Referer": f"{server.url}/posts/new"}
    )
    assert same_site.status_code == 303
    assert same_site.headers["location"] == "/login?next=%2Fposts%2Fnew"
    elsewhere = await browser.post(
        "/posts/new", data=data, headers={"Referer": "https://evil.example/posts/new"}
    )
    assert elsewhere.headers["location"] == "/login?next=%2F"


async def test_pages_without_a_form_set_no_cookie(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # Nothing to sign on a list of posts for someone logged out, so a shared
    # cache may keep the page; a form page hands out the CSRF cookie.
    for _ in range(11):
        await create_post(client, alice)
    second_page = load_more_url((await client.get("/")).text)
    for path in ("/", f"/users/{alice.id}/posts", second_page):
        response = await client.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
    form_page = await client.get("/register")
    assert form_page.headers["set-cookie"].startswith(f"{CSRF_COOKIE}=")
    assert csrf_from(form_page.text)


async def test_only_a_flash_message_signed_by_the_site_is_shown(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    landed = await page_login(browser, alice.email)
    genuine = landed.cookies["flash"]
    assert "Welcome back, alice!" in (await browser.get("/")).text
    forged = URLSafeSerializer("another key", salt="flash").dumps(
        {"message": "Your password has expired: send it to evil.example", "category": "error"}
    )
    for cookie in (forged, genuine[:-3] + "AAA", "plain text"):
        browser.cookies.set("flash", cookie)
        page = await browser.get("/")
        assert page.status_code == 200
        assert "evil.example" not in page.text
        assert "Welcome back" not in page.text
    browser.cookies.set("flash", genuine)
    assert "Welcome back, alice!" in (await browser.get("/")).text
