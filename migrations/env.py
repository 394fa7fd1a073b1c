"""Alembic environment, async: migrations run through the same async drivers as the app."""

import asyncio
from logging.config import fileConfig
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import app.models  # registers the tables on SQLModel.metadata
from app.config import get_settings
from app.search import is_search_table
from app.storage import FileListType, FileType

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = SQLModel.metadata


def database_url() -> str:
    """An explicit URL (tests, `-x url=...`) wins over the app's settings."""
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or get_settings().database_url
    )


def render_item(kind: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write migrations with plain SQLAlchemy types where they are equivalent,
    so a migration does not depend on SQLModel's internals."""
    if kind != "type":
        return False
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})"
    if isinstance(obj, app.models.UTCDateTime):
        autogen_context.imports.add("import app.models")
        return "app.models.UTCDateTime()"
    if isinstance(obj, FileType):
        autogen_context.imports.add("import app.storage")
        return "app.storage.FileType()"
    if isinstance(obj, FileListType):
        autogen_context.imports.add("import app.storage")
        return "app.storage.FileListType()"
    return False


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """The search tables are made by migration 0013 in each database's own
    terms, not from a model (app/search.py)."""
    return not (type_ == "table" and name is not None and is_search_table(name))


def configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection,
        url=None if connection else database_url(),
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
    )


def run_offline() -> None:
    configure()
    with context.begin_transaction():
        context.run_migrations()


def _run_online(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run_online)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
