"""The async engine, the session factory and the per-request session.

The engine is built in the app's lifespan (see `main.py`), never at import:
importing a module must not open connections, and tests build one app per
database.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.storage.lifecycle import FileSession

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


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: after commit, objects keep their loaded values.
    # With the default (True) the next attribute access would emit SQL, which
    # an AsyncSession cannot do implicitly (MissingGreenlet).
    # FileSession deletes the files a transaction uploaded (on rollback) or
    # stopped referencing (after commit): see app/storage/lifecycle.py.
    return async_sessionmaker(engine, class_=FileSession, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit if the handler succeeded, roll back otherwise."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def release_connection(session: AsyncSession) -> None:
    """Give the session's connection back to the pool before slow work that
    needs no database: processing an image, hashing a password.

    A request holds its pooled connection from its first statement to its
    commit; uploads waiting for the image thread would otherwise hold
    connections that other requests queue for (SQLAlchemy's default pool has
    5, and 10 more under load). Only for a session
    that has read but not written: it ends that read-only transaction. What it
    loaded stays usable (expire_on_commit=False), and the next statement takes
    a connection again.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("release_connection() would commit unflushed changes")
    await session.commit()


# scope="function": the commit runs when the handler returns, before the
# response is sent, so a client never sees a success for a write that failed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
