"""Garbage collection: delete stored objects that no row references.

Orphans are rare but possible: a worker killed between upload and commit, or
a delete after commit that failed and was only logged. Objects younger than
the grace period are left alone, since an upload in progress has not been
committed yet.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.storage.base import Storage, StoredObject
from app.storage.fields import files_in, is_file_column


@dataclass
class GarbageReport:
    deleted: list[StoredObject] = field(default_factory=list)
    kept_referenced: int = 0
    kept_recent: int = 0
    # Temporary files of interrupted writes (local disk), removed.
    incomplete: int = 0


async def referenced_keys(session: AsyncSession, metadata: MetaData, storage_name: str) -> set[str]:
    """Every key that some row's file field points at, in any table."""
    keys: set[str] = set()
    for table in metadata.tables.values():
        for column in table.columns:
            if is_file_column(column):
                result = await session.stream_scalars(select(column).where(column.is_not(None)))
                async for value in result:
                    for stored in files_in(value):
                        if stored.storage == storage_name:
                            keys.update(stored.keys)
    return keys


async def collect_garbage(
    session: AsyncSession,
    metadata: MetaData,
    storage: Storage,
    *,
    older_than: timedelta,
    dry_run: bool,
) -> GarbageReport:
    # Objects are listed after the references are read, so an object committed
    # in between is either referenced already or younger than the grace period.
    referenced = await referenced_keys(session, metadata, storage.name)
    cutoff = datetime.now(UTC) - older_than
    report = GarbageReport()
    async for stored in storage.scan():
        if stored.key in referenced:
            report.kept_referenced += 1
        elif stored.last_modified > cutoff:
            report.kept_recent += 1
        else:
            if not dry_run:
                await storage.delete(stored.key)
            report.deleted.append(stored)
    if not dry_run:
        report.incomplete = await storage.remove_incomplete(cutoff)
    return report
