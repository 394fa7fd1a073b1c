"""Queries and rules for posts, shared by the JSON API and the pages."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.orm import joinedload, selectinload
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from app.errors import Forbidden, NotFound
from app.images import ProcessedImage, save_image
from app.models import Post, PostCreate, PostUpdate, User, utcnow
from app.storage import Storage


@dataclass(frozen=True, slots=True)
class PostPage:
    posts: Sequence[Post]
    total: int
    skip: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.skip + len(self.posts) < self.total


# The statements are built once, at import, with bound parameters for what
# changes per request. Building a select() with its options and ordering costs
# more CPU than SQLAlchemy's cached compilation of it; reusing it costs nothing.
# selectinload fetches every author of a page in one more query; without it,
# post.author would raise (the relationship is lazy="raise").
# Of an author, a post shows only the public columns: the email and password
# hash never leave the database for a public page, and every column SQLite
# hands back costs a row conversion. Reading one that was not loaded raises
# rather than querying (raiseload).
_AUTHOR_COLUMNS = (User.id, User.username, User.image)
_WITH_AUTHOR = selectinload(Post.author).load_only(  # type: ignore[arg-type]
    *_AUTHOR_COLUMNS,  # type: ignore[arg-type]
    raiseload=True,
)
_NEWEST_FIRST = (col(Post.date_posted).desc(), col(Post.id).desc())
_BY_AUTHOR = col(Post.user_id) == bindparam("author_id")


def _page_statement(*conditions: ColumnElement[bool]) -> Select[Post, int]:
    # The total rides along as a scalar subquery, which SQLite and PostgreSQL
    # evaluate once per statement: one round trip for the page and its count.
    total = select(func.count()).select_from(Post).where(*conditions).scalar_subquery()
    return (
        select(Post, total.label("total"))
        .where(*conditions)
        .options(_WITH_AUTHOR)
        .order_by(*_NEWEST_FIRST)
        .offset(bindparam("skip"))
        .limit(bindparam("limit"))
    )


_ALL_POSTS = _page_statement()
_AUTHORS_POSTS = _page_statement(_BY_AUTHOR)
_COUNT_ALL = select(func.count()).select_from(Post)
_COUNT_AUTHORS = _COUNT_ALL.where(_BY_AUTHOR)
# One post brings its author in the same statement: for a single row of a
# many-to-one, a JOIN is one round trip where selectinload would be two.
_ONE_POST = (
    select(Post)
    .where(col(Post.id) == bindparam("post_id"))
    .options(
        joinedload(Post.author, innerjoin=True).load_only(  # type: ignore[arg-type]
            *_AUTHOR_COLUMNS,  # type: ignore[arg-type]
            raiseload=True,
        )
    )
)


async def list_posts(
    session: AsyncSession, *, skip: int, limit: int, author_id: int | None = None
) -> PostPage:
    """Newest first. Two statements whatever the page size: posts with their
    total, then their authors (a third, a plain count, only past the last page)."""
    params = {"skip": skip, "limit": limit, "author_id": author_id}
    statement = _ALL_POSTS if author_id is None else _AUTHORS_POSTS
    rows = (await session.exec(statement, params=params)).all()
    if rows:
        total = rows[0][1]
    else:
        count = _COUNT_ALL if author_id is None else _COUNT_AUTHORS
        total = (await session.exec(count, params=params)).one()
    return PostPage(posts=[post for post, _total in rows], total=total, skip=skip, limit=limit)


async def get_post(session: AsyncSession, post_id: int) -> Post:
    post = (await session.exec(_ONE_POST, params={"post_id": post_id})).one_or_none()
    if post is None:
        raise NotFound("Post not found.")
    return post


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
    # Its cover image, if any, is deleted once the transaction commits.
    await session.delete(post)
    await session.flush()


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
