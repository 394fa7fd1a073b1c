"""Comments under a post: read oldest first a page at a time, written in
Markdown, counted on the post, removed by their author, the post's author or
an admin."""

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Delete, Update, bindparam, delete, tuple_, update
from sqlalchemy.orm import joinedload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Forbidden, NotFound
from app.markdown import to_html
from app.models import Comment, CommentCreate, Post, User
from app.pagination import Position
from app.posts import change_post_counter

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
    # Rows are locked in one order: the commenter, then the post, then the
    # comment (users.delete_user takes a user's row, then the posts under
    # their comments; remove_comment the post, then the comment), so two
    # requests do not each hold what the other waits for (a deadlock). The
    # commenter's row is held in share, as the comment's foreign key would:
    # their account cannot be deleted until this commits. (One case is left:
    # commenting on your own post while deleting your account, which locks
    # your posts first. PostgreSQL then stops one of the two, a 409.)
    commenter = select(User.id).where(col(User.id) == author.id).with_for_update(key_share=True)
    if (await session.exec(commenter)).first() is None:
        raise Forbidden("Your account no longer exists.")
    # The count next: the UPDATE finds the post (none: it was deleted) and
    # locks its row.
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
    # The post's row first, then the comment's: the order in which deleting
    # the post takes them (its comments go by ON DELETE CASCADE). Taken the
    # other way round, the two could wait for each other (a deadlock).
    if not await _lock_posts(session, [comment.post_id]):
        raise NotFound("Comment not found.")
    statement: Delete | Update
    if user.id == comment.user_id:
        statement = delete(Comment)
    else:
        removed_by = POST_AUTHOR if user.id == post_author_id else ADMIN
        statement = update(Comment).values(content="", content_html="", removed_by=removed_by)
    # Only the request that removed it counts it: two at once give one 404.
    removed = await session.exec(
        statement.where(
            col(Comment.id) == comment.id, col(Comment.removed_by).is_(None)
        ).execution_options(synchronize_session=False)
    )
    if removed.rowcount != 1:
        raise NotFound("Comment not found.")
    # The session did not see the statement change the row: the object leaves it.
    session.expunge(comment)
    await _count(session, comment.post_id, -1)


async def forget_comments_of(session: AsyncSession, user: User) -> None:
    """Delete the user's comments and take them out of their posts' counts:
    call it once nothing more of theirs can be added (see users.delete_user)."""
    under = select(Comment.post_id).where(
        col(Comment.user_id) == user.id, col(Comment.removed_by).is_(None)
    )
    # The posts before the comments, as a removal takes them.
    await _lock_posts(session, list((await session.exec(under.distinct())).all()))
    removed = await session.exec(
        delete(Comment)
        .where(col(Comment.user_id) == user.id)
        .returning(col(Comment.post_id), col(Comment.removed_by))
        .execution_options(synchronize_session=False)
    )
    counts = Counter(post_id for post_id, removed_by in removed if removed_by is None)
    if counts:
        # One statement, run for each post with its number.
        decrement = (
            update(Post)
            .where(col(Post.id) == bindparam("post"))
            .values(comment_count=col(Post.comment_count) - bindparam("gone"))
        )
        rows = [{"post": post_id, "gone": gone} for post_id, gone in counts.items()]
        await (await session.connection()).execute(decrement, rows)


async def _lock_posts(session: AsyncSession, post_ids: list[int]) -> list[int]:
    """Lock these posts' rows until the commit, in id order (on PostgreSQL;
    SQLite has one writer at a time anyway); the ids of those that exist."""
    if not post_ids:
        return []
    statement = (
        select(Post.id).where(col(Post.id).in_(post_ids)).order_by(col(Post.id)).with_for_update()
    )
    return [post_id for post_id in (await session.exec(statement)).all() if post_id is not None]


async def _count(session: AsyncSession, post_id: int, change: int) -> None:
    if await change_post_counter(session, post_id, "comment_count", change) is None:
        raise NotFound("Post not found.")
