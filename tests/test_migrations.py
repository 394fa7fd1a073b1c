"""Alembic migrations build exactly the schema the models declare."""

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app.db import create_engine
from app.models import utcnow
from app.search import is_search_table
from tests.databases import Databases, downgrade, migrate


def _include(name: str | None, type_: str, _parents: object) -> bool:
    # As migrations/env.py: the search tables are no model's.
    return not (type_ == "table" and name is not None and is_search_table(name))


def _differences(connection: Connection) -> list[Any]:
    options = {"compare_type": True, "include_name": _include}
    context = MigrationContext.configure(connection, opts=options)
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


async def _add_users(database_url: str, names: list[str]) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            for n, name in enumerate(names, start=1):
                await connection.execute(
                    text(
                        "INSERT INTO users (username, email, password_hash, created_at, updated_at)"
                        " VALUES (:name, :email, 'x', :now, :now)"
                    ),
                    {"name": name, "email": f"user{n}@example.com", "now": utcnow()},
                )
    finally:
        await engine.dispose()


async def _names_and_keys(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT username, username_key FROM users ORDER BY id")
            )
            return [(name, key) for name, key in rows.all()]
    finally:
        await engine.dispose()


def test_existing_look_alike_usernames_are_renamed_by_the_migration(
    databases: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    url = databases.empty()
    migrate(url, "0007")
    # ada; ADA; ada with a Cyrillic a; an ada-2 of its own; grace and Grace.
    names = ["ada", "ADA", "\u0430da", "ada-2", "grace", "Grace"]
    asyncio.run(_add_users(url, names))
    migrate(url)
    assert asyncio.run(_names_and_keys(url)) == [
        ("ada", "ada"),
        ("ADA-2", "ada-2"),
        ("\u0430da-3", "ada-3"),
        ("ada-2-2", "ada-2-2"),
        ("grace", "grace"),
        ("Grace-2", "grace-2"),
    ]
    said = capsys.readouterr().out
    assert "users.id 2: 'ADA' looks like an older account's name: renamed 'ADA-2'" in said
