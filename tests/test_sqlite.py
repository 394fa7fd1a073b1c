"""The SQLite adapter (app/sqlite.py): a read never waits on the event loop."""

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import create_engine
from tests.databases import SqliteDatabases


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database, on either test leg."""
    return SqliteDatabases(tmp_path).migrated()


async def test_a_read_that_must_wait_for_a_lock_waits_in_the_thread(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            # In rollback-journal mode, unlike WAL, a writer's lock blocks readers.
            await connection.exec_driver_sql("PRAGMA journal_mode=DELETE")
            other = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
            other.execute("BEGIN EXCLUSIVE")
            try:
                reading = asyncio.create_task(
                    connection.execute(text("SELECT count(*) FROM posts"))
                )
                # Had the read waited on this thread, the loop would stall and
                # these timers would not fire.
                ticks, started = 0, time.monotonic()
                while time.monotonic() - started < 0.5:
                    await asyncio.sleep(0.01)
                    ticks += 1
                assert ticks >= 25
                assert not reading.done()
            finally:
                other.rollback()
                other.close()
            assert (await reading).scalar() == 0
    finally:
        await engine.dispose()


async def test_a_write_after_a_read_waits_for_another_writer(sqlite_url: str) -> None:
    # Reads on the loop run with no busy timeout; the write that follows on the
    # same connection must get it back, or it would fail at once with
    # "database is locked" while another process holds the write lock.
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0
            other = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
            other.execute("BEGIN IMMEDIATE")
            writing = asyncio.create_task(
                connection.execute(
                    text(
                        "INSERT INTO users (username, email, password_hash, created_at)"
                        " VALUES ('ada', 'ada@example.com', 'x', '2026-01-01 00:00:00')"
                    )
                )
            )
            await asyncio.sleep(0.3)
            assert not writing.done()
            other.rollback()
            other.close()
            await writing
            await connection.commit()
            # And the next read runs on the loop again, without waiting.
            assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 1
    finally:
        await engine.dispose()
