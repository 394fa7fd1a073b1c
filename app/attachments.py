"""Files attached to a post: PDFs and images, judged from their bytes, kept
as they were sent and downloaded with their original name.

A post holds them in one file field that is a list (`Post.attachments`, with
the `ATTACHMENTS` policy). Unlike a cover, an attachment is not re-encoded:
the reader downloads the file the author chose. So its type is checked from
its content (the declared type and the name are never trusted), and it is
always served as a download (`Content-Disposition: attachment`), never shown
inline.
"""

from urllib.parse import quote

from fastapi import UploadFile
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import NotFound, Unprocessable, UploadRejected
from app.models import Post, User, utcnow
from app.policies import policy_of
from app.storage import StoredFile
from app.uploads import AcceptedFile, accept_upload
from app.workers import ImageWorkers


async def check_attachments(
    session: AsyncSession,
    workers: ImageWorkers,
    post: Post | None,
    uploads: list[UploadFile],
    *,
    owner: User,
) -> list[AcceptedFile]:
    """Each upload checked against `Post.attachments`' policy (how many, size,
    type), before anything is written; store them with `store_accepted`."""
    policy = policy_of(Post, "attachments")
    already = len(post.attachments) if post else 0
    if already + len(uploads) > policy.max_files:
        raise UploadRejected(
            f"A post has at most {policy.max_files} attachments"
            + (f"; this one has {already} already." if already else ".")
        )
    return [
        await accept_upload(session, workers, upload, policy, user=owner.id) for upload in uploads
    ]


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
