"""The async engine, the session factory and the per-request session.

The engine is built in the app's lifespan (see `main.py`), never at import:
importing a module must not open connections, and tests build one app per
database.
"""

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, Table, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.storage.lifecycle import FileSession, has_writes

# How long a statement waits for another connection's write lock before
# failing with "database is locked". It waits in aiosqlite's thread, never on
# the event loop.
SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(database_url: str) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        # SQLAlchemy's own aiosqlite dialect: every statement runs in the
        # driver's thread, so a slow query never stalls the event loop.
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "savepoint", _begin_before_savepoint)
        return engine
    # PostgreSQL: a connection the server closed (restart, failover) is
    # replaced on checkout instead of failing the request.
    return create_async_engine(database_url, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Runs once per new connection (SQLAlchemy's "connect" event).

    SQLite ships with foreign keys off; ON DELETE CASCADE needs them on. WAL
    lets readers go on while one writer commits; with WAL, synchronous=NORMAL
    syncs at checkpoints instead of at every commit and still never corrupts
    the database (a power cut may lose the last commits). The busy timeout
    makes a second writer wait for the lock instead of failing at once.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_before_savepoint(connection: Connection, _name: str | None) -> None:
    """Make a SAVEPOINT part of the request's transaction on SQLite.

    Python's sqlite3 driver begins a transaction only before its first INSERT,
    UPDATE or DELETE, not before a SAVEPOINT. SQLite then runs a SAVEPOINT
    outside any transaction as a transaction of its own, which its RELEASE
    commits, so the request's rollback could not undo it. Beginning first
    keeps the SAVEPOINT inside. (Reads still begin nothing, so a request that
    reads and then writes waits for the write lock like any other.)
    """
    driver_connection = connection.connection.driver_connection  # aiosqlite's Connection
    if driver_connection is not None and not driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: after commit, objects keep their loaded values.
    # With the default (True) the next attribute access would emit SQL, which
    # an AsyncSession cannot do implicitly (MissingGreenlet).
    # FileSession deletes the files a transaction uploaded (on rollback) or
    # stopped referencing (after commit): see app/storage/lifecycle.py.
    return async_sessionmaker(engine, class_=FileSession, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, and the one place where a request's transaction
    ends: commit if the handler succeeded, roll back otherwise. Services only
    add, change and flush; they never commit or roll back."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


class TransactionHasWrites(RuntimeError):
    """Ending this transaction early would commit what it wrote."""


async def end_read_only_transaction(session: AsyncSession) -> None:
    """End a transaction that has only read, so that its connection goes back
    to the pool during slow work that needs none: processing an image,
    checking a password.

    A request holds its pooled connection from its first statement to its
    commit; uploads waiting for the image threads would otherwise hold
    connections that other requests queue for. What the session loaded stays
    usable (expire_on_commit=False), and the next statement begins a new
    transaction. The request's commit or rollback (`get_session`) still
    decides everything written after this point.

    Refuses, raising TransactionHasWrites, once the transaction has written
    anything (a flush, an UPDATE or DELETE statement) or stored a file:
    ending it then would commit those writes behind the request's back.
    """
    if session.new or session.dirty or session.deleted or has_writes(session):
        raise TransactionHasWrites(
            "end_read_only_transaction() called after the transaction wrote: do the slow work first"
        )
    await session.commit()


async def insert_for_conflicts(session: AsyncSession, model: Any) -> Any:
    """INSERT into `model`'s table in the database's own form, which has
    `.on_conflict_do_nothing()` and `.on_conflict_do_update()`: PostgreSQL's
    or SQLite's (the two spell ON CONFLICT alike, but SQLAlchemy's generic
    INSERT has neither)."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    dialect = (await session.connection()).dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
