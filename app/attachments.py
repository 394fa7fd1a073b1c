"""Files attached to a post: PDFs and images, judged from their bytes, kept
as they were sent and downloaded with their original name.

A post holds them in one file field that is a list (`Post.attachments`).
Unlike a cover, an attachment is not re-encoded: the reader downloads the
file the author chose. So its type is checked from its content (the declared
type and the name are never trusted), and it is always served as a download
(`Content-Disposition: attachment`), never shown inline.
"""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from fastapi import UploadFile
from PIL import Image
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import end_read_only_transaction
from app.errors import NotFound, Unprocessable
from app.images import ACCEPTED_FORMATS
from app.models import Post, User, utcnow
from app.policies import policy_of
from app.storage import Storage, StoredFile, store_file
from app.uploads import CHUNK_SIZE, UploadRejected, check_upload_size, display_filename
from app.workers import ImageWorkers

# The types we accept: (content type, file extension) by what the bytes are.
PDF = ("application/pdf", "pdf")
IMAGES = {
    "JPEG": ("image/jpeg", "jpg"),
    # A JPEG with more than one picture in it, as many cameras and phones write.
    "MPO": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}
ACCEPTED = "Attach a PDF, JPEG, PNG, WebP or GIF file."


class AttachmentRejected(UploadRejected):
    pass


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    upload: UploadFile
    content_type: str
    extension: str


def identify(source: BinaryIO) -> tuple[str, str]:
    """(content type, extension) from the file's bytes, or AttachmentRejected.

    Synchronous: images are verified by Pillow, which reads the whole file."""
    source.seek(0)
    if source.read(5) == b"%PDF-":
        return PDF
    source.seek(0)
    try:
        # Opened as one of these; a JPEG may turn out to be an MPO.
        with Image.open(source, formats=ACCEPTED_FORMATS) as image:
            accepted = IMAGES.get(image.format or "")
            image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        accepted = None
    finally:
        source.seek(0)
    if accepted is None:
        raise AttachmentRejected(f"This file is not one we accept. {ACCEPTED}")
    return accepted


async def check_attachments(
    session: AsyncSession,
    workers: ImageWorkers,
    post: Post | None,
    uploads: list[UploadFile],
    *,
    owner: User,
) -> list[CheckedUpload]:
    """Each upload checked (count, size, type), before anything is written."""
    policy = policy_of(Post, "attachments")
    already = len(post.attachments) if post else 0
    if already + len(uploads) > policy.max_files:
        raise AttachmentRejected(
            f"A post has at most {policy.max_files} attachments"
            + (f"; this one has {already} already." if already else ".")
        )
    if uploads:
        # Reading and checking them needs no connection: the pool gets it back.
        await end_read_only_transaction(session)
    checked = []
    for upload in uploads:
        await check_upload_size(upload, workers.max_upload_bytes)
        assert owner.id is not None
        content_type, extension = await workers.call(identify, upload.file, user=owner.id)
        if content_type not in policy.accepts:
            raise AttachmentRejected(f"This file is not one we accept. {ACCEPTED}")
        checked.append(CheckedUpload(upload, content_type, extension))
    return checked


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    await upload.seek(0)
    while chunk := await upload.read(CHUNK_SIZE):
        yield chunk


async def store_attachment(
    session: AsyncSession, storage: Storage, checked: CheckedUpload
) -> StoredFile:
    """Upload a checked attachment under a new key, tied to the session's transaction."""
    stored = await store_file(
        session,
        storage,
        _chunks(checked.upload),
        kind="attachments",
        extension=checked.extension,
        content_type=checked.content_type,
        filename=display_filename(checked.upload.filename),
    )
    return stored.model_copy(update={"id": secrets.token_urlsafe(8)})


async def add_attachments(session: AsyncSession, post: Post, files: list[StoredFile]) -> None:
    """Attach stored files to the post (the list is replaced, never changed in
    place, so the session sees the change)."""
    if not files:
        return
    limit = policy_of(Post, "attachments").max_files
    if len(post.attachments) + len(files) > limit:
        raise Unprocessable(f"A post has at most {limit} attachments.")
    post.attachments = [*post.attachments, *files]
    post.updated_at = utcnow()
    session.add(post)
    await session.flush()


def find_attachment(post: Post, attachment_id: str) -> StoredFile:
    for file in post.attachments:
        if file.id == attachment_id:
            return file
    raise NotFound("Attachment not found.")


async def remove_attachment(session: AsyncSession, post: Post, attachment_id: str) -> None:
    """Detach the file; its bytes are deleted after the commit."""
    find_attachment(post, attachment_id)
    post.attachments = [file for file in post.attachments if file.id != attachment_id]
    post.updated_at = utcnow()
    session.add(post)
    await session.flush()


def content_disposition(filename: str | None, fallback: str) -> str:
    """`attachment` with the original name, for every browser (RFC 6266): an
    ASCII-only `filename` and the exact name, UTF-8 and percent-encoded, in
    `filename*`."""
    name = filename or fallback
    ascii_name = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in name
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
