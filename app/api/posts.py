"""JSON routes for posts."""

from typing import Annotated

from fastapi import APIRouter, File, Path, Request, Response, UploadFile, status
from sqlmodel.ext.asyncio.session import AsyncSession

from app import attachments, likes, pictures, posts, search
from app.db import end_read_only_transaction
from app.deps import (
    CurrentUser,
    CursorText,
    ImagesDep,
    ImageUpload,
    Limit,
    OptionalUser,
    OwnPost,
    PostId,
    Publisher,
    RemovablePost,
    SearchText,
    SessionDep,
    StorageDep,
    TagFilter,
)
from app.errors import NotFound
from app.models import (
    AttachmentPublic,
    Post,
    PostCreate,
    PostPublic,
    PostsPublic,
    PostUpdate,
    User,
)
from app.pagination import PostPage, read_position, read_rank, write_cursor
from app.policies import policy_of
from app.storage import get_storage
from app.uploads import store_accepted, store_upload

router = APIRouter(prefix="/api/posts", tags=["posts"])


async def page_of_posts(
    request: Request, session: AsyncSession, page: PostPage, user: User | None
) -> dict[str, object]:
    """A page as `PostsPublic`, with the cursor of the next one, and which of
    its posts `user` likes (one statement for the page)."""
    liked = await likes.liked_among(session, user, page.posts)
    return {
        "posts": [public_post(post, post.id in liked) for post in page.posts],
        "limit": page.limit,
        "has_more": page.has_more,
        "next_cursor": write_cursor(request, page.next),
    }


def public_post(post: Post, liked_by_me: bool) -> PostPublic:
    return PostPublic.model_validate(post, update={"liked_by_me": liked_by_me})


async def _public(session: AsyncSession, post: Post, user: User | None) -> PostPublic:
    """The post as the API shows it to `user`."""
    return public_post(post, await likes.likes_post(session, user, post))


@router.get("", response_model=PostsPublic)
async def list_posts(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    cursor: CursorText = None,
    limit: Limit = 10,
    tag: TagFilter = None,
    q: SearchText = None,
) -> dict[str, object]:
    """Everyone's posts (or those with `tag`), newest first; with `q`, those
    matching all its words, best first (a match in the title first; a blank
    `q` is no search). While
    `has_more` is true, pass `next_cursor` back as `cursor` for the next page.
    With a token, `liked_by_me` says which ones you like."""
    if q is not None and q.strip():
        after = read_rank(request, cursor)
        page = await search.search_posts(session, q, limit=limit, after=after, tag=tag)
    else:
        after_date = read_position(request, cursor)
        page = await posts.list_posts(session, limit=limit, after=after_date, tag=tag)
    return await page_of_posts(request, session, page, user)


@router.post("", response_model=PostPublic, status_code=status.HTTP_201_CREATED)
async def create_post(data: PostCreate, session: SessionDep, current_user: Publisher) -> PostPublic:
    """Publish a post as the logged-in user."""
    return public_post(await posts.create_post(session, current_user, data), liked_by_me=False)


@router.get("/{post_id}", response_model=PostPublic)
async def read_post(post_id: PostId, session: SessionDep, user: OptionalUser) -> PostPublic:
    """One post with its author."""
    return await _public(session, await posts.get_post(session, post_id), user)


@router.patch("/{post_id}", response_model=PostPublic)
async def update_post(post: OwnPost, data: PostUpdate, session: SessionDep) -> PostPublic:
    """Change some fields of your own post."""
    return await _public(session, await posts.update_post(session, post, data), post.author)


@router.put("/{post_id}", response_model=PostPublic)
async def replace_post(post: OwnPost, data: PostCreate, session: SessionDep) -> PostPublic:
    """Replace the title and content of your own post."""
    return await _public(session, await posts.update_post(session, post, data), post.author)


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_post(post: RemovablePost, session: SessionDep) -> None:
    """Delete your own post (an admin: any post). Its comments, likes and
    files go with it."""
    await posts.delete_post(session, post)


@router.patch("/{post_id}/image", response_model=PostPublic)
async def set_image(
    post: OwnPost, file: ImageUpload, session: SessionDep, images: ImagesDep, storage: StorageDep
) -> PostPublic:
    """Upload a cover image for your post (at most 1600 pixels on its longer side
    once stored); the previous one is deleted."""
    policy = policy_of(Post, "image")
    cover = await store_upload(session, storage, images, file, policy, user=post.user_id)
    await pictures.set_image(session, post, cover)
    return await _public(session, post, post.author)


@router.delete("/{post_id}/image", response_model=PostPublic)
async def remove_image(post: OwnPost, session: SessionDep) -> PostPublic:
    """Remove your post's cover image."""
    await pictures.set_image(session, post, None)
    return await _public(session, post, post.author)


@router.put("/{post_id}/like", status_code=status.HTTP_204_NO_CONTENT)
async def like_post(post_id: PostId, session: SessionDep, user: CurrentUser) -> None:
    """Like a post (liking it again changes nothing)."""
    await likes.like(session, await posts.get_post_row(session, post_id), user)


@router.delete("/{post_id}/like", status_code=status.HTTP_204_NO_CONTENT)
async def unlike_post(post_id: PostId, session: SessionDep, user: CurrentUser) -> None:
    """Take your like back (if there is none, nothing changes)."""
    await likes.unlike(session, await posts.get_post_row(session, post_id), user)


AttachmentId = Annotated[str, Path(max_length=32, description="The attachment's id.")]


@router.post(
    "/{post_id}/attachments",
    response_model=AttachmentPublic,
    status_code=status.HTTP_201_CREATED,
)
async def add_attachment(
    post: OwnPost,
    file: Annotated[UploadFile, File(description="A PDF, JPEG, PNG, WebP or GIF file.")],
    session: SessionDep,
    images: ImagesDep,
    storage: StorageDep,
) -> AttachmentPublic:
    """Attach a file to your post (at most 5 per post), kept as it was sent."""
    (checked,) = await attachments.check_attachments(
        session, images, post, [file], owner=post.author
    )
    stored = await store_accepted(session, storage, checked)
    await attachments.add_attachments(session, post, [stored])
    return post.attachments_public[-1]


@router.get("/{post_id}/attachments/{attachment_id}", response_class=Response)
async def download_attachment(
    post_id: PostId, attachment_id: AttachmentId, session: SessionDep
) -> Response:
    """The attached file, as a download under the name it was sent with."""
    post = await posts.get_post(session, post_id)
    file = attachments.find_attachment(post, attachment_id)
    # Reading the file can take a while (S3): the connection goes back first.
    await end_read_only_transaction(session)
    try:
        data = await get_storage(file.storage).read(file.key)
    except (FileNotFoundError, LookupError):
        # Removed (or moved) by another request since the post was read, or
        # kept by a storage backend that is no longer configured.
        raise NotFound("Attachment not found.") from None
    fallback = f"attachment.{file.key.rsplit('.', 1)[-1]}"
    return Response(
        data,
        media_type=file.content_type,
        headers={
            "Content-Disposition": attachments.content_disposition(file.filename, fallback),
            # Never sniffed into something a browser would run.
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.delete("/{post_id}/attachments/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_attachment(
    post: OwnPost, attachment_id: AttachmentId, session: SessionDep
) -> None:
    """Remove an attachment from your post; its file is deleted."""
    await attachments.remove_attachment(session, post, attachment_id)
