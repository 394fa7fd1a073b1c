"""Queries and rules for posts, shared by the JSON API and the pages."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, delete, func, tuple_, update
from sqlalchemy.orm import joinedload, selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import search
from app.errors import NotFound
from app.markdown import render_post
from app.models import Post, PostCreate, PostTag, PostUpdate, Tag, User, utcnow
from app.pagination import Position, PostPage
from app.storage import StoredFile
from app.tags import set_tags


async def list_posts(
    session: AsyncSession,
    *,
    limit: int,
    after: Position | None = None,
    author_id: int | None = None,
    tag: str | None = None,
) -> PostPage:
    """Newest first, ties broken by id, `limit` posts after `after`: one statement.

    The order matches an index (see `Post.__table_args__`), so the database
    walks the index from `after` and stops after `limit + 1` rows, at any
    table size: no sort, no offset, no count. The extra row only says whether
    another page follows.
    """
    # A tag's list is ordered by its link rows' copy of the date, which their
    # own index serves (PostTag); the others by the posts' columns.
    date, post_id = (PostTag.date_posted, PostTag.post_id) if tag else (Post.date_posted, Post.id)
    conditions: list[ColumnElement[bool]] = []
    if author_id is not None:
        conditions.append(col(Post.user_id) == author_id)
    if tag is not None:
        tag_id = select(Tag.id).where(Tag.name == tag).scalar_subquery()
        conditions.append(col(PostTag.tag_id) == tag_id)
    if after is not None:
        # (date_posted, id) < (after's): a row-value comparison, which both
        # databases answer with a range scan of the index.
        conditions.append(tuple_(col(date), col(post_id)) < tuple_(after.date_posted, after.id))
    statement = select(Post)
    if tag is not None:
        statement = statement.join(PostTag, col(PostTag.post_id) == Post.id)
    statement = (
        statement.where(*conditions)
        # Each post's author in the same statement. joinedload suits a
        # many-to-one: a JOIN adds the author's columns to the post's row, one
        # round trip for the page, where selectinload would take a second
        # statement. Without it `post.author` raises (lazy="raise").
        .options(joinedload(Post.author, innerjoin=True))  # type: ignore[arg-type]
        # The page's tags in one more statement (selectinload suits a
        # collection: a JOIN would repeat each post once per tag).
        .options(selectinload(Post.tags))  # type: ignore[arg-type]
        .order_by(col(date).desc(), col(post_id).desc())
        .limit(limit + 1)
    )
    posts = (await session.exec(statement)).all()
    if len(posts) <= limit:
        return PostPage(posts=posts, limit=limit, next=None)
    last = posts[limit - 1]
    assert last.id is not None
    return PostPage(posts=posts[:limit], limit=limit, next=Position(last.date_posted, last.id))


async def get_post(session: AsyncSession, post_id: int) -> Post:
    """The post with its author and tags: one statement."""
    statement = (
        select(Post)
        .where(col(Post.id) == post_id)
        .options(joinedload(Post.author, innerjoin=True))  # type: ignore[arg-type]
        # One post's few tags (five at most) join the same statement: the
        # post's row comes once per tag, which costs less than a second round
        # trip. (A page of posts takes selectinload instead: see list_posts.)
        .options(joinedload(Post.tags))  # type: ignore[arg-type]
    )
    # unique(): the rows the tags' JOIN repeated are one post.
    post = (await session.exec(statement)).unique().one_or_none()
    if post is None:
        raise NotFound("Post not found.")
    return post


def may_delete(post: Post, user: User | None) -> bool:
    """Its author may delete a post, and so may an admin."""
    return user is not None and (user.id == post.user_id or user.is_admin)


async def newest_post_id(session: AsyncSession) -> int | None:
    """The largest post id, read off the end of the primary key's index."""
    return (await session.exec(select(func.max(Post.id)))).one()


async def post_changes(
    session: AsyncSession, first: int, stop: int
) -> Sequence[tuple[int | None, datetime]]:
    """(id, updated_at) of the posts with ids from `first` up to `stop`, by id:
    a range scan of the primary key, two columns and no ORM objects."""
    statement = (
        select(Post.id, Post.updated_at)
        .where(col(Post.id) >= first, col(Post.id) < stop)
        .order_by(col(Post.id))
    )
    return (await session.exec(statement)).all()


async def get_post_row(session: AsyncSession, post_id: int) -> Post:
    """The post alone, without its author or tags (one primary-key lookup),
    for changes that need only the row: a like."""
    post = await session.get(Post, post_id)
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


async def change_post_counter(
    session: AsyncSession,
    post_id: int,
    counter: Literal["like_count", "comment_count"],
    change: int,
) -> int | None:
    """Add `change` to a count kept on the post (its likes, its comments), in
    SQL, in the transaction that adds or removes what it counts; the new
    count, or None if the post is gone."""
    column = getattr(Post, counter)
    result = await session.exec(
        update(Post)
        .where(col(Post.id) == post_id)
        .values({counter: column + change})
        .returning(column)
        # Not an edit: the post's version (updated_at) stays, so a like or a
        # comment never makes an edit made at the same moment fail.
        .execution_options(synchronize_session=False)
    )
    count: int | None = result.scalar_one_or_none()
    return count


async def create_post(
    session: AsyncSession, author: User, data: PostCreate, *, image: StoredFile | None = None
) -> Post:
    """A new post, with its cover image if one was stored (app/pictures.py)."""
    rendered = await asyncio.to_thread(render_post, data.content)
    post = Post.model_validate(
        data.model_dump(exclude={"tags"}),
        update={
            "user_id": author.id,
            "image": image,
            "content_html": rendered.html,
            "excerpt": rendered.excerpt,
        },
    )
    post.updated_at = post.date_posted
    # Setting the relationship from an object we hold means no query is needed
    # to serialise post.author afterwards.
    post.author = author
    session.add(post)
    await session.flush()
    await set_tags(session, post, data.tags)
    await search.index_post(session, post, data.tags)
    await change_post_count(session, post.user_id, +1)
    return post


async def update_post(session: AsyncSession, post: Post, data: PostUpdate | PostCreate) -> Post:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    tags = changes.pop("tags", None)
    if "content" in changes and changes["content"] != post.content:
        rendered = await asyncio.to_thread(render_post, changes["content"])
        changes |= {"content_html": rendered.html, "excerpt": rendered.excerpt}
    retagged = tags is not None and tags != post.tag_names
    if retagged:
        await set_tags(session, post, tags)
    if changes or retagged:
        # A new version of the post, new tags included.
        post.sqlmodel_update(changes)
        post.updated_at = utcnow()
        session.add(post)
        await session.flush()
        await search.index_post(session, post, post.tag_names)
    return post


async def delete_post(session: AsyncSession, post: Post) -> None:
    """Delete the post; its cover image goes once the transaction commits
    (the session reads it just before the DELETE: app/storage/lifecycle.py).

    A DELETE statement rather than `session.delete(post)`: the database says
    how many rows it deleted, so when two requests delete one post at once
    (a double click), only the first counts it and the second gets a 404.
    """
    deleted = await session.exec(delete(Post).where(col(Post.id) == post.id))
    if deleted.rowcount != 1:
        raise NotFound("Post not found.")
    # The session did not see the row go: the object leaves it.
    session.expunge(post)
    await change_post_count(session, post.user_id, -1)
