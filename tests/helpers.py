"""What tests share besides fixtures: running the app, accounts, posts and forms.

Most tests run the app in this process: `running()` starts its lifespan
(asgi-lifespan, as FastAPI's docs suggest for async tests) and clients reach it
through `httpx.ASGITransport`, with no sockets. `serve()` runs it under a real
uvicorn on 127.0.0.1 for the tests where a real server matters: the browser,
and timings seen from outside.
"""

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.main import create_app
from app.models import User
from app.names import username_key
from app.security import create_access_token, hash_password
from app.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
PASSWORD = "correct horse battery"


# --- the app -------------------------------------------------------------------


@dataclass
class RunningApp:
    """An app with its lifespan started, and how to reach it."""

    app: FastAPI
    url: str
    # How to reach the app in this process; None for a real server, which
    # clients reach at `url`.
    transport: httpx.AsyncBaseTransport | None = None

    def client(self) -> httpx.AsyncClient:
        """A new client with its own cookie jar, like another browser.

        Requests to `url` go to the app; any other URL (an S3 bucket's
        picture, say) goes over the network as usual.
        """
        mounts = {self.url: self.transport} if self.transport else {}
        return httpx.AsyncClient(base_url=self.url, mounts=mounts, timeout=30)

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.state.settings
        return settings

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.app.state.engine
        return engine

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        sessionmaker: async_sessionmaker[AsyncSession] = self.app.state.sessionmaker
        return sessionmaker

    @property
    def storage(self) -> Storage:
        storage: Storage = self.app.state.storage
        return storage


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[RunningApp]:
    """The app in this process, lifespan included."""
    app = create_app(settings)
    # The app keeps what its lifespan makes in app.state, so requests go to
    # the app itself (not manager.app, which would hand every request one
    # shared request.state).
    async with LifespanManager(app):
        # raise_app_exceptions=False: a 500 reaches the test as the page or
        # JSON the app answers with, as a browser would see it.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        yield RunningApp(app=app, url="http://testserver", transport=transport)


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[RunningApp]:
    """The app served by uvicorn on a free port, in the test's event loop."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningApp(app=app, url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task


RENDITION_KEY = re.compile(r"\.[0-9]+w\.[a-z0-9]+$")


async def stored_files(storage: Storage) -> set[str]:
    """The keys of the files in `storage`, without their smaller renditions
    (`<key>.<width>w.webp`, stored and deleted with them)."""
    return {stored.key async for stored in storage.scan() if not RENDITION_KEY.search(stored.key)}


# --- accounts ------------------------------------------------------------------


@dataclass
class Account:
    id: int
    username: str
    email: str
    headers: dict[str, str]


_hashed: dict[str, str] = {}


async def password_hash() -> str:
    """PASSWORD hashed once per test run, by the app's own hasher."""
    if PASSWORD not in _hashed:
        _hashed[PASSWORD] = await hash_password(PASSWORD)
    return _hashed[PASSWORD]


async def add_account(running_app: RunningApp, username: str) -> Account:
    """A user who can log in with PASSWORD, and their API token, made directly.

    Signing up through the API hashes the password and logging in checks it,
    which Argon2 makes slow on purpose; tests of signing up and logging in do
    it the long way (`sign_up`).
    """
    email = f"{username}@example.com"
    async with running_app.sessionmaker() as session:
        user = User(
            username=username,
            username_key=username_key(username),
            email=email,
            password_hash=await password_hash(),
        )
        session.add(user)
        await session.commit()
    assert user.id is not None
    token = create_access_token(user, running_app.settings)
    return Account(user.id, username, email, {"Authorization": f"Bearer {token}"})


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


async def sign_up(client: httpx.AsyncClient, username: str = "alice") -> Account:
    """Register and log in through the API, as a client would."""
    user = await register(client, username)
    email = str(user["email"])
    return Account(
        id=int(str(user["id"])),
        username=username,
        email=email,
        headers=await login(client, email),
    )


async def create_post(
    client: httpx.AsyncClient, account: Account, title: str = "Hello", content: str = "World"
) -> dict[str, object]:
    response = await client.post(
        "/api/posts", json={"title": title, "content": content}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    post: dict[str, object] = response.json()
    return post


async def delete_account(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    """Delete the account through the API, confirmed with its password."""
    return await client.request(
        "DELETE", f"/api/users/{account.id}", json={"password": PASSWORD}, headers=account.headers
    )


# --- pages -----------------------------------------------------------------------

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
