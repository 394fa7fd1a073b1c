"""Likes: one per user and post, and a count on the post kept with them.

Liking is idempotent: the (post, user) pair is the key, and the insert is
`ON CONFLICT DO NOTHING`, so twenty requests at once add one like. The
post's `like_count` changes in the same transaction, and only when a row was
really added or removed, in SQL (`like_count = like_count + 1`), so counts
stay right under concurrent likes. Whether the asker likes each post of a
page is one statement for the whole page (`liked_among`).
"""

from collections.abc import Sequence

from sqlalchemy import Table, delete, inspect, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Like, Post, User


async def like(session: AsyncSession, post: Post, user: User) -> None:
    """The user likes the post (again: no change)."""
    table = inspect(Like).local_table
    assert isinstance(table, Table)
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    added = await session.exec(
        insert(table).values(post_id=post.id, user_id=user.id).on_conflict_do_nothing()
    )
    if added.rowcount == 1:
        await _count(session, post, +1)


async def unlike(session: AsyncSession, post: Post, user: User) -> bool:
    """The user no longer likes the post: whether they did."""
    removed = await session.exec(
        delete(Like).where(col(Like.post_id) == post.id, col(Like.user_id) == user.id)
    )
    if removed.rowcount != 1:
        return False
    await _count(session, post, -1)
    return True


async def toggle(session: AsyncSession, post: Post, user: User) -> bool:
    """Like the post, or take the like back: whether the user likes it now."""
    if await unlike(session, post, user):
        return False
    await like(session, post, user)
    return True


async def liked_among(session: AsyncSession, user: User | None, posts: Sequence[Post]) -> set[int]:
    """The ids of these posts that `user` likes: one statement, none for a visitor."""
    ids = [post.id for post in posts if post.id is not None]
    if user is None or not ids:
        return set()
    statement = select(Like.post_id).where(col(Like.user_id) == user.id, col(Like.post_id).in_(ids))
    return set((await session.exec(statement)).all())


async def _count(session: AsyncSession, post: Post, change: int) -> None:
    result = await session.exec(
        update(Post)
        .where(col(Post.id) == post.id)
        .values(like_count=col(Post.like_count) + change)
        .returning(col(Post.like_count))
        # Not an edit: the post's version (updated_at) stays, so a like never
        # makes an edit made at the same moment fail.
        .execution_options(synchronize_session=False)
    )
    # The post in hand shows the new count, as the database has it.
    set_committed_value(post, "like_count", result.scalar_one())
