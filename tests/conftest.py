"""Fixtures: every test gets its own migrated database and its own app.

Helpers that tests import are in tests/helpers.py; nothing is imported from here.
"""

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.databases import Databases, PostgresDatabases, SqliteDatabases
from tests.helpers import TEST_SECRET, Account, RunningApp, add_account, running
from tests.mailserver import Inbox, MailServer
from tests.s3server import MotoServer


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


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that every test's app sends to."""
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def inbox(mail_server: MailServer) -> Inbox:
    """What the SMTP server receives during this test."""
    mail_server.inbox.messages.clear()
    return mail_server.inbox


@pytest.fixture
def settings(tmp_path: Path, database_url: str, mail_server: MailServer) -> Settings:
    """The test's settings: its own database, mail to the test SMTP server, and
    local media or (on the PostgreSQL leg) a prefix of its own in the S3 bucket."""
    storage: dict[str, object] = {"media_root": tmp_path / "media"}
    if os.environ.get("TEST_S3_ENDPOINT_URL"):
        storage |= {
            "storage_backend": "s3",
            "s3_endpoint_url": os.environ["TEST_S3_ENDPOINT_URL"],
            "s3_bucket": os.environ["TEST_S3_BUCKET"],
            "s3_prefix": f"test-{secrets.token_hex(6)}",
        }
    return Settings(
        _env_file=None,
        database_url=database_url,
        secret_key=TEST_SECRET,
        smtp_host="127.0.0.1",
        smtp_port=mail_server.port,
        smtp_security="none",
        mail_dir=tmp_path / "mail",
        public_url="http://testserver",
        **storage,  # type: ignore[arg-type]
    )


@pytest.fixture
def server_settings(settings: Settings) -> Settings:
    """The settings `server` runs with; test modules override this fixture to change them."""
    return settings


@pytest.fixture
async def server(server_settings: Settings) -> AsyncIterator[RunningApp]:
    """The app, in this process (tests/helpers.py: `running`)."""
    async with running(server_settings) as app:
        yield app


@pytest.fixture
async def client(server: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


@pytest.fixture
async def browser(server: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    """A second client with its own cookie jar, used like a browser on the pages."""
    async with server.client() as client:
        yield client


@pytest.fixture
async def alice(server: RunningApp) -> Account:
    return await add_account(server, "alice")


@pytest.fixture
async def bob(server: RunningApp) -> Account:
    return await add_account(server, "bob")


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
