"""Storing an upload under its field's policy: one call.

    report.file = await store_upload(session, storage, images, upload, REPORT)

It is two steps, which a form that checks several fields before it stores
any of them calls apart:

1. `accept_upload` checks the upload against the policy (app/policies.py):
   its size while it streams, its type from its bytes, and for pictures the
   pixels; a picture is re-encoded in the image threads. No database
   connection is held meanwhile.
2. `store_accepted` uploads the result under a new key, tied to the session's
   transaction: deleted again if it rolls back.

A breach raises `UploadRejected` (422) or `UploadTooLarge` (413) with the
message that the forms show beside the field and the API sends as `detail`.
Starlette has already spooled the upload to a temporary file by the time a
route runs; it is read in chunks from there, so a 10 MB upload never sits
in memory as one 10 MB string.
"""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from fastapi import UploadFile
from PIL import Image
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import end_read_only_transaction
from app.errors import UploadRejected, UploadTooLarge, human_size
from app.images import ACCEPTED_FORMATS, SOURCE_TYPES, ProcessedImage, process
from app.policies import FilePolicy
from app.storage import Storage, StoredFile, store_file
from app.workers import ImageWorkers

CHUNK_SIZE = 64 * 1024

# What the bytes are: (content type, file extension), and the name a user knows.
PDF = ("application/pdf", "pdf")
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}
TYPE_NAMES = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
}


@dataclass(frozen=True, slots=True)
class AcceptedFile:
    """An upload its field's policy accepts, ready to store."""

    policy: FilePolicy
    content_type: str
    extension: str
    # The name the user gave the file, kept as metadata only (never in the key).
    filename: str | None
    # A picture, re-encoded with its renditions; otherwise None, and the
    # upload is stored as it was sent.
    image: ProcessedImage | None = None
    upload: UploadFile | None = None


async def store_upload(
    session: AsyncSession,
    storage: Storage,
    workers: ImageWorkers,
    upload: UploadFile,
    policy: FilePolicy,
    *,
    user: int | None = None,
) -> StoredFile:
    """Check the upload against `policy` and store it, tied to the session's
    transaction (see the module's docstring)."""
    accepted = await accept_upload(session, workers, upload, policy, user=user)
    return await store_accepted(session, storage, accepted)


async def accept_upload(
    session: AsyncSession,
    workers: ImageWorkers,
    upload: UploadFile,
    policy: FilePolicy,
    *,
    user: int | None = None,
) -> AcceptedFile:
    """The upload checked against `policy` (and a picture re-encoded), or
    UploadRejected / UploadTooLarge with a message. `user`: whose upload it
    is, so that one user's uploads wait for each other in the image queue.

    Call it before the request writes anything: it first ends the request's
    read-only transaction, so the connection goes back to the pool while the
    upload waits for an image thread.
    """
    await end_read_only_transaction(session)
    await check_upload_size(upload, policy.max_bytes or workers.max_upload_bytes)
    filename = display_filename(upload.filename)
    if policy.image is not None:
        image = await workers.call(process, upload.file, policy.image, user=user)
        if image.source_type not in policy.accepts:
            raise UploadRejected(_not_accepted(policy))
        return AcceptedFile(policy, image.content_type, image.extension, filename, image=image)
    content_type, extension = await workers.call(identify, upload.file, policy, user=user)
    return AcceptedFile(policy, content_type, extension, filename, upload=upload)


async def store_accepted(
    session: AsyncSession, storage: Storage, accepted: AcceptedFile
) -> StoredFile:
    """Upload an accepted file under a new key, tied to the session's transaction."""
    image, policy = accepted.image, accepted.policy
    stored = await store_file(
        session,
        storage,
        image.data if image else _chunks(accepted.upload),
        kind=policy.kind,
        extension=accepted.extension,
        content_type=accepted.content_type,
        width=image.width if image else None,
        height=image.height if image else None,
        filename=accepted.filename,
        renditions=image.renditions if image else (),
    )
    if policy.max_files > 1:
        # A file in a list is named by an id of its own, not by its place.
        stored = stored.model_copy(update={"id": secrets.token_urlsafe(8)})
    return stored


async def check_upload_size(upload: UploadFile, max_bytes: int) -> None:
    """Read the upload in chunks, refusing it once it passes `max_bytes`, then
    rewind it for whoever reads it next. The chunks are counted, not kept."""
    total = 0
    while chunk := await upload.read(CHUNK_SIZE):
        total += len(chunk)
        if total > max_bytes:
            raise UploadTooLarge(f"The file is too large. The limit is {human_size(max_bytes)}.")
    if total == 0:
        raise UploadRejected("The file is empty. Choose another file.")
    await upload.seek(0)


def identify(source: BinaryIO, policy: FilePolicy) -> tuple[str, str]:
    """(content type, extension) from the file's bytes, if `policy` accepts
    them, or UploadRejected. Synchronous: an image is verified by Pillow,
    which reads the whole file (run it in the image threads)."""
    source.seek(0)
    found: tuple[str, str] | None = None
    if source.read(5) == b"%PDF-":
        found = PDF
    else:
        source.seek(0)
        try:
            # Opened as one of these; a JPEG may turn out to be an MPO.
            with Image.open(source, formats=ACCEPTED_FORMATS) as image:
                content_type = SOURCE_TYPES.get(image.format or "")
                found = (content_type, EXTENSIONS[content_type]) if content_type else None
                image.verify()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            found = None
    source.seek(0)
    if found is None or found[0] not in policy.accepts:
        raise UploadRejected(_not_accepted(policy))
    return found


def _not_accepted(policy: FilePolicy) -> str:
    names = [TYPE_NAMES.get(accepted, accepted) for accepted in policy.accepts]
    choices = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return f"This file is not one we accept. Upload a {choices} file."


async def _chunks(upload: UploadFile | None) -> AsyncIterator[bytes]:
    assert upload is not None
    await upload.seek(0)
    while chunk := await upload.read(CHUNK_SIZE):
        yield chunk


def display_filename(filename: str | None) -> str | None:
    """The name the user gave, as metadata: no directories, no control characters."""
    if not filename:
        return None
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(char for char in name if char.isprintable())
    return name[:255] or None
