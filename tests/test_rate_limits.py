"""Rate limits: failed logins, reset requests and registrations, counted in
the database so that every worker sees the same counts."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import time_machine
from sqlmodel import select

from app.config import Settings
from app.models import RateLimit, utcnow
from app.ratelimits import LOGIN_ACCOUNT, LOGIN_ADDRESS, REGISTER_ADDRESS, RESET_EMAIL
from tests.helpers import PASSWORD, Account, RunningApp, running, serve, submit
from tests.mailserver import Inbox


@asynccontextmanager
async def client_from(server: RunningApp, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client the app sees coming from `address`."""
    transport = httpx.ASGITransport(app=server.app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=server.url) as client:
        yield client


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/users/token", data={"username": email, "password": password})


async def test_failed_logins_to_one_account_are_slowed_down_from_anywhere(
    server: RunningApp, alice: Account
) -> None:
    with time_machine.travel(utcnow(), tick=False) as clock:
        # The free attempts, each from another address: the account counts them all.
        for n in range(LOGIN_ACCOUNT.free + 1):
            async with client_from(server, f"10.0.0.{n + 1}") as client:
                assert (await log_in(client, alice.email, "wrong guess")).status_code == 401
        async with client_from(server, "10.0.1.1") as client:
            refused = await log_in(client, alice.email, PASSWORD)
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
            assert refused.json()["detail"] == (
                "Too many attempts. Please wait 1 seconds before trying again."
            )
            # A refused attempt counts nowhere: the wait stays as it was.
            assert (await log_in(client, alice.email, PASSWORD)).headers["Retry-After"] == "1"
            clock.shift(timedelta(seconds=1))
            # The next failure doubles the wait.
            assert (await log_in(client, alice.email, "wrong again")).status_code == 401
            assert (await log_in(client, alice.email, PASSWORD)).headers["Retry-After"] == "2"
            clock.shift(timedelta(seconds=2))
            # The owner gets in once the wait is over, which clears the count.
            assert (await log_in(client, alice.email, PASSWORD)).status_code == 200
            assert (await log_in(client, alice.email, "typo")).status_code == 401
            assert (await log_in(client, alice.email, PASSWORD)).status_code == 200


async def test_a_burst_of_guesses_cannot_pass_together(server: RunningApp, alice: Account) -> None:
    """Sent at the same moment, from as many addresses: each attempt is
    counted before its password is checked, so only the free ones and the
    one that starts the wait are checked."""

    async def guess(n: int) -> int:
        async with client_from(server, f"10.1.0.{n}") as client:
            return (await log_in(client, alice.email, f"guess {n}")).status_code

    with time_machine.travel(utcnow(), tick=False):
        answers = await asyncio.gather(*(guess(n) for n in range(16)))
    assert answers.count(401) == LOGIN_ACCOUNT.free + 1
    assert answers.count(429) == 16 - LOGIN_ACCOUNT.free - 1


async def test_failed_logins_from_one_address_are_slowed_down_for_every_account(
    server: RunningApp, alice: Account
) -> None:
    with time_machine.travel(utcnow(), tick=False):
        async with client_from(server, "192.0.2.7") as client:
            for n in range(LOGIN_ADDRESS.free + 1):
                answer = await log_in(client, f"guess{n}@example.com", "password1")
                assert answer.status_code == 401
            refused = await log_in(client, alice.email, PASSWORD)
            assert refused.status_code == 429
        # Another client is not held up.
        async with client_from(server, "192.0.2.8") as other:
            assert (await log_in(other, alice.email, PASSWORD)).status_code == 200


async def test_the_login_page_says_why_it_refuses(server: RunningApp, alice: Account) -> None:
    with time_machine.travel(utcnow(), tick=False):
        async with client_from(server, "198.51.100.1") as browser:
            for _ in range(LOGIN_ACCOUNT.free + 1):
                wrong = await submit(
                    browser, "/login", "/login", {"email": alice.email, "password": "nope nope"}
                )
                assert wrong.status_code == 400
            refused = await submit(
                browser, "/login", "/login", {"email": alice.email, "password": PASSWORD}
            )
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "Too many attempts. Please wait 1 seconds" in refused.text


async def test_two_workers_share_the_counts(settings: Settings, alice: Account) -> None:
    """Two servers on one database, as two uvicorn workers or two machines are."""
    async with (
        serve(settings) as first,
        serve(settings) as second,
        first.client() as one,
        second.client() as two,
    ):
        with time_machine.travel(utcnow(), tick=False):
            for n in range(LOGIN_ACCOUNT.free + 1):
                client = one if n % 2 else two
                assert (await log_in(client, alice.email, "wrong")).status_code == 401
            for client in (one, two):
                refused = await log_in(client, alice.email, PASSWORD)
                assert refused.status_code == 429
                assert refused.headers["Retry-After"] == "1"
    async with running(settings) as app, app.sessionmaker() as session:
        rows = (await session.exec(select(RateLimit))).all()
    # Stored hashed: no address or email in clear.
    assert all(alice.email not in row.key for row in rows)


async def test_reset_requests_are_limited_per_address(
    client: httpx.AsyncClient, alice: Account, inbox: Inbox
) -> None:
    with time_machine.travel(utcnow(), tick=False):
        for _ in range(RESET_EMAIL.free + 1):
            asked = await client.post("/api/password-recovery", json={"email": alice.email})
            assert asked.status_code == 202
        refused = await client.post("/api/password-recovery", json={"email": alice.email})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(inbox.to(alice.email)) == RESET_EMAIL.free + 1


async def test_registrations_from_one_client_are_limited(client: httpx.AsyncClient) -> None:
    with time_machine.travel(utcnow(), tick=False):
        for n in range(REGISTER_ADDRESS.free + 1):
            # Taken addresses count as much as new accounts.
            email = "same@example.com"
            body = {"username": f"user{n}", "email": email, "password": PASSWORD}
            answer = await client.post("/api/users", json=body)
            assert answer.status_code == (201 if n == 0 else 409)
        refused = await client.post(
            "/api/users",
            json={"username": "late", "email": "late@example.com", "password": PASSWORD},
        )
    assert refused.status_code == 429


async def test_a_locked_account_is_freed_by_a_password_reset(
    server: RunningApp, alice: Account, inbox: Inbox
) -> None:
    new_password = "my fresh passphrase"
    with time_machine.travel(utcnow(), tick=False) as clock:
        async with client_from(server, "203.0.113.9") as attacker:
            # Each guess once the last wait is over: the waits grow to minutes.
            for _ in range(LOGIN_ACCOUNT.free + 8):
                clock.shift(timedelta(minutes=5))
                assert (await log_in(attacker, alice.email, "guess")).status_code == 401
            locked = await log_in(attacker, alice.email, PASSWORD)
            assert locked.status_code == 429
            assert locked.headers["Retry-After"] == "128"
        async with client_from(server, "198.51.100.20") as owner:
            asked = await owner.post("/api/password-recovery", json={"email": alice.email})
            assert asked.status_code == 202
            token = inbox.last_link(alice.email).split("token=", 1)[1]
            reset = await owner.post(
                "/api/password-reset", json={"token": token, "new_password": new_password}
            )
            assert reset.status_code == 204
            assert (await log_in(owner, alice.email, new_password)).status_code == 200


async def test_limits_can_be_turned_off(settings: Settings, alice: Account) -> None:
    off = settings.model_copy(update={"rate_limits_enabled": False})
    async with running(off) as app, app.client() as client:
        with time_machine.travel(utcnow(), tick=False):
            for _ in range(LOGIN_ACCOUNT.free + 3):
                assert (await log_in(client, alice.email, "wrong")).status_code == 401
            assert (await log_in(client, alice.email, PASSWORD)).status_code == 200


async def test_a_client_refused_for_its_address_cannot_keep_an_account_locked(
    server: RunningApp, alice: Account
) -> None:
    """Once an address is refused, its attempts count nowhere: they do not
    push the wait of the account they aim at further out."""
    with time_machine.travel(utcnow(), tick=False) as clock:
        async with client_from(server, "192.0.2.99") as attacker:
            for n in range(LOGIN_ADDRESS.free + 1):
                await log_in(attacker, f"someone{n}@example.com", "guess")
            for _ in range(20):
                assert (await log_in(attacker, alice.email, "guess")).status_code == 429
        clock.shift(timedelta(seconds=1))
        async with client_from(server, "198.51.100.5") as owner:
            assert (await log_in(owner, alice.email, PASSWORD)).status_code == 200
