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
