"""Comments under a post: read oldest first a page at a time, written in
Markdown, counted on the post, removed by their author, the post's author or
an admin."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Delete, Update, delete, func, tuple_, update
from sqlalchemy.orm import joinedload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Forbidden, NotFound
from app.markdown import to_html
from app.models import Comment, CommentCreate, Post, User
from app.pagination import Position

# How many comments a post's page shows at a time.
PER_PAGE = 20
POST_AUTHOR = "post-author"
ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class CommentPage:
    comments: Sequence[Comment]
    limit: int
    # Where the next page starts; None on the last page.
    next: Position | None

    @property
    def has_more(self) -> bool:
        return self.next is not None


async def list_comments(
    session: AsyncSession, post_id: int, *, limit: int, after: Position | None = None
) -> CommentPage:
    """A post's comments, oldest first, `limit` after `after`: one statement,
    read off the index (post_id, created_at, id) from the cursor's place, as
    the post lists are (app/posts.py says more)."""
    conditions: list[ColumnElement[bool]] = [col(Comment.post_id) == post_id]
    if after is not None:
        position = tuple_(after.date_posted, after.id)
        conditions.append(tuple_(col(Comment.created_at), col(Comment.id)) > position)
    statement = (
        select(Comment)
        .where(*conditions)
        # Each comment's author in the same statement (many-to-one: a JOIN).
        .options(joinedload(Comment.author, innerjoin=True))  # type: ignore[arg-type]
        .order_by(col(Comment.created_at), col(Comment.id))
        .limit(limit + 1)
    )
    comments = (await session.exec(statement)).all()
    if len(comments) <= limit:
        return CommentPage(comments=comments, limit=limit, next=None)
    last = comments[limit - 1]
    assert last.id is not None
    return CommentPage(comments[:limit], limit, Position(last.created_at, last.id))


async def add_comment(
    session: AsyncSession, post_id: int, author: User, data: CommentCreate
) -> Comment:
    """A new comment under the post (404 if the post is gone)."""
    html = await asyncio.to_thread(to_html, data.content)
    # The count first: the UPDATE finds the post (none: it was deleted) and
    # locks its row before the comment's foreign key would, so a comment and
    # the post's deletion at the same moment never wait for each other.
    await _count(session, post_id, +1)
    assert author.id is not None
    comment = Comment(post_id=post_id, user_id=author.id, content=data.content, content_html=html)
    # From an object we hold: serialising comment.author needs no query.
    comment.author = author
    session.add(comment)
    await session.flush()
    return comment


async def get_comment(session: AsyncSession, comment_id: int) -> tuple[Comment, int]:
    """The comment with its author, and the id of its post's author."""
    statement = (
        select(Comment, Post.user_id)
        .join(Post, col(Post.id) == Comment.post_id)
        .where(col(Comment.id) == comment_id, col(Comment.removed_by).is_(None))
        .options(joinedload(Comment.author, innerjoin=True))  # type: ignore[arg-type]
    )
    row = (await session.exec(statement)).one_or_none()
    if row is None:
        raise NotFound("Comment not found.")
    return row[0], row[1]


def may_remove(comment: Comment, post_author_id: int, user: User | None) -> bool:
    return user is not None and (user.id in (comment.user_id, post_author_id) or user.is_admin)


async def remove_comment(
    session: AsyncSession, comment: Comment, post_author_id: int, user: User
) -> None:
    """Remove the comment, if `user` may. Its author's own removal deletes it;
    another's leaves its place in the thread, saying who removed it."""
    if not may_remove(comment, post_author_id, user):
        raise Forbidden("Only the comment's author, the post's author or an admin can remove it.")
    statement: Delete | Update
    if user.id == comment.user_id:
        statement = delete(Comment).where(col(Comment.id) == comment.id)
    else:
        removed_by = POST_AUTHOR if user.id == post_author_id else ADMIN
        statement = (
            update(Comment)
            .where(col(Comment.id) == comment.id)
            .values(content="", content_html="", removed_by=removed_by)
        )
    # Only the request that removed it counts it: two at once give one 404.
    removed = await session.exec(
        statement.where(col(Comment.removed_by).is_(None)).execution_options(
            synchronize_session=False
        )
    )
    if removed.rowcount != 1:
        raise NotFound("Comment not found.")
    session.expunge(comment)
    await _count(session, comment.post_id, -1)


async def forget_comments_of(session: AsyncSession, user: User) -> None:
    """Before a user is deleted (their comments go with them, ON DELETE
    CASCADE): take their comments out of the counts of the posts they are under."""
    theirs = (
        select(func.count())
        .where(
            col(Comment.post_id) == Post.id,
            col(Comment.user_id) == user.id,
            col(Comment.removed_by).is_(None),
        )
        .scalar_subquery()
    )
    under = select(Comment.post_id).where(
        col(Comment.user_id) == user.id, col(Comment.removed_by).is_(None)
    )
    await session.exec(
        update(Post)
        .where(col(Post.id).in_(under))
        .values(comment_count=col(Post.comment_count) - theirs)
        .execution_options(synchronize_session=False)
    )


async def _count(session: AsyncSession, post_id: int, change: int) -> None:
    result = await session.exec(
        update(Post)
        .where(col(Post.id) == post_id)
        .values(comment_count=col(Post.comment_count) + change)
        .returning(col(Post.comment_count))
        # Not an edit: the post's version (updated_at) stays.
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        raise NotFound("Post not found.")
