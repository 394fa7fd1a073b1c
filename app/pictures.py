"""A row's picture: profile pictures and post covers alike.

An upload becomes a stored picture with `store_upload` (app/uploads.py),
under the field's policy: checked, re-encoded with its renditions in the
image threads, and uploaded before the commit. `set_image` then points the
row at it (or at nothing); the file it pointed at before is deleted once the
transaction commits. `regenerate_renditions` gives stored pictures the
renditions their preset asks for today.

Storing comes before the request's first write where it can: on SQLite a
write holds the database's one write lock until the commit, and an upload to
S3 can take seconds. Routes load the row and check who may change it first
(`OwnPost`, `OwnAccount`), so the work is only ever done for its owner.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Table, inspect, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.images import ImagePreset, renditions_of
from app.models import Post, User, utcnow
from app.policies import FilePolicy, policy_of
from app.storage import Rendition, StoredFile, get_storage
from app.storage.base import ObjectExists, rendition_key
from app.storage.lifecycle import delete_or_leave


def profile_picture_policy(settings: Settings) -> FilePolicy:
    """`User.image`'s policy, its pictures made at AVATAR_SIZE."""
    return policy_of(User, "image").with_image_size(settings.avatar_size)


class HasImage(Protocol):
    """A table with a picture: `User` and `Post`."""

    image: StoredFile | None
    updated_at: datetime


async def set_image(session: AsyncSession, row: HasImage, file: StoredFile | None) -> None:
    """Give the row this stored picture, or none; the one it had is deleted
    after the commit."""
    if file is None and row.image is None:
        return
    row.image = file
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()


@dataclass
class RegenerationReport:
    checked: int = 0
    rebuilt: int = 0
    # Rows a request changed while their copies were made: left for the next run.
    changed_meanwhile: int = 0


async def regenerate_renditions(
    sessionmaker: async_sessionmaker[AsyncSession],
    policies: Sequence[tuple[type[User] | type[Post], FilePolicy]],
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
    for model, policy in policies:
        preset = policy.image
        assert preset is not None, f"{model.__name__}'s policy makes no pictures"
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
