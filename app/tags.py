"""A post's tags: a many-to-many between posts and tags (`PostTag`).

`Post.tags` is read with `selectinload` (one more statement for a whole page
of posts, however long the page) and written here: the link rows carry the
post's date, which a plain relationship could not fill in, so that a tag's
list is read off an index like every other list (`app/posts.py`).
"""

from sqlalchemy import delete
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import insert_for_conflicts
from app.models import Post, PostTag, Tag


async def set_tags(session: AsyncSession, post: Post, names: list[str]) -> None:
    """Give the post exactly these tags (already checked: `check_tags`)."""
    assert post.id is not None
    ids = await _tag_ids(session, names)
    await session.exec(
        delete(PostTag).where(
            col(PostTag.post_id) == post.id, col(PostTag.tag_id).not_in(ids.values())
        )
    )
    if ids:
        await session.exec(
            (await insert_for_conflicts(session, PostTag))
            .values(
                [
                    {"post_id": post.id, "tag_id": tag_id, "date_posted": post.date_posted}
                    for tag_id in ids.values()
                ]
            )
            .on_conflict_do_nothing()
        )
    # The post in hand shows its new tags without another query (and
    # without a lazy load, which `lazy="raise"` forbids).
    tags = [Tag(id=tag_id, name=name) for name, tag_id in sorted(ids.items())]
    set_committed_value(post, "tags", tags)


async def _tag_ids(session: AsyncSession, names: list[str]) -> dict[str, int]:
    """{name: id} for these tags, adding the ones that do not exist yet."""
    if not names:
        return {}
    # ON CONFLICT DO NOTHING: two posts given a new tag at the same moment
    # both end up with the one row.
    await session.exec(
        (await insert_for_conflicts(session, Tag))
        .values([{"name": name} for name in names])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    rows = await session.exec(select(Tag.name, Tag.id).where(col(Tag.name).in_(names)))
    return {name: tag_id for name, tag_id in rows.all() if tag_id is not None}
