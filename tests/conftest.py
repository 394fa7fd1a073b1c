"""Fixtures: every test gets its own migrated database and a real server on 127.0.0.1."""

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from tests.databases import Databases, PostgresDatabases, SqliteDatabases
from tests.s3server import MotoServer

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """SQLite files, or databases on the PostgreSQL server named by TEST_DATABASE_URL."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if admin_url:
        made: Databases = PostgresDatabases(admin_url)
    else:
        made = SqliteDatabases(tmp_path_factory.mktemp("databases"))
    yield made
    made.drop_all()


@pytest.fixture
def database_url(databases: Databases) -> str:
    """A database of the test's own, migrated to the latest revision."""
    return databases.migrated()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Settings:
    """The test's settings: its own database, and local media or (on the PostgreSQL
    leg) a prefix of its own in the S3 bucket."""
    storage: dict[str, object] = {"media_root": tmp_path / "media"}
    if os.environ.get("TEST_S3_ENDPOINT_URL"):
        storage |= {
            "storage_backend": "s3",
            "s3_endpoint_url": os.environ["TEST_S3_ENDPOINT_URL"],
            "s3_bucket": os.environ["TEST_S3_BUCKET"],
            "s3_prefix": f"test-{secrets.token_hex(6)}",
        }
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        secret_key=TEST_SECRET,
        **storage,  # type: ignore[arg-type]
    )


@dataclass
class LiveServer:
    app: FastAPI
    url: str

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.app.state.engine
        return engine


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app served by uvicorn on a free port, in the test's event loop."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.005)
    port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{port}")
    finally:
        uvicorn_server.should_exit = True
        await task


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The settings `server` runs with; test modules override this fixture to change them."""
    return settings


@pytest.fixture
async def server(app_settings: Settings) -> AsyncIterator[LiveServer]:
    async with serve(app_settings) as live:
        yield live


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def register(
    client: httpx.AsyncClient, username: str = "alice", email: str | None = None
) -> dict[str, object]:
    response = await client.post(
        "/api/users",
        json={
            "username": username,
            "email": email or f"{username}@example.com",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 201, response.text
    user: dict[str, object] = response.json()
    return user


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/users/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Account:
    id: int
    username: str
    email: str
    headers: dict[str, str]


async def sign_up(client: httpx.AsyncClient, username: str = "alice") -> Account:
    user = await register(client, username)
    email = str(user["email"])
    return Account(
        id=int(str(user["id"])),
        username=username,
        email=email,
        headers=await login(client, email),
    )


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await sign_up(client, "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await sign_up(client, "bob")


async def create_post(
    client: httpx.AsyncClient, account: Account, title: str = "Hello", content: str = "World"
) -> dict[str, object]:
    response = await client.post(
        "/api/posts", json={"title": title, "content": content}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    post: dict[str, object] = response.json()
    return post


# --- pages -------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


LOAD_MORE = re.compile(r'href="([^"]+)" data-load-more')


def load_more_url(html: str) -> str:
    """Where a list page's "Load more" link leads."""
    match = LOAD_MORE.search(html)
    assert match, "the page has no Load more link"
    return unescape(match.group(1))


def csrf_from(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def submit(
    client: httpx.AsyncClient, form_page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Fill in a form the way a browser does: load its page, post with its CSRF token."""
    page = await client.get(form_page)
    assert page.status_code == 200, page.text
    return await client.post(action, data={**data, "csrf_token": csrf_from(page.text)})


async def page_login(client: httpx.AsyncClient, email: str, next_path: str = "/") -> httpx.Response:
    response = await submit(
        client, "/login", "/login", {"email": email, "password": PASSWORD, "next": next_path}
    )
    assert response.status_code == 303, response.text
    return response


@pytest.fixture
async def browser(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A second client with its own cookie jar, used like a browser on the pages."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


# --- storage -----------------------------------------------------------------


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """A moto_server (the PostgreSQL leg's, or one for the session); tests take
    buckets of their own on it."""
    endpoint = os.environ.get("TEST_S3_ENDPOINT_URL")
    if endpoint:
        yield MotoServer(endpoint=endpoint)
        return
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def storage_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings on each storage backend in turn."""
    if request.param == "local":
        return settings.model_copy(update={"storage_backend": "local"})
    moto: MotoServer = request.getfixturevalue("moto")
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": moto.create_bucket(),
            "s3_endpoint_url": moto.endpoint,
            "s3_prefix": "media",
        }
    )
