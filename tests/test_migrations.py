"""Alembic migrations build exactly the schema the models declare."""

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app.db import create_engine
from tests.databases import Databases, downgrade, migrate


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def _schema_report(database_url: str) -> tuple[list[Any], set[str]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    return differences, tables


def test_upgrade_head_on_empty_database_matches_the_models(databases: Databases) -> None:
    url = databases.empty()
    migrate(url)
    differences, tables = asyncio.run(_schema_report(url))
    assert differences == []
    assert {"users", "posts", "alembic_version"} <= tables


def test_downgrade_to_base_and_upgrade_again(databases: Databases) -> None:
    url = databases.empty()
    migrate(url)
    downgrade(url, "base")
    assert asyncio.run(_schema_report(url))[1] == {"alembic_version"}
    migrate(url)
    assert asyncio.run(_schema_report(url))[0] == []
