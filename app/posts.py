"""Queries and rules for posts, shared by the JSON API and the pages."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, tuple_, update
from sqlalchemy.orm import joinedload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Forbidden, NotFound
from app.images import ProcessedImage, save_image
from app.models import Post, PostCreate, PostUpdate, User, utcnow
from app.pagination import Position
from app.storage import Storage, forget_files


@dataclass(frozen=True, slots=True)
class PostPage:
    posts: Sequence[Post]
    limit: int
    # Where the next page starts; None on the last page.
    next: Position | None

    @property
    def has_more(self) -> bool:
        return self.next is not None


# Each post's author comes in the same statement. joinedload suits a
# many-to-one: a JOIN adds the author's columns to the post's row, one round
# trip for the whole page, where selectinload would take a second statement.
# Only the public columns come along: the email and password hash never leave
# the database for a public page, and reading a column that was not loaded
# raises instead of querying (raiseload). Without the option, `post.author`
# raises: the relationship is lazy="raise".
WITH_AUTHOR = joinedload(Post.author, innerjoin=True).load_only(  # type: ignore[arg-type]
    User.id,  # type: ignore[arg-type]
    User.username,  # type: ignore[arg-type]
    User.image,  # type: ignore[arg-type]
    raiseload=True,
)


async def list_posts(
    session: AsyncSession,
    *,
    limit: int,
    after: Position | None = None,
    author_id: int | None = None,
) -> PostPage:
    """Newest first, ties broken by id, `limit` posts after `after`: one statement.

    The order matches an index (see `Post.__table_args__`), so the database
    walks the index from `after` and stops after `limit + 1` rows, at any
    table size: no sort, no offset, no count. The extra row only says whether
    another page follows.
    """
    conditions: list[ColumnElement[bool]] = []
    if author_id is not None:
        conditions.append(col(Post.user_id) == author_id)
    if after is not None:
        # (date_posted, id) < (after's): a row-value comparison, which both
        # databases answer with a range scan of the index.
        conditions.append(
            tuple_(col(Post.date_posted), col(Post.id)) < tuple_(after.date_posted, after.id)
        )
    statement = (
        select(Post)
        .where(*conditions)
        .options(WITH_AUTHOR)
        .order_by(col(Post.date_posted).desc(), col(Post.id).desc())
        .limit(limit + 1)
    )
    posts = (await session.exec(statement)).all()
    if len(posts) <= limit:
        return PostPage(posts=posts, limit=limit, next=None)
    last = posts[limit - 1]
    assert last.id is not None
    return PostPage(posts=posts[:limit], limit=limit, next=Position(last.date_posted, last.id))


async def get_post(session: AsyncSession, post_id: int) -> Post:
    statement = select(Post).where(col(Post.id) == post_id).options(WITH_AUTHOR)
    post = (await session.exec(statement)).one_or_none()
    if post is None:
        raise NotFound("Post not found.")
    return post


async def change_post_count(session: AsyncSession, author_id: int, change: int) -> None:
    """Add `change` to the author's post count, in the transaction that adds or
    deletes the posts.

    The author page shows the count; counting the author's posts on every
    visit would cost more the more they write. The increment happens in SQL
    (`post_count = post_count + 1`), so two posts published at once by one
    author both count: read-modify-write in Python would lose one.
    """
    await session.exec(
        update(User)
        .where(col(User.id) == author_id)
        .values(post_count=col(User.post_count) + change)
        # The rows in the session need not learn the new count now.
        .execution_options(synchronize_session=False)
    )


def ensure_author(post: Post, user: User) -> None:
    if post.user_id != user.id:
        raise Forbidden("Only the author can change this post.")


async def create_post(
    session: AsyncSession,
    author: User,
    data: PostCreate,
    *,
    storage: Storage | None = None,
    cover: ProcessedImage | None = None,
) -> Post:
    """A new post, with its cover image if one is given (stored in `storage`)."""
    image = None
    if cover is not None:
        assert storage is not None, "a cover image needs the storage to keep it in"
        image = await save_image(session, storage, cover, kind="posts")
    post = Post.model_validate(data, update={"user_id": author.id, "image": image})
    post.updated_at = post.date_posted
    # Setting the relationship from an object we hold means no query is needed
    # to serialise post.author afterwards.
    post.author = author
    session.add(post)
    await session.flush()
    await change_post_count(session, post.user_id, +1)
    return post


async def update_post(session: AsyncSession, post: Post, data: PostUpdate | PostCreate) -> Post:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if changes:
        post.sqlmodel_update(changes)
        post.updated_at = utcnow()
        session.add(post)
        await session.flush()
    return post


async def delete_post(session: AsyncSession, post: Post) -> None:
    """Delete the post; its cover image goes once the transaction commits.

    A DELETE statement rather than `session.delete(post)`: the database says
    how many rows it deleted, so when two requests delete one post at once
    (a double click), only the first counts it and the second gets a 404.
    The ORM would only warn that its DELETE matched no row.
    """
    result = await session.exec(delete(Post).where(col(Post.id) == post.id))
    if result.rowcount != 1:
        raise NotFound("Post not found.")
    # The session did not see the row go: it is told about the file, and the
    # object leaves it.
    forget_files(session, [post.image])
    session.expunge(post)
    await change_post_count(session, post.user_id, -1)


async def set_image(
    session: AsyncSession, storage: Storage, post: Post, image: ProcessedImage
) -> Post:
    """Store a new cover image; the old one is deleted after the commit."""
    post.image = await save_image(session, storage, image, kind="posts")
    post.updated_at = utcnow()
    session.add(post)
    await session.flush()
    return post


async def remove_image(session: AsyncSession, post: Post) -> Post:
    if post.image is not None:
        post.image = None
        post.updated_at = utcnow()
        session.add(post)
        await session.flush()
    return post
