"""SQLite through aiosqlite, with one trip to the driver's thread per statement.

aiosqlite keeps each sqlite3 connection in a thread of its own and hands it
every call through a queue. SQLAlchemy's aiosqlite adapter makes four of those
trips for each statement (open a cursor, execute, fetch the rows, close the
cursor) and one more for each commit, even when nothing was written. A trip
costs more than the statement: SQLite reads a page of posts in about 20 µs,
while a trip costs about as much on an idle process and several times that
under load, when the driver's thread has to win the GIL back from the event
loop.

This adapter runs a whole statement (execute, fetch every row, close) as one
function on the connection's thread, and skips commit and rollback when
SQLite has no transaction open, which is the case after a request that only
read. Everything else is SQLAlchemy's own aiosqlite dialect: `create_engine`
in `app/db.py` passes it as the `module` for `sqlite+aiosqlite` URLs.
"""

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


class BufferedCursor:
    """A DB-API cursor that runs each statement in one trip and keeps its rows.

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
    __slots__ = ()

    @property
    def _driver(self) -> aiosqlite.Connection:
        return cast(aiosqlite.Connection, self._connection)

    def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Call `function` with the sqlite3 connection, on the connection's thread."""
        driver = self._driver

        def on_thread() -> T:
            return function(driver._conn)

        try:
            # aiosqlite's queue to its thread (SQLAlchemy's adapter uses it too).
            result: T = await_(driver._execute(on_thread))  # type: ignore[no-untyped-call]
        except Exception as error:
            self._handle_exception(error)
        return result

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
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
        adapted = super().connect(*arg, **kw)
        return Connection(self, adapted._connection)
