"""While the database cannot be reached, every route answers 503 with a message,
and the app serves again as soon as the database is back, without a restart.

Real outages, no mocks: on PostgreSQL the app talks to its database through a
TCP proxy that the test stops and starts again; SQLite is a file the app
cannot open until the test puts it in place.
"""

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from sqlalchemy.engine import URL, make_url

from app.config import Settings
from tests.databases import Databases
from tests.helpers import PASSWORD, Account, create_post, csrf_from, running, sign_up

UNAVAILABLE = "The database is unavailable. Please try again in a moment."


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the other side is gone; closing this one passes that on
    finally:
        writer.close()


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of a PostgreSQL server.

    To the app, stopping it (and closing the connections it carries) looks
    exactly like the server going away, and starting it again on the same
    port like the server coming back.
    """

    def __init__(self, target: URL) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def database_url(self) -> str:
        proxied = self.target.set(host="127.0.0.1", port=self.port)
        return proxied.render_as_string(hide_password=False)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        writers, self.writers = self.writers, set()
        for writer in writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)
        await self.server.wait_closed()
        self.server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        except OSError:
            writer.close()
            return
        self.writers.add(upstream_writer)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


class MissingSqliteFile:
    """A SQLite database in a directory that does not exist yet, so SQLite
    cannot open it; `start()` puts a migrated database there."""

    def __init__(self, migrated_url: str, directory: Path) -> None:
        migrated = make_url(migrated_url)
        self.source = Path(str(migrated.database))
        self.path = directory / "not-created-yet" / "blog.db"
        self.database_url = migrated.set(database=str(self.path)).render_as_string()

    async def start(self) -> None:
        self.path.parent.mkdir()
        shutil.copy(self.source, self.path)


class LateDatabase(Protocol):
    @property
    def database_url(self) -> str: ...

    async def start(self) -> None: ...


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    """A running proxy in front of the test's database (PostgreSQL only)."""
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "An open SQLite database cannot be taken from the app: its pooled connections "
            "keep reading and writing even after the file is deleted. "
            "test_an_app_started_without_its_database_serves_once_it_is_there covers "
            "SQLite's recovery."
        )
    proxy = TcpProxy(make_url(database_url))
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def late_database(database_url: str, tmp_path: Path) -> AsyncIterator[LateDatabase]:
    """The test's database, unreachable until the test calls `start()`."""
    if database_url.startswith("sqlite"):
        yield MissingSqliteFile(database_url, tmp_path)
        return
    proxy = TcpProxy(make_url(database_url))
    # Started once to take a free port, which the app is then given.
    await proxy.start()
    await proxy.stop()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def down(settings: Settings, databases: Databases) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose database cannot be reached."""
    unreachable = settings.model_copy(update={"database_url": databases.unreachable()})
    async with running(unreachable) as live, live.client() as client:
        yield client


def assert_unavailable_page(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert UNAVAILABLE in response.text
    assert int(response.headers["retry-after"]) > 0


def assert_unavailable_json(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.json() == {"detail": UNAVAILABLE}
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("path", ["/", "/posts/1", "/users/1/posts"])
async def test_pages_answer_503_while_the_database_is_down(
    down: httpx.AsyncClient, path: str
) -> None:
    assert_unavailable_page(await down.get(path))


async def test_logging_in_on_the_page_answers_503_while_the_database_is_down(
    down: httpx.AsyncClient,
) -> None:
    form = await down.get("/login")
    assert form.status_code == 200
    data = {"email": "alice@example.com", "password": PASSWORD, "csrf_token": csrf_from(form.text)}
    assert_unavailable_page(await down.post("/login", data=data))


@pytest.mark.parametrize("path", ["/api/posts", "/api/posts/1", "/api/users/1"])
async def test_the_api_answers_503_while_the_database_is_down(
    down: httpx.AsyncClient, path: str
) -> None:
    assert_unavailable_json(await down.get(path))


async def test_asking_for_a_token_answers_503_while_the_database_is_down(
    down: httpx.AsyncClient,
) -> None:
    credentials = {"username": "alice@example.com", "password": PASSWORD}
    assert_unavailable_json(await down.post("/api/users/token", data=credentials))


async def test_an_app_started_without_its_database_serves_once_it_is_there(
    settings: Settings, late_database: LateDatabase
) -> None:
    late = settings.model_copy(update={"database_url": late_database.database_url})
    async with running(late) as live, live.client() as client:
        assert_unavailable_page(await client.get("/"))
        assert_unavailable_json(await client.get("/api/posts"))

        await late_database.start()

        assert (await client.get("/")).status_code == 200
        assert (await client.get("/api/posts")).json()["posts"] == []
        assert (await client.get("/health")).json() == {"status": "ok"}


async def test_requests_during_an_outage_get_503_and_the_first_ones_after_it_200(
    settings: Settings, proxy: TcpProxy
) -> None:
    proxied = settings.model_copy(update={"database_url": proxy.database_url})
    async with running(proxied) as live, live.client() as client:
        alice: Account = await sign_up(client)
        post = await create_post(client, alice, title="Still here")
        api_path, page_path = f"/api/posts/{post['id']}", f"/posts/{post['id']}"
        assert (await client.get(page_path)).status_code == 200

        await proxy.stop()

        assert_unavailable_json(await client.get(api_path))
        assert_unavailable_page(await client.get(page_path))
        assert_unavailable_json(await client.get("/api/users/me", headers=alice.headers))
        assert (await client.get("/health")).status_code == 503

        await proxy.start()

        assert (await client.get(api_path)).json()["title"] == "Still here"
        assert (await client.get(page_path)).status_code == 200
        me = await client.get("/api/users/me", headers=alice.headers)
        assert me.json()["username"] == "alice"
        assert (await client.get("/health")).json() == {"status": "ok"}


async def test_what_needs_no_database_keeps_working_while_it_is_down(
    down: httpx.AsyncClient,
) -> None:
    assert (await down.get("/static/css/site.css")).status_code == 200
    assert (await down.get("/static/css/missing.css")).status_code == 404
    assert (await down.get("/api/posts", params={"limit": "many"})).status_code == 422
