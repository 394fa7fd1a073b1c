"""`/health`, and that slow password hashing never holds it up."""

import asyncio
import time
from collections.abc import Awaitable

import httpx

from app.config import Settings
from tests.databases import Databases
from tests.helpers import PASSWORD, Account, running


async def test_health_reports_ok_after_a_database_round_trip(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_is_503_when_the_database_is_unreachable(
    settings: Settings, databases: Databases
) -> None:
    unreachable = settings.model_copy(update={"database_url": databases.unreachable()})
    async with running(unreachable) as live, live.client() as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"detail": "The database is unavailable."}


async def test_health_answers_while_four_logins_hash_passwords(
    client: httpx.AsyncClient, alice: Account
) -> None:
    credentials = {"username": alice.email, "password": PASSWORD}

    async def finished_at(request: Awaitable[httpx.Response]) -> float:
        response = await request
        assert response.status_code == 200
        return time.perf_counter()

    # How long one login takes on this machine, with nothing else running.
    started = time.perf_counter()
    await finished_at(client.post("/api/users/token", data=credentials))
    one_login = time.perf_counter() - started

    logins = [
        asyncio.create_task(finished_at(client.post("/api/users/token", data=credentials)))
        for _ in range(4)
    ]
    # Let the logins reach the hashing step before asking for health.
    await asyncio.sleep(one_login / 4)
    health_done = await finished_at(client.get("/health"))
    logins_done = await asyncio.gather(*logins)
    assert health_done < min(logins_done)
