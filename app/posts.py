"""Queries and rules for posts, shared by the JSON API and the pages."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import selectinload
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Forbidden, NotFound
from app.images import ProcessedImage, save_image
from app.models import Post, PostCreate, PostUpdate, User, utcnow
from app.storage import Storage, StoredFile


@dataclass(frozen=True, slots=True)
class PostPage:
    posts: Sequence[Post]
    total: int
    skip: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.skip + len(self.posts) < self.total


async def list_posts(
    session: AsyncSession, *, skip: int, limit: int, author_id: int | None = None
) -> PostPage:
    """Newest first. Three statements whatever the page size: count, posts, authors."""
    count = select(func.count()).select_from(Post)
    page = (
        select(Post)
        # selectinload fetches every author of the page in one extra query;
        # without it, post.author would raise (the relationship is lazy="raise").
        .options(selectinload(Post.author))  # type: ignore[arg-type]
        .order_by(col(Post.date_posted).desc(), col(Post.id).desc())
        .offset(skip)
        .limit(limit)
    )
    if author_id is not None:
        count = count.where(Post.user_id == author_id)
        page = page.where(Post.user_id == author_id)
    total = (await session.exec(count)).one()
    posts = (await session.exec(page)).all()
    return PostPage(posts=posts, total=total, skip=skip, limit=limit)


async def get_post(session: AsyncSession, post_id: int) -> Post:
    post = await session.get(
        Post,
        post_id,
        options=[selectinload(Post.author)],  # type: ignore[arg-type]
    )
    if post is None:
        raise NotFound("Post not found.")
    return post


def ensure_author(post: Post, user: User) -> None:
    if post.user_id != user.id:
        raise Forbidden("Only the author can change this post.")


async def create_post(
    session: AsyncSession, author: User, data: PostCreate, *, image: StoredFile | None = None
) -> Post:
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
    session: AsyncSession, storage: Storage, post: Post, image: ProcessedImage, filename: str | None
) -> Post:
    """Store a new cover image; the old one is deleted after the commit."""
    post.image = await save_image(session, storage, image, kind="posts", filename=filename)
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
