"""Fresh databases for tests: SQLite files, or databases on a PostgreSQL server.

Both start from one database migrated with Alembic (never `create_all`): SQLite
copies the file, PostgreSQL uses it as a `CREATE DATABASE ... TEMPLATE`.
"""

import asyncio
import secrets
import shutil
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def migrate(database_url: str, revision: str = "head") -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["configure_logging"] = False
    command.upgrade(config, revision)


def downgrade(database_url: str, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["configure_logging"] = False
    command.downgrade(config, revision)


class Databases(Protocol):
    def migrated(self) -> str:
        """The URL of a new database at the latest migration."""
        ...

    def empty(self) -> str:
        """The URL of a new database without any tables."""
        ...

    def unreachable(self) -> str:
        """A URL of the same kind that cannot be connected to."""
        ...

    def drop_all(self) -> None: ...


class SqliteDatabases:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        migrate(self.url(self.template))

    @staticmethod
    def url(path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"

    def _new_path(self) -> Path:
        return self.directory / f"{secrets.token_hex(6)}.db"

    def migrated(self) -> str:
        path = self._new_path()
        shutil.copy(self.template, path)
        return self.url(path)

    def empty(self) -> str:
        return self.url(self._new_path())

    def unreachable(self) -> str:
        return self.url(self.directory / "missing-directory" / "blog.db")

    def drop_all(self) -> None:
        """The files go with pytest's temporary directories."""


def _in_thread(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run admin SQL on its own loop in a thread, away from the tests' event loops."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


class PostgresDatabases:
    TEMPLATE = "blog_template"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.created: list[str] = []
        self._execute(
            f'DROP DATABASE IF EXISTS "{self.TEMPLATE}"', f'CREATE DATABASE "{self.TEMPLATE}"'
        )
        migrate(self._url(self.TEMPLATE))

    def _url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, *statements: str) -> None:
        dsn = self.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)

        async def run() -> None:
            connection = await asyncpg.connect(dsn)
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        _in_thread(run)

    def _create(self, template: str) -> str:
        name = f"test_{secrets.token_hex(6)}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.created.append(name)
        return self._url(name)

    def migrated(self) -> str:
        return self._create(self.TEMPLATE)

    def empty(self) -> str:
        return self._create("template0")

    def unreachable(self) -> str:
        return self.admin_url.set(port=1, database="nowhere").render_as_string(hide_password=False)

    def drop_all(self) -> None:
        statements = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.created]
        if statements:
            self._execute(*statements)
        self.created.clear()
