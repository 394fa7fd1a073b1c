"""SQLite through aiosqlite: writes in the driver's thread, reads on the event loop.

aiosqlite keeps each sqlite3 connection in a thread of its own and hands it
every call through a queue, so that a statement that must wait (for the write
lock another process holds, for fsync at commit) never stalls the event loop.
SQLAlchemy's aiosqlite adapter makes four of those trips for each statement
(open a cursor, execute, fetch the rows, close the cursor) and one more for
each commit, even when nothing was written.

A trip costs far more than a read. SQLite reads a page of posts from its
cache in microseconds. In a thread next to a busy event loop the same read is
slow, because
Python's sqlite3 lets go of the GIL for every column of every row it converts,
and each time the thread must win the GIL back from the loop: a forced switch
per column, hundreds per page.

So this adapter:

- runs a SELECT on the event loop's own thread, where giving up and taking back
  the GIL costs nothing. In WAL mode (see `app/db.py`) a reader never waits
  for a writer. For the rare moment when SQLite would still make it wait (a
  busy WAL index), the busy timeout is 0 while reads run on the loop: SQLite
  answers SQLITE_BUSY at once and the read is run again in the thread, where
  waiting is harmless. No read ever sleeps on the loop;
- runs every other statement (INSERT, UPDATE, DELETE, PRAGMA, SAVEPOINT) as
  one call in the connection's thread: execute, fetch, close. There the busy
  timeout is BUSY_TIMEOUT_MS, so a second writer waits for the lock instead
  of failing at once. The timeout changes only when a connection goes from
  one side to the other, so a request that only reads never changes it;
- skips commit and rollback when SQLite has no transaction open, which is the
  case after a request that only read.

Everything else is SQLAlchemy's own aiosqlite dialect: `create_engine` in
`app/db.py` passes this as the `module` for `sqlite+aiosqlite` URLs.
"""

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")
Row = tuple[Any, ...]

# How long a statement in the driver's thread waits for a lock before failing.
BUSY_TIMEOUT_MS = 5000
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def _is_read(operation: str) -> bool:
    return operation.lstrip()[:6].upper() == "SELECT"


class BufferedCursor:
    """A DB-API cursor that reads on the event loop, runs anything else in one
    trip to the driver's thread, and keeps the rows.

    SQLAlchemy's own adapter buffers every row of a result as well, so memory
    use is unchanged; `AsyncSession.stream()` still gets a server-side cursor.
    """

    server_side = False

    def __init__(self, connection: "Connection") -> None:
        self._connection = connection
        self._rows: deque[Row] = deque()
        self.description: Sequence[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> None:
        def run(driver: sqlite3.Connection) -> None:
            cursor = driver.cursor()
            try:
                cursor.execute(operation, () if parameters is None else parameters)
                self.description = cursor.description
                self._rows = deque(cursor.fetchall() if cursor.description else ())
                self.rowcount, self.lastrowid = cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        if not (_is_read(operation) and self._connection.read_without_waiting(run)):
            self._connection.run(run)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> None:
        def run(driver: sqlite3.Connection) -> None:
            cursor = driver.cursor()
            try:
                cursor.executemany(operation, seq_of_parameters)
                self.description = None
                self.rowcount, self.lastrowid = cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        self._connection.run(run)

    def fetchone(self) -> Row | None:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Row]:
        count = min(self.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    def fetchall(self) -> list[Row]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Row]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """Called by AsyncResult; the sqlite3 cursor is already closed."""

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass


class Connection(AsyncAdapt_aiosqlite_connection):
    # Whether SQLite's busy timeout is BUSY_TIMEOUT_MS (statements in the
    # thread may wait for a lock) or 0 (reads on the loop never wait).
    __slots__ = ("_waits",)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._waits = True  # sqlite3.connect(timeout=...) in DBAPI.connect

    @property
    def _driver(self) -> aiosqlite.Connection:
        return cast(aiosqlite.Connection, self._connection)

    def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Call `function` with the sqlite3 connection, on the connection's thread,
        where a statement may wait for a lock."""
        driver = self._driver
        set_timeout = not self._waits
        self._waits = True

        def on_thread() -> T:
            if set_timeout:
                driver._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").close()
            return function(driver._conn)

        try:
            # aiosqlite's queue to its thread (SQLAlchemy's adapter uses it too).
            result: T = await_(driver._execute(on_thread))  # type: ignore[no-untyped-call]
        except Exception as error:
            self._handle_exception(error)
        return result

    def read_without_waiting(self, function: Callable[[sqlite3.Connection], None]) -> bool:
        """Call `function` here, on the event loop's thread, unless SQLite would
        make it wait for a lock: then return False, having changed nothing."""
        try:
            driver = self._driver._conn
            if self._waits:
                driver.execute("PRAGMA busy_timeout = 0").close()
                self._waits = False
            function(driver)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED):
                return False
            self._handle_exception(error)
        except Exception as error:
            self._handle_exception(error)
        # SQLAlchemy's AsyncConnection checks that every call awaited something
        # (to catch a synchronous driver passed by mistake); a read that had
        # nothing to wait for awaits a future that is already done.
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        await_(done)
        return True

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            # A streamed result reads in the thread, through aiosqlite, where
            # it may wait for a lock: give it the busy timeout first.
            self.run(lambda driver: None)
            return super().cursor(server_side=True)
        return BufferedCursor(self)

    def _in_transaction(self) -> bool:
        driver = self._driver
        return driver._connection is not None and driver.in_transaction

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()


class DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> Connection:
        # Reads use the connection from the event loop's thread, writes from
        # aiosqlite's; never both at once, as SQLAlchemy awaits each call.
        kw["check_same_thread"] = False
        kw["timeout"] = BUSY_TIMEOUT_MS / 1000
        adapted = super().connect(*arg, **kw)
        return Connection(self, adapted._connection)
