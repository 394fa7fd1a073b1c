"""Moving every stored file to another backend: `python -m app storage migrate --to s3`.

Row by row, in batches: each file is copied to the target under the same key
(keys are never reused, so an object already there is this file, copied
before an interruption), the row is pointed at the target, the batch commits,
and only then are the sources deleted. Stopped at any point, the database
names a backend that holds each file; run again, it goes on where it stopped,
and once everything has moved it does nothing.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import MetaData, Table, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.storage.base import ObjectExists, Storage, StorageError
from app.storage.fields import StoredFile, files_in, is_file_column
from app.storage.registry import get_storage

BATCH_SIZE = 100

logger = logging.getLogger(__name__)


@dataclass
class MigrationReport:
    moved: int = 0
    already_there: int = 0


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
        last = None
        while True:
            statement = select(key_column, *(table.c[name] for name in names))
            if last is not None:
                statement = statement.where(key_column > last)
            statement = statement.order_by(key_column).limit(batch_size)
            moved: list[StoredFile] = []
            async with sessionmaker() as session:
                rows = (await session.exec(statement)).all()
                for row_key, *values in rows:
                    changes: dict[str, object] = {}
                    for name, value in zip(names, values, strict=True):
                        elsewhere = [f for f in files_in(value) if f.storage != target.name]
                        if not elsewhere:
                            continue
                        copies = {f.key: await _copy(f, target, report) for f in elsewhere}
                        moved.extend(elsewhere)
                        if isinstance(value, StoredFile):
                            changes[name] = copies[value.key]
                        else:
                            changes[name] = [copies.get(f.key, f) for f in files_in(value)]
                    if changes:
                        await session.exec(
                            update(table).where(key_column == row_key).values(changes)
                        )
                await session.commit()
            # The rows point at the copies now: the sources can go.
            for file in moved:
                for key in file.keys:
                    try:
                        await get_storage(file.storage).delete(key)
                    except StorageError as exc:
                        logger.warning("Left %s for the garbage collector: %s", key, exc)
            report.moved += len(moved)
            if moved:
                progress(f"{table.name}: {len(moved)} files moved to {target.name}")
            if len(rows) < batch_size:
                break
            last = rows[-1][0]
    return report


async def _copy(file: StoredFile, target: Storage, report: MigrationReport) -> StoredFile:
    """The file and its renditions copied to `target`, as the row will name them."""
    source = get_storage(file.storage)
    for key in file.keys:
        data = await source.read(key)
        try:
            await target.save(key, data, file.content_type)
        except ObjectExists:
            report.already_there += 1
    return file.model_copy(update={"storage": target.name})
