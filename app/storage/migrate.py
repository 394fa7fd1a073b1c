"""Moving every stored file to another backend: `python -m app storage migrate --to s3`.

Row by row: each file is copied to the target under the same key (keys are
never reused, so an object already there is this file, copied before an
interruption), the row is pointed at the target in a transaction of its own
(only if no request changed it meanwhile), and only after that commit are the
sources deleted. Stopped at any point, the database
names a backend that holds each file; run again, it goes on where it stopped,
and once everything has moved it does nothing.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, Table, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.storage.base import ObjectExists, Storage
from app.storage.fields import StoredFile, files_in, is_file_column
from app.storage.lifecycle import delete_or_leave
from app.storage.registry import get_storage

BATCH_SIZE = 100

logger = logging.getLogger(__name__)


@dataclass
class MigrationReport:
    moved: int = 0
    already_there: int = 0
    # Rows left for the next run: changed by a request while being copied,
    # or pointing at a file that is missing.
    changed_meanwhile: int = 0
    missing: int = 0


def _file_tables(metadata: MetaData) -> list[tuple[Table, list[str]]]:
    tables = []
    for table in metadata.sorted_tables:
        names = [column.name for column in table.columns if is_file_column(column)]
        if names:
            tables.append((table, names))
    return tables


async def migrate_files(
    sessionmaker: async_sessionmaker[AsyncSession],
    metadata: MetaData,
    target: Storage,
    *,
    progress: Callable[[str], None] = print,
    batch_size: int = BATCH_SIZE,
) -> MigrationReport:
    report = MigrationReport()
    for table, names in _file_tables(metadata):
        (key_column,) = table.primary_key.columns
        version = table.c.get("updated_at")
        last = None
        while True:
            columns = [key_column, *(table.c[name] for name in names)]
            statement = select(*columns, *([version] if version is not None else []))
            if last is not None:
                statement = statement.where(key_column > last)
            statement = statement.order_by(key_column).limit(batch_size)
            async with sessionmaker() as session:
                rows = (await session.exec(statement)).all()
            for row in rows:
                await _migrate_row(sessionmaker, table, names, row, target, report)
            if rows:
                progress(f"{table.name}: {report.moved} files moved to {target.name} so far")
            if len(rows) < batch_size:
                break
            last = rows[-1][0]
    return report


async def _migrate_row(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: Table,
    names: list[str],
    row: Any,
    target: Storage,
    report: MigrationReport,
) -> None:
    """Copy one row's files, point the row at the copies if it has not changed
    meanwhile, then delete the sources (or, if it has, the copies)."""
    row_key, *values = row[: len(names) + 1]
    version = row[len(names) + 1] if len(row) > len(names) + 1 else None
    changes: dict[str, object] = {}
    moved: list[StoredFile] = []
    made: list[str] = []
    try:
        for name, value in zip(names, values, strict=True):
            elsewhere = [f for f in files_in(value) if f.storage != target.name]
            if not elsewhere:
                continue
            copies = {f.key: await _copy(f, target, report, made) for f in elsewhere}
            moved.extend(elsewhere)
            if isinstance(value, StoredFile):
                changes[name] = copies[value.key]
            else:
                changes[name] = [copies.get(f.key, f) for f in files_in(value)]
    except FileNotFoundError as exc:
        logger.warning("%s %s: a file is missing (%s); row left as it is", table.name, row_key, exc)
        report.missing += 1
        await delete_or_leave(target, made)
        return
    if not changes:
        return
    # The copy takes time; the row is changed only if no request changed it
    # meanwhile (its version, updated_at, is as read), and gets a new version
    # so that a request holding the old row cannot write it back.
    statement = update(table).where(table.primary_key.columns[0] == row_key)
    if version is not None:
        statement = statement.where(table.c.updated_at == version).values(
            updated_at=version + timedelta(microseconds=1)
        )
    async with sessionmaker() as session:
        result = await session.exec(statement.values(changes))
        await session.commit()
    if result.rowcount != 1:
        report.changed_meanwhile += 1
        await delete_or_leave(target, made)
        return
    report.moved += len(moved)
    for file in moved:
        await delete_or_leave(get_storage(file.storage), list(file.keys))


async def _copy(
    file: StoredFile, target: Storage, report: MigrationReport, made: list[str]
) -> StoredFile:
    """The file and its renditions copied to `target`, as the row will name them."""
    source = get_storage(file.storage)
    for key in file.keys:
        data = await source.read(key)
        try:
            await target.save(key, data, file.content_type)
            made.append(key)
        except ObjectExists:
            report.already_there += 1
    return file.model_copy(update={"storage": target.name})
