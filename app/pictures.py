"""A row's picture from an upload: one flow for profile pictures and post covers.

1. `prepare_image`: check and re-encode the upload in the image threads,
   holding no database connection meanwhile.
2. `store_image`: upload the result under a new key, before the commit; the
   session deletes it again if the transaction rolls back.
3. `set_image`: point the row at it (or at nothing). The file it pointed
   at before is deleted once the transaction commits. `replace_image` does
   2 and 3.

Storing comes before the request's first write where it can: on SQLite a
write holds the database's one write lock until the commit, and an upload to
S3 can take seconds.

Routes load the row and check who may change it first (`OwnPost`,
`OwnAccount`), so the work here is only ever done for its owner.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fastapi import UploadFile
from sqlalchemy import Table, inspect, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import end_read_only_transaction
from app.images import ImagePreset, ProcessedImage, renditions_of
from app.models import Post, User, utcnow
from app.storage import Rendition, Storage, StoredFile, get_storage, store_file
from app.storage.base import ObjectExists, rendition_key
from app.storage.lifecycle import delete_or_leave
from app.workers import ImageWorkers


class HasImage(Protocol):
    """A table with a picture: `User` and `Post`."""

    image: StoredFile | None
    updated_at: datetime


async def prepare_image(
    session: AsyncSession,
    workers: ImageWorkers,
    upload: UploadFile,
    preset: ImagePreset,
    *,
    owner: User,
) -> ProcessedImage:
    """`preset` made of an upload by `owner` (whose picture or post it is), or
    ImageRejected / UploadTooLarge with a message (ImagesBusy when too many
    images wait already).

    Call it before the request writes anything: it first ends the request's
    read-only transaction, so that the connection goes back to the pool while
    the upload waits for an image thread.
    """
    await end_read_only_transaction(session)
    assert owner.id is not None
    return await workers.process(upload, preset, user=owner.id)


async def store_image(session: AsyncSession, storage: Storage, image: ProcessedImage) -> StoredFile:
    """Upload a processed image under a new key, tied to the session's transaction."""
    return await store_file(
        session,
        storage,
        image.data,
        kind=image.kind,
        extension=image.extension,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        filename=image.filename,
        renditions=image.renditions,
    )


async def set_image(session: AsyncSession, row: HasImage, file: StoredFile | None) -> None:
    """Give the row this stored picture, or none; the one it had is deleted
    after the commit."""
    if file is None and row.image is None:
        return
    row.image = file
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()


async def replace_image(
    session: AsyncSession, storage: Storage, row: HasImage, image: ProcessedImage | None
) -> None:
    """Store the image and give it to the row (None: take the row's away)."""
    file = None if image is None else await store_image(session, storage, image)
    await set_image(session, row, file)


@dataclass
class RegenerationReport:
    checked: int = 0
    rebuilt: int = 0
    # Rows a request changed while their copies were made: left for the next run.
    changed_meanwhile: int = 0


async def regenerate_renditions(
    sessionmaker: async_sessionmaker[AsyncSession],
    presets: Sequence[tuple[type[User] | type[Post], ImagePreset]],
    *,
    progress: Callable[[str], None] = print,
    batch_size: int = 50,
) -> RegenerationReport:
    """Give every stored picture the renditions its preset asks for today.

    Row by row: the missing copies are made from the stored picture and
    uploaded, the row is updated in a transaction of its own (only if no
    request changed it meanwhile), and only after that commit are the copies
    no longer wanted deleted. A row whose renditions
    already match is left alone, so running it again does nothing; a run cut
    short goes on where it stopped.
    """
    report = RegenerationReport()
    for model, preset in presets:
        table = inspect(model).local_table
        assert isinstance(table, Table)
        key_column, image_column, version = table.c.id, table.c.image, table.c.updated_at
        last = 0
        while True:
            statement = (
                select(key_column, image_column, version)
                .where(key_column > last, image_column.is_not(None))
                .order_by(key_column)
                .limit(batch_size)
            )
            async with sessionmaker() as session:
                rows = (await session.exec(statement)).all()
            for row_id, image, updated_at in rows:
                report.checked += 1
                made: list[str] = []
                unwanted: list[str] = []
                rebuilt = await _rebuild(image, preset, made, unwanted)
                if rebuilt is None:
                    continue
                storage = get_storage(image.storage)
                # Only if no request changed the row while the copies were
                # made, with a new version so none can write the old one back.
                async with sessionmaker() as session:
                    result = await session.exec(
                        update(table)
                        .where(key_column == row_id, version == updated_at)
                        .values(image=rebuilt, updated_at=updated_at + timedelta(microseconds=1))
                    )
                    await session.commit()
                if result.rowcount == 1:
                    report.rebuilt += 1
                    await delete_or_leave(storage, unwanted)
                else:
                    report.changed_meanwhile += 1
                    await delete_or_leave(storage, made)
            if rows:
                progress(
                    f"{table.name}: {report.checked} pictures checked, {report.rebuilt} rebuilt"
                )
            if len(rows) < batch_size:
                break
            last = rows[-1][0]
    return report


async def _rebuild(
    image: StoredFile, preset: ImagePreset, made: list[str], unwanted: list[str]
) -> StoredFile | None:
    """The picture with the renditions `preset` asks for, or None if it has them."""
    widths = tuple(w for w in sorted(preset.renditions) if image.width and w < image.width)
    if tuple(r.width for r in image.renditions) == widths:
        return None
    storage = get_storage(image.storage)
    have = {r.width: r for r in image.renditions}
    missing = tuple(w for w in widths if w not in have)
    new = {}
    if missing:
        data = await storage.read(image.key)
        for copy, width, height in await asyncio.to_thread(renditions_of, data, missing):
            key = rendition_key(image.key, width)
            # Already there if a run stopped before its commit: the same copy.
            with contextlib.suppress(ObjectExists):
                await storage.save(key, copy, image.content_type)
                made.append(key)
            new[width] = Rendition(key=key, width=width, height=height, size=len(copy))
    unwanted.extend(r.key for r in image.renditions if r.width not in widths)
    renditions = tuple(have.get(w) or new[w] for w in widths)
    return image.model_copy(update={"renditions": renditions})
