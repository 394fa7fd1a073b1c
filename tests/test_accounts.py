"""Keeping an account safe: changing and resetting passwords, ending logins,
verified addresses, deleting the account. Mail is read from the real SMTP
server the tests run (tests/mailserver.py)."""

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import time_machine
from sqlmodel import select

from app import ratelimits
from app.config import Settings
from app.models import PasswordResetToken, Post, User, utcnow
from app.security import HashPool, PasswordChecksBusy
from tests import pictures
from tests.helpers import (
    PASSWORD,
    Account,
    RunningApp,
    create_post,
    csrf_from,
    page_login,
    running,
    sign_up,
    stored_files,
    submit,
)
from tests.mailserver import Inbox, free_port, text_body

NEW_PASSWORD = "a brand new passphrase"


def token_of(link: str) -> str:
    (token,) = parse_qs(urlsplit(link).query)["token"]
    return token


async def can_use(client: httpx.AsyncClient, account: Account) -> bool:
    response = await client.get("/api/users/me", headers=account.headers)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def logged_in_page(client: httpx.AsyncClient) -> bool:
    """Whether the browser's login cookie still opens the account page."""
    response = await client.get("/account")
    return response.status_code == 200


async def api_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/users/token", data={"username": email, "password": password})


# --- changing the password ---------------------------------------------------------------


async def test_a_new_password_ends_every_other_login(
    server: RunningApp, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    alice = await sign_up(client, "alice")
    await page_login(browser, alice.email)
    async with server.client() as other_browser:
        await page_login(other_browser, alice.email)
        assert await logged_in_page(other_browser)

        changed = await submit(
            browser,
            "/account/password",
            "/account/password",
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
        )
        assert changed.status_code == 303
        assert changed.headers["location"] == "/account"

        # This browser stays logged in; the other one and the old API token do not.
        assert await logged_in_page(browser)
        assert not await logged_in_page(other_browser)
        assert not await can_use(client, alice)
    assert (await api_login(client, alice.email, PASSWORD)).status_code == 401
    assert (await api_login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_the_api_changes_a_password_only_with_the_current_one(
    client: httpx.AsyncClient, alice: Account
) -> None:
    wrong = await client.put(
        "/api/users/me/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == "That is not your current password."
    assert await can_use(client, alice)

    short = await client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "        x"},
        headers=alice.headers,
    )
    assert short.status_code == 422

    changed = await client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 204
    assert not await can_use(client, alice)
    assert (await api_login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_the_password_form_shows_its_mistakes_beside_the_fields(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    refused = await submit(
        browser,
        "/account/password",
        "/account/password",
        {"current_password": "wrong one", "new_password": NEW_PASSWORD, "confirm_password": "typo"},
    )
    assert refused.status_code == 422
    assert 'id="confirm_password-note">The two passwords do not match.' in refused.text
    refused = await submit(
        browser,
        "/account/password",
        "/account/password",
        {
            "current_password": "wrong one",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert refused.status_code == 422
    assert 'id="current_password-note">That is not your current password.' in refused.text
    assert await logged_in_page(browser)


async def test_log_out_everywhere_ends_every_login(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    done = await submit(browser, "/account", "/account/logout-everywhere", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert not await logged_in_page(browser)
    assert not await can_use(client, alice)
    # Logging in again works.
    await page_login(browser, alice.email)
    assert await logged_in_page(browser)


async def test_a_csrf_token_from_before_the_login_is_refused_after_it(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    planted = csrf_from((await browser.get("/login")).text)
    await page_login(browser, alice.email)
    stale = await browser.post("/account/logout-everywhere", data={"csrf_token": planted})
    assert stale.status_code == 403
    assert await logged_in_page(browser)


# --- resetting a forgotten password ------------------------------------------------------


async def forgot(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await submit(client, "/forgot-password", "/forgot-password", {"email": email})


async def reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await submit(
        client,
        f"/reset-password?token={token}",
        "/reset-password",
        {"token": token, "new_password": password, "confirm_password": password},
    )


async def test_the_answer_is_the_same_with_or_without_an_account(
    browser: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    known = await forgot(browser, alice.email)
    unknown = await forgot(browser, "nobody@example.com")
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"] == "/login"
    shown = [(await browser.get("/login")).text for _ in range(1)]
    assert "a link to reset its password" in shown[0]
    assert len(inbox.to(alice.email)) == 1
    assert inbox.to("nobody@example.com") == []
    api = await browser.post("/api/password-recovery", json={"email": "nobody@example.com"})
    assert api.status_code == 202


async def test_a_reset_link_works_once_and_logs_out_everywhere(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    await forgot(browser, alice.email)
    message = inbox.to(alice.email)[-1]
    assert message["Subject"] == "Reset your password"
    assert message.get_body(preferencelist=("html",)) is not None
    link = inbox.last_link(alice.email)
    assert link.startswith("http://testserver/reset-password?token=")

    form = await browser.get(urlsplit(link).path + "?" + urlsplit(link).query)
    assert form.status_code == 200
    assert "Choose a new password" in form.text
    done = await reset(browser, token_of(link), NEW_PASSWORD)
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert not await can_use(client, alice)
    assert (await api_login(client, alice.email, NEW_PASSWORD)).status_code == 200

    again = await reset(browser, token_of(link), "yet another passphrase")
    assert again.status_code == 422
    assert "This password reset link is not valid" in again.text
    assert (await api_login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_a_reset_link_dies_after_60_minutes(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    asked = await client.post("/api/password-recovery", json={"email": alice.email})
    assert asked.status_code == 202
    token = token_of(inbox.last_link(alice.email))
    async with server.sessionmaker() as session:
        row = (await session.exec(select(PasswordResetToken))).one()
    # Only a hash of the token is kept.
    assert token not in row.token_hash
    with time_machine.travel(row.expires_at + timedelta(seconds=1)):
        late = await client.post(
            "/api/password-reset", json={"token": token, "new_password": NEW_PASSWORD}
        )
    assert late.status_code == 422
    assert "expired" in late.json()["detail"]
    with time_machine.travel(row.expires_at - timedelta(seconds=5)):
        in_time = await client.post(
            "/api/password-reset", json={"token": token, "new_password": NEW_PASSWORD}
        )
    assert in_time.status_code == 204


async def test_a_new_password_kills_the_reset_links_sent_before(
    client: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    await client.post("/api/password-recovery", json={"email": alice.email})
    token = token_of(inbox.last_link(alice.email))
    changed = await client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 204
    used = await client.post(
        "/api/password-reset", json={"token": token, "new_password": "someone else's"}
    )
    assert used.status_code == 422


@pytest.mark.parametrize("token", ["", "x" * 101, "a\\u0000b", "\\ud800", "not-a-token"])
async def test_bad_reset_tokens_are_refused_clearly(client: httpx.AsyncClient, token: str) -> None:
    # Written as JSON text, so that a lone surrogate can be sent at all.
    body = f'{{"token": "{token}", "new_password": "{NEW_PASSWORD}"}}'
    response = await client.post(
        "/api/password-reset", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


# --- verified addresses ----------------------------------------------------------------


async def test_registering_mails_a_link_that_verifies_the_address(
    browser: httpx.AsyncClient, inbox: Inbox
) -> None:
    registered = await submit(
        browser,
        "/register",
        "/register",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    # Logged in straight away.
    assert registered.status_code == 303
    account = await browser.get("/account")
    assert account.status_code == 200
    assert "(not confirmed yet)" in account.text

    link = inbox.last_link("carol@example.com")
    assert "carol" in text_body(inbox.to("carol@example.com")[-1])
    confirmed = await browser.get(urlsplit(link).path + "?" + urlsplit(link).query)
    assert confirmed.status_code == 303
    assert "(confirmed)" in (await browser.get("/account")).text


async def test_the_api_verifies_and_sends_the_link_again(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    carol = await sign_up(client, "carol")
    me = (await client.get("/api/users/me", headers=carol.headers)).json()
    assert me["email_verified"] is False
    again = await client.post("/api/users/me/verification-email", headers=carol.headers)
    assert again.status_code == 202
    assert len(inbox.to(carol.email)) == 2
    token = token_of(inbox.last_link(carol.email))
    assert (await client.post("/api/users/verify-email", json={"token": token})).status_code == 204
    me = (await client.get("/api/users/me", headers=carol.headers)).json()
    assert me["email_verified"] is True
    forged = await client.post("/api/users/verify-email", json={"token": token[:-2] + "xx"})
    assert forged.status_code == 422


async def test_a_new_email_needs_the_password_and_a_new_verification(
    client: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    url = f"/api/users/{alice.id}"
    stolen = await client.patch(url, json={"email": "thief@example.com"}, headers=alice.headers)
    assert stolen.status_code == 422
    assert stolen.json()["detail"] == "Enter your current password to confirm this change."
    wrong = await client.patch(
        url,
        json={"email": "thief@example.com", "current_password": "guess"},
        headers=alice.headers,
    )
    assert wrong.status_code == 422
    # A new username needs no password.
    renamed = await client.patch(url, json={"username": "alicia"}, headers=alice.headers)
    assert renamed.status_code == 200

    moved = await client.patch(
        url,
        json={"email": "alice@new.example", "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert moved.status_code == 200
    assert moved.json()["email"] == "alice@new.example"
    assert moved.json()["email_verified"] is False
    link = inbox.last_link("alice@new.example")
    assert (await client.get(urlsplit(link).path + "?" + urlsplit(link).query)).status_code == 303
    me = (await client.get("/api/users/me", headers=alice.headers)).json()
    assert me["email_verified"] is True


async def test_publishing_can_wait_for_a_verified_address(settings: Settings, inbox: Inbox) -> None:
    strict = settings.model_copy(update={"require_verified_email": True})
    async with running(strict) as app, app.client() as client, app.client() as browser:
        await _publishing_waits_for_verification(client, browser, inbox)


async def _publishing_waits_for_verification(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, inbox: Inbox
) -> None:
    carol = await sign_up(client, "carol")
    refused = await client.post(
        "/api/posts", json={"title": "Hi", "content": "There"}, headers=carol.headers
    )
    assert refused.status_code == 403
    assert "Confirm your email address" in refused.json()["detail"]
    await page_login(browser, carol.email)
    form = await browser.get("/posts/new")
    assert form.status_code == 403
    assert "Confirm your email address" in form.text

    token = token_of(inbox.last_link(carol.email))
    await client.post("/api/users/verify-email", json={"token": token})
    await create_post(client, carol)
    assert (await browser.get("/posts/new")).status_code == 200


def mail_files(directory: Path) -> list[str]:
    return [path.read_text() for path in directory.glob("*.eml")]


async def test_without_smtp_mail_is_written_to_files(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="app.mail")
    no_smtp = settings.model_copy(update={"smtp_host": None})
    async with running(no_smtp) as app, app.client() as client:
        carol = await sign_up(client, "carol")
    (written,) = mail_files(no_smtp.mail_dir)
    assert f"To: {carol.email}" in written
    assert "/verify-email?token=" in caplog.text


async def test_a_failed_send_keeps_the_users_change(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on this port.
    offline = settings.model_copy(update={"smtp_port": free_port()})
    async with running(offline) as app, app.client() as client:
        carol = await sign_up(client, "carol")
        assert await can_use(client, carol)
    assert "Could not send mail to carol@example.com" in caplog.text


# --- deleting the account ------------------------------------------------------------


async def test_deleting_the_account_leaves_no_row_and_no_file(
    server: RunningApp, client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account
) -> None:
    picture = {"file": ("me.jpg", pictures.jpeg(), "image/jpeg")}
    await client.patch(f"/api/users/{alice.id}/picture", files=picture, headers=alice.headers)
    post = await create_post(client, alice)
    await client.patch(f"/api/posts/{post['id']}/image", files=picture, headers=alice.headers)
    assert len(await stored_files(server.storage)) == 2
    await page_login(browser, alice.email)

    refused = await submit(browser, "/account", "/account/delete", {"password": "wrong"})
    assert refused.status_code == 422
    assert 'id="password-note">That is not your current password.' in refused.text
    deleted = await submit(browser, "/account", "/account/delete", {"password": PASSWORD})
    assert deleted.status_code == 303
    assert not await logged_in_page(browser)

    async with server.sessionmaker() as session:
        assert (await session.exec(select(User))).all() == []
        assert (await session.exec(select(Post))).all() == []
    assert await stored_files(server.storage) == set()


async def test_the_api_deletes_an_account_only_with_its_password(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    url = f"/api/users/{alice.id}"
    assert (await client.request("DELETE", url, headers=alice.headers)).status_code == 422
    wrong = await client.request("DELETE", url, json={"password": "no"}, headers=alice.headers)
    assert wrong.status_code == 422
    done = await client.request("DELETE", url, json={"password": PASSWORD}, headers=alice.headers)
    assert done.status_code == 204
    assert (await client.get(url)).status_code == 404


# --- Argon2's own threads ----------------------------------------------------------------


async def test_password_checks_beyond_the_queue_are_refused_at_once() -> None:
    pool = HashPool(threads=1)
    gate = threading.Event()
    try:
        waiting = [asyncio.create_task(pool.run(gate.wait, 10)) for _ in range(pool.limit)]
        await asyncio.sleep(0.05)
        with pytest.raises(PasswordChecksBusy) as refused:
            await pool.run(gate.wait, 10)
        assert refused.value.status_code == 503
        assert refused.value.retry_after
        gate.set()
        assert all(await asyncio.gather(*waiting))
        # Room again once they are done.
        assert await pool.run(len, "hash") == 4
    finally:
        gate.set()
        pool.executor.shutdown()


# --- names that look alike -----------------------------------------------------------------


async def register_name(client: httpx.AsyncClient, username: str, n: int) -> httpx.Response:
    body = {"username": username, "email": f"person{n}@example.com", "password": PASSWORD}
    return await client.post("/api/users", json=body)


async def test_look_alike_usernames_are_refused(client: httpx.AsyncClient) -> None:
    assert (await register_name(client, "ada", 0)).status_code == 201
    for n, look_alike in enumerate(
        [
            "ADA",
            "Ada",
            "\u0430da",  # a Cyrillic a
            "\uff41\uff44\uff41",  # full-width letters
            "\u0251da",  # a Latin alpha
        ],
        start=1,
    ):
        answer = await register_name(client, look_alike, n)
        assert answer.status_code == 409, look_alike
        assert answer.json()["detail"] == (
            "That username is already taken (or one that looks the same)."
        )


@pytest.mark.parametrize(
    "name",
    [
        "ada\u200b",  # zero-width space
        "a\u200dda",  # zero-width joiner
        "ad\u202ea",  # right-to-left override
        "ada\u00a0x",  # no-break space
        "a\u2028da",  # line separator
        "ad\ue000a",  # private use
        "ada\u3164",  # Hangul filler: a letter drawn as nothing
        "\u2800\u2800",  # blank Braille patterns
        "\u0301",  # a combining accent alone
        "___",  # no letter or digit
    ],
)
async def test_invisible_characters_are_refused_in_usernames(
    client: httpx.AsyncClient, name: str
) -> None:
    answer = await register_name(client, name, 0)
    assert answer.status_code == 422
    assert "A username " in answer.json()["detail"][0]["msg"]


async def test_a_name_is_stored_as_people_read_it(client: httpx.AsyncClient) -> None:
    answer = await register_name(client, "\uff4e\uff45\uff57\uff42\uff49\uff45", 0)
    assert answer.status_code == 201
    assert answer.json()["username"] == "newbie"
    # A ligature that NFKC makes longer than a name may be.
    too_long = await register_name(client, "\ufdfa" * 3, 1)
    assert too_long.status_code == 422


async def test_renaming_to_a_look_alike_is_refused(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    taken = await client.patch(
        f"/api/users/{bob.id}", json={"username": "AL\u0406CE"}, headers=bob.headers
    )
    assert taken.status_code == 409
    # Your own name in other letters is yours to take.
    mine = await client.patch(
        f"/api/users/{alice.id}", json={"username": "Alice"}, headers=alice.headers
    )
    assert mine.status_code == 200
    assert mine.json()["username"] == "Alice"


# --- passwords people would guess --------------------------------------------------------


@pytest.mark.parametrize("password", ["password123", "  QWERTYUIOP ", "iloveyou1", "12345678"])
async def test_the_most_common_passwords_are_refused(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, password: str
) -> None:
    body = {"username": "carol", "email": "carol@example.com", "password": password}
    answer = await client.post("/api/users", json=body)
    assert answer.status_code == 422
    assert "one of the most common" in answer.text
    page = await submit(
        browser,
        "/register",
        "/register",
        {**body, "confirm_password": password},
    )
    assert page.status_code == 422
    assert 'id="password-note">This password is one of the most common ones' in page.text


async def test_a_password_cannot_be_the_name_or_address(client: httpx.AsyncClient) -> None:
    for password in ("carolinedoe", "CarolineDoe", "carol.doe@example.com", "carol.doe"):
        body = {"username": "CarolineDoe", "email": "carol.doe@example.com", "password": password}
        answer = await client.post("/api/users", json=body)
        assert answer.status_code == 422, password
        assert "cannot be your username or email address" in answer.text


async def test_a_new_password_is_held_to_the_same_rules(
    client: httpx.AsyncClient, alice: Account
) -> None:
    common = await client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "password1"},
        headers=alice.headers,
    )
    assert common.status_code == 422
    assert await can_use(client, alice)


async def test_a_new_email_kills_the_reset_links_sent_to_the_old_one(
    client: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    await client.post("/api/password-recovery", json={"email": alice.email})
    token = token_of(inbox.last_link(alice.email))
    moved = await client.patch(
        f"/api/users/{alice.id}",
        json={"email": "alice@new.example", "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert moved.status_code == 200
    used = await client.post(
        "/api/password-reset", json={"token": token, "new_password": "taken over now"}
    )
    assert used.status_code == 422


async def test_log_out_everywhere_kills_reset_links_too(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    await client.post("/api/password-recovery", json={"email": alice.email})
    token = token_of(inbox.last_link(alice.email))
    await page_login(browser, alice.email)
    await submit(browser, "/account", "/account/logout-everywhere", {})
    used = await client.post(
        "/api/password-reset", json={"token": token, "new_password": "taken over now"}
    )
    assert used.status_code == 422


async def test_a_stolen_login_cannot_guess_the_current_password_freely(
    client: httpx.AsyncClient, alice: Account
) -> None:
    with time_machine.travel(utcnow(), tick=False):
        answers = []
        for n in range(ratelimits.PASSWORD_CHECK.free + 3):
            answer = await client.put(
                "/api/users/me/password",
                json={"current_password": f"guess number {n}", "new_password": NEW_PASSWORD},
                headers=alice.headers,
            )
            answers.append(answer.status_code)
        refused = await client.request(
            "DELETE", f"/api/users/{alice.id}", json={"password": PASSWORD}, headers=alice.headers
        )
    assert answers[: ratelimits.PASSWORD_CHECK.free + 1] == [422] * (
        ratelimits.PASSWORD_CHECK.free + 1
    )
    assert set(answers[ratelimits.PASSWORD_CHECK.free + 1 :]) == {429}
    # Even the right password waits (and the account stays).
    assert refused.status_code == 429
    assert await can_use(client, alice)


async def test_a_refused_change_keeps_the_reset_links(
    client: httpx.AsyncClient, alice: Account, bob: Account, inbox: Inbox
) -> None:
    await client.post("/api/password-recovery", json={"email": alice.email})
    token = token_of(inbox.last_link(alice.email))
    taken = await client.patch(
        f"/api/users/{alice.id}",
        json={"email": bob.email, "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert taken.status_code == 409
    used = await client.post(
        "/api/password-reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert used.status_code == 204


async def test_a_new_password_cannot_be_the_name_either(
    client: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    for password in ("alice@example.com", "  ALICE@example.com "):
        answer = await client.put(
            "/api/users/me/password",
            json={"current_password": PASSWORD, "new_password": password},
            headers=alice.headers,
        )
        assert answer.status_code == 422
        assert answer.json()["detail"] == "Your password cannot be your username or email address."
    await client.post("/api/password-recovery", json={"email": alice.email})
    token = token_of(inbox.last_link(alice.email))
    reset = await client.post(
        "/api/password-reset", json={"token": token, "new_password": "alice@example.com"}
    )
    assert reset.status_code == 422


async def test_verification_mail_is_sent_a_few_times_at_most(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    carol = await sign_up(client, "carol")
    with time_machine.travel(utcnow(), tick=False):
        answers = [
            (
                await client.post("/api/users/me/verification-email", headers=carol.headers)
            ).status_code
            for _ in range(ratelimits.VERIFY_MAIL.free + 3)
        ]
    assert answers.count(202) == ratelimits.VERIFY_MAIL.free + 1
    assert answers[-1] == 429
    # The one sent at sign-up and the ones let through.
    assert len(inbox.to(carol.email)) == 1 + ratelimits.VERIFY_MAIL.free + 1


async def test_the_password_form_says_when_to_try_again(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    form = {
        "current_password": "wrong one",
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
    }
    with time_machine.travel(utcnow(), tick=False):
        for _ in range(ratelimits.PASSWORD_CHECK.free + 1):
            await submit(browser, "/account/password", "/account/password", form)
        refused = await submit(browser, "/account/password", "/account/password", form)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "Change your password" in refused.text
    assert "Too many attempts" in refused.text
