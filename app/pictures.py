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

from datetime import datetime
from typing import Protocol

from fastapi import UploadFile
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import end_read_only_transaction
from app.images import ImagePreset, ProcessedImage
from app.models import User, utcnow
from app.storage import Storage, StoredFile, store_file
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
