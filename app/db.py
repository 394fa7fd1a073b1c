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
from sqlalchemy.orm import Session, UOWTransaction
from sqlmodel.ext.asyncio.session import AsyncSession

from app import sqlite
from app.storage.lifecycle import FileSession


def create_engine(database_url: str) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        # Reads on the event loop, writes in one trip to aiosqlite's thread:
        # see app/sqlite.py.
        # Every session ends its transaction itself (commit, or rollback on
        # error and on close), so the pool's extra rollback when a connection
        # comes back would be a wasted trip on every request.
        engine = create_async_engine(database_url, module=sqlite.DBAPI(), pool_reset_on_return=None)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    # PostgreSQL: a connection the server closed (restart, failover) is
    # replaced on checkout instead of failing the request.
    return create_async_engine(database_url, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ships with foreign keys off; ON DELETE CASCADE needs them on.
    # WAL lets readers continue while one writer commits. The adapter sets the
    # busy timeout, which makes a second writer wait for the lock instead of
    # failing at once (see app/sqlite.py).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: after commit, objects keep their loaded values.
    # With the default (True) the next attribute access would emit SQL, which
    # an AsyncSession cannot do implicitly (MissingGreenlet).
    # FileSession deletes the files a transaction uploaded (on rollback) or
    # stopped referencing (after commit): see app/storage/lifecycle.py.
    return async_sessionmaker(engine, class_=FileSession, expire_on_commit=False)


# GET, HEAD and OPTIONS are safe methods (RFC 9110): they only read.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FLUSHED = "flushed"  # in session.info: this transaction has written rows


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request.

    A request that may write (POST, PUT, PATCH, DELETE) commits if the
    handler succeeded and rolls back otherwise. A safe request (GET, HEAD,
    OPTIONS) only read: closing the session ends its transaction, without
    the work of a commit. One that changed something anyway is a bug, and
    fails loudly rather than losing the change in silence.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        if request.method not in SAFE_METHODS:
            await session.commit()
        elif session.new or session.dirty or session.deleted or session.info.get(_FLUSHED):
            raise RuntimeError(
                f"{request.method} {request.url.path} changed the database; "
                "only POST, PUT, PATCH and DELETE requests commit"
            )


@event.listens_for(Session, "after_flush")
def _mark_flushed(session: Session, _flush: UOWTransaction) -> None:
    session.info[_FLUSHED] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _clear_flushed(session: Session) -> None:
    session.info.pop(_FLUSHED, None)


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
