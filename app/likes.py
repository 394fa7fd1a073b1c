"""Likes: one per user and post, and a count on the post kept with them.

Liking is idempotent: the (post, user) pair is the key, and the insert is
`ON CONFLICT DO NOTHING`, so twenty requests at once add one like. The
post's `like_count` changes in the same transaction, and only when a row was
really added or removed, in SQL (`like_count = like_count + 1`), so counts
stay right under concurrent likes. Whether the asker likes each post of a
page is one statement for the whole page (`liked_among`).
"""

from collections.abc import Sequence

from sqlalchemy import delete, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import insert_for_conflicts
from app.models import Like, Post, User
from app.posts import change_post_counter


async def like(session: AsyncSession, post: Post, user: User) -> None:
    """The user likes the post (again: no change)."""
    insert = await insert_for_conflicts(session, Like)
    added = await session.exec(
        insert.values(post_id=post.id, user_id=user.id).on_conflict_do_nothing()
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


async def likes_post(session: AsyncSession, user: User | None, post: Post) -> bool:
    """Whether `user` likes the post (a visitor likes nothing)."""
    return bool(await liked_among(session, user, [post]))


async def liked_among(session: AsyncSession, user: User | None, posts: Sequence[Post]) -> set[int]:
    """The ids of these posts that `user` likes: one statement, none for a visitor."""
    ids = [post.id for post in posts if post.id is not None]
    if user is None or not ids:
        return set()
    statement = select(Like.post_id).where(col(Like.user_id) == user.id, col(Like.post_id).in_(ids))
    return set((await session.exec(statement)).all())


async def forget_likes_of(session: AsyncSession, user: User) -> None:
    """Before a user is deleted (their likes go with them, ON DELETE CASCADE):
    take their likes out of the counts of the posts they liked."""
    liked = select(Like.post_id).where(col(Like.user_id) == user.id)
    await session.exec(
        update(Post)
        .where(col(Post.id).in_(liked))
        .values(like_count=col(Post.like_count) - 1)
        .execution_options(synchronize_session=False)
    )


async def _count(session: AsyncSession, post: Post, change: int) -> None:
    assert post.id is not None
    count = await change_post_counter(session, post.id, "like_count", change)
    # The post in hand shows the new count, as the database has it.
    set_committed_value(post, "like_count", count)
