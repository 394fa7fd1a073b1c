"""Files that follow the transaction of the session that stored them.

The rules:

1. A new file is uploaded *before* the commit (so a commit never points at a
   missing object) and remembered by the session.
2. If the transaction rolls back, the files it uploaded are deleted.
3. A file that a row stops referencing (replaced, set to None, or the row
   deleted) is deleted only *after* the commit succeeds; until then, a
   rollback would bring the reference back. That includes the files of every
   row the database deletes with it (ON DELETE CASCADE, at any depth, in any
   table with a file field): they are read just before the DELETE.
4. A savepoint (`session.begin_nested()`) that rolls back deletes the files
   uploaded within it and keeps the ones its rows point at again.
5. A delete that fails after the commit is logged and left for
   `python -m app storage gc`; the user's request has already succeeded.

SQLAlchemy's session events are synchronous, and storage calls are async, so
the work is split: the events (below) only decide which files are due for
deletion; `FileSession` awaits the deletions right after `commit()`,
`rollback()` and `close()`, so nothing is fire-and-forget. The events listen
on `FileSession`'s own synchronous session class only: any other Session in
the process is left alone.

The same events note whether the transaction has written anything, which
`app.db.end_read_only_transaction` checks before it ends a transaction early.
"""

import logging
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Delete, Table, and_, event, inspect, orm, select, true
from sqlalchemy.orm import Mapper, ORMExecuteState, SessionTransaction, UOWTransaction
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from app.storage.base import Data, Storage, StorageError, new_key, rendition_key
from app.storage.fields import Rendition, StoredFile, files_in, is_file_column
from app.storage.registry import get_storage

logger = logging.getLogger(__name__)

# Lists of StoredFile kept in session.info.
UPLOADED = "files_uploaded"  # stored in this transaction: deleted if it rolls back
UNREFERENCED = "files_unreferenced"  # dropped from rows: deleted if it commits
DUE = "files_due"  # decided: deleted right after the commit, rollback or close
WROTE = "transaction_wrote"  # True once the transaction flushed or ran a write
# {savepoint: (len(UNREFERENCED), len(UPLOADED)) when it began}
SAVEPOINT_MARKS = "files_savepoint_marks"


async def store_file(
    session: AsyncSession,
    storage: Storage,
    data: Data,
    *,
    kind: str,
    extension: str,
    content_type: str,
    width: int | None = None,
    height: int | None = None,
    filename: str | None = None,
    renditions: Sequence[tuple[bytes, int, int]] = (),
) -> StoredFile:
    """Upload a new object under a fresh key, and its smaller `renditions`
    (data, width, height) beside it, tied to the session's transaction."""
    key = new_key(kind, extension)
    planned = [
        Rendition(key=rendition_key(key, width), width=width, height=height, size=len(data))
        for data, width, height in renditions
    ]
    # Remembered before the first byte is sent: if an upload fails halfway,
    # the rollback deletes whatever of it was stored.
    provisional = StoredFile(
        key=key, storage=storage.name, content_type=content_type, size=0, renditions=tuple(planned)
    )
    uploaded: list[StoredFile] = session.info.setdefault(UPLOADED, [])
    uploaded.append(provisional)
    for rendition, (rendition_data, _width, _height) in zip(planned, renditions, strict=True):
        await storage.save(rendition.key, rendition_data, content_type)
    size = await storage.save(key, data, content_type)
    stored = provisional.model_copy(
        update={"size": size, "width": width, "height": height, "filename": filename}
    )
    uploaded[uploaded.index(provisional)] = stored
    return stored


def forget_files(session: AsyncSession, files: Iterable[StoredFile | None]) -> None:
    """Delete these files if the transaction commits.

    For files no row will point at although the transaction goes on: one
    stored for a form that is then shown again with an error (see the account
    form in app/pages/accounts.py). Files of deleted rows, cascades included,
    need no call: the session finds them itself.
    """
    session.info.setdefault(UNREFERENCED, []).extend(file for file in files if file)


def has_writes(session: AsyncSession) -> bool:
    """Whether the session's transaction has written rows or stored files."""
    return bool(session.info.get(WROTE) or session.info.get(UPLOADED))


class FileSyncSession(Session):
    """The synchronous session inside a FileSession: the one the events below
    listen on."""


class FileSession(AsyncSession):
    """An AsyncSession that carries out the file deletions its transactions decided."""

    sync_session_class = FileSyncSession

    async def commit(self) -> None:
        await super().commit()
        await delete_due_files(self)

    async def rollback(self) -> None:
        await super().rollback()
        await delete_due_files(self)

    async def close(self) -> None:
        await super().close()
        # Uploaded, but the transaction neither committed nor rolled back
        # (it never started, or it ended with the close): not referenced by any row.
        leftover = self.info.pop(UPLOADED, [])
        self.info.setdefault(DUE, []).extend(leftover)
        self.info.pop(UNREFERENCED, None)
        self.info.pop(WROTE, None)
        self.info.pop(SAVEPOINT_MARKS, None)
        await delete_due_files(self)


async def delete_due_files(session: AsyncSession) -> None:
    due: list[StoredFile] = session.info.pop(DUE, [])
    for file in due:
        try:
            storage = get_storage(file.storage)
        except LookupError as exc:
            logger.warning("Left %s for the garbage collector: %s", file.key, exc)
            continue
        await delete_or_leave(storage, file.keys)


async def delete_or_leave(storage: Storage, keys: Iterable[str]) -> None:
    """Delete these objects; one that cannot be deleted now is logged and left
    for `python -m app storage gc` (the change that made it unused stands)."""
    for key in keys:
        try:
            await storage.delete(key)
        except StorageError as exc:
            logger.warning("Left %s for the garbage collector: %s", key, exc)


# --- the synchronous part: session events ----------------------------------------


@cache
def _file_attributes(mapper: Mapper[Any]) -> list[str]:
    return [
        mapper.get_property_by_column(column).key
        for column in mapper.columns
        if is_file_column(column)
    ]


def _file_columns(table: Table) -> list[Any]:
    return [column for column in table.columns if is_file_column(column)]


def _cascading_children(table: Table) -> list[tuple[Table, Any, Any]]:
    """(child table, its foreign key column, the column it refers to) for every
    table whose rows the database deletes with `table`'s (ON DELETE CASCADE)."""
    children = []
    for child in table.metadata.tables.values():
        for key in child.foreign_keys:
            if key.column.table is table and (key.ondelete or "").upper() == "CASCADE":
                children.append((child, key.parent, key.column))
    return children


def _cascaded_files(
    session: orm.Session,
    table: Table,
    where: ColumnElement[bool],
    seen: frozenset[Table] = frozenset(),
) -> list[StoredFile]:
    """The files of the rows the database will delete with `table`'s rows that
    match `where`, through every level of ON DELETE CASCADE."""
    files: list[StoredFile] = []
    for child, foreign_key, referred in _cascading_children(table):
        if child in seen:
            continue  # a table that refers to itself: its own rows were read already
        child_where = foreign_key.in_(select(referred).where(where))
        files.extend(_files_of(session, child, child_where, seen | {child}))
    return files


def _files_of(
    session: orm.Session, table: Table, where: ColumnElement[bool], seen: frozenset[Table]
) -> list[StoredFile]:
    """The files of `table`'s rows that match `where`, and of the rows deleted with them."""
    files: list[StoredFile] = []
    columns = _file_columns(table)
    if columns:
        # FOR UPDATE (on PostgreSQL): the rows stay as read until the DELETE,
        # so a picture replaced meanwhile cannot be missed.
        statement = select(*columns).where(where).with_for_update()
        for row in session.execute(statement):
            for value in row:
                files.extend(files_in(value))
    return files + _cascaded_files(session, table, where, seen)


@event.listens_for(FileSyncSession, "do_orm_execute")
def _collect_deleted(state: ORMExecuteState) -> None:
    """A DELETE statement: its rows' files, and those of the rows cascaded."""
    statement = state.statement
    if not (state.is_delete and isinstance(statement, Delete)):
        return
    # The statement names an annotated copy of the table; the mapper has the
    # table itself, which the foreign keys of other tables refer to.
    mapper = state.bind_mapper
    table = mapper.local_table if mapper is not None else statement.table
    if not isinstance(table, Table):
        return
    where = statement.whereclause if statement.whereclause is not None else true()
    files = _files_of(state.session, table, where, frozenset({table}))
    state.session.info.setdefault(UNREFERENCED, []).extend(files)


@event.listens_for(FileSyncSession, "before_flush")
def _collect_unreferenced(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    unreferenced = session.info.setdefault(UNREFERENCED, [])
    for instance in session.dirty:
        state = inspect(instance)
        for key in _file_attributes(state.mapper):
            # history.deleted holds the value the row had before this change;
            # of a list, only the files the new list no longer holds.
            history = state.attrs[key].history
            kept = {file.key for value in history.added for file in files_in(value)}
            for old in history.deleted:
                unreferenced.extend(file for file in files_in(old) if file.key not in kept)
    for instance in session.deleted:
        state = inspect(instance)
        for key in _file_attributes(state.mapper):
            unreferenced.extend(files_in(state.dict.get(key)))
        table = state.mapper.local_table
        if isinstance(table, Table):
            key_columns = state.mapper.primary_key
            where = and_(
                *(
                    column == value
                    for column, value in zip(key_columns, state.identity, strict=True)
                )
            )
            with session.no_autoflush:
                unreferenced.extend(_cascaded_files(session, table, where, frozenset({table})))


@event.listens_for(FileSyncSession, "after_flush")
def _note_flush(session: Session, _flush: UOWTransaction) -> None:
    session.info[WROTE] = True


@event.listens_for(FileSyncSession, "do_orm_execute")
def _note_write(state: ORMExecuteState) -> None:
    # An UPDATE or DELETE statement (or anything else that is not a SELECT)
    # writes without a flush.
    if not state.is_select:
        state.session.info[WROTE] = True


@event.listens_for(FileSyncSession, "after_commit")
def _commit_files(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint released: its changes join the outer transaction, which decides.
        session.info.get(SAVEPOINT_MARKS, {}).pop(session.get_nested_transaction(), None)
        return
    session.info.pop(SAVEPOINT_MARKS, None)
    session.info.pop(WROTE, None)
    session.info.pop(UPLOADED, None)
    session.info.setdefault(DUE, []).extend(session.info.pop(UNREFERENCED, []))


@event.listens_for(FileSyncSession, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks = session.info.setdefault(SAVEPOINT_MARKS, {})
        marks[transaction] = (
            len(session.info.get(UNREFERENCED, [])),
            len(session.info.get(UPLOADED, [])),
        )


@event.listens_for(FileSyncSession, "after_soft_rollback")
def _roll_back_files(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested and previous.parent is not None:
        # A failed flush's own subtransaction: the savepoint or transaction
        # around it rolls back next, and decides.
        return
    if previous.nested:
        # A savepoint rolled back: its rows point at their old files again,
        # so the files it stopped referencing stay, and the files uploaded
        # within it are referenced by nothing.
        mark = session.info.get(SAVEPOINT_MARKS, {}).pop(previous, None)
        if mark is not None:
            unreferenced_before, uploaded_before = mark
            del session.info.get(UNREFERENCED, [])[unreferenced_before:]
            uploaded = session.info.get(UPLOADED, [])
            session.info.setdefault(DUE, []).extend(uploaded[uploaded_before:])
            del uploaded[uploaded_before:]
        return
    session.info.pop(SAVEPOINT_MARKS, None)
    session.info.pop(WROTE, None)
    session.info.setdefault(DUE, []).extend(session.info.pop(UPLOADED, []))
    session.info.pop(UNREFERENCED, None)
