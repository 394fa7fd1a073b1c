"""Reading an upload: its size limit, checked while it streams, and the name
the user gave it.

Starlette has already spooled the upload to a temporary file by the time a
route runs; what is checked here is read in chunks from that file, so a 10 MB
upload never sits in memory as one 10 MB string.
"""

from pathlib import PurePosixPath

from fastapi import UploadFile

from app.errors import AppError, human_size

CHUNK_SIZE = 64 * 1024


class UploadRejected(AppError):
    """The file is not one we accept; the message says why, in a user's words."""

    status_code = 422


class UploadTooLarge(UploadRejected):
    status_code = 413


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


def display_filename(filename: str | None) -> str | None:
    """The name the user gave, as metadata: no directories, no control characters."""
    if not filename:
        return None
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(char for char in name if char.isprintable())
    return name[:255] or None
