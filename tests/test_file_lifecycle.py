"""Files follow their rows' transactions, on local disk and on S3 (moto_server)."""

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Column, ForeignKey, Integer, Table, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import users
from app.config import Settings
from app.db import TransactionHasWrites, end_read_only_transaction
from app.errors import Conflict
from app.models import User, UserCreate, UserUpdate
from app.storage import FileType, Storage, StoredFile, store_file
from app.storage.gc import collect_garbage
from tests import pictures
from tests.helpers import (
    Account,
    RunningApp,
    create_post,
    delete_account,
    running,
    sign_up,
    stored_files,
)
from tests.s3server import MotoServer

KEY = re.compile(r"(?:avatars|posts)/[A-Za-z0-9_-]+\.webp")


@pytest.fixture
def server_settings(storage_settings: Settings) -> Settings:
    return storage_settings


def storage_of(server: RunningApp) -> Storage:
    storage: Storage = server.app.state.storage
    return storage


async def stored_keys(server: RunningApp) -> set[str]:
    """The files stored, each counted once with its renditions."""
    return await stored_files(storage_of(server))


def key_in(url: str) -> str:
    match = KEY.search(url)
    assert match, url
    return match.group(0)


async def store_picture(session: AsyncSession, server: RunningApp) -> StoredFile:
    return await store_file(
        session,
        storage_of(server),
        b"new picture",
        kind="avatars",
        extension="webp",
        content_type="image/webp",
    )


async def upload_picture(
    client: httpx.AsyncClient, account: Account, filename: str = "me.jpg"
) -> httpx.Response:
    return await client.patch(
        f"/api/users/{account.id}/picture",
        files={"file": (filename, pictures.jpeg(), "image/jpeg")},
        headers=account.headers,
    )


async def picture_key(client: httpx.AsyncClient, account: Account) -> str:
    me = await client.get("/api/users/me", headers=account.headers)
    return key_in(me.json()["image_url"])


async def add_cover(client: httpx.AsyncClient, account: Account, post_id: object) -> str:
    response = await client.patch(
        f"/api/posts/{post_id}/image",
        files={"file": ("cover.jpg", pictures.jpeg(320, 200), "image/jpeg")},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    return key_in(response.json()["image_url"])


async def test_uploaded_picture_is_served_with_long_caching(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    response = await upload_picture(client, alice)
    assert response.status_code == 200
    url = response.json()["image_url"]
    picture = await client.get(url)
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/webp"
    assert picture.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert await stored_keys(server) == {key_in(url)}


async def test_replacing_picture_deletes_old_file_after_commit(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    first = key_in((await upload_picture(client, alice)).json()["image_url"])
    second = key_in((await upload_picture(client, alice)).json()["image_url"])
    assert first != second
    assert await stored_keys(server) == {second}
    assert await picture_key(client, alice) == second


async def test_upload_then_failed_commit_deletes_new_file_and_keeps_row(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await upload_picture(client, alice)
    old = await picture_key(client, alice)
    async with server.app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        user.image = await store_picture(session, server)
        user.email = "bob@example.com"  # taken: the commit fails on the unique constraint
        assert len(await stored_keys(server)) == 2
        with pytest.raises(IntegrityError):
            await session.commit()
        await session.rollback()
    assert await stored_keys(server) == {old}
    assert await picture_key(client, alice) == old
    assert (await client.get("/api/users/me", headers=alice.headers)).json()["username"] == "alice"


async def test_replace_then_rollback_keeps_old_file_and_deletes_new(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    await upload_picture(client, alice)
    old = await picture_key(client, alice)
    async with server.app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        user.image = await store_picture(session, server)
        await session.flush()
        await session.rollback()
    assert await stored_keys(server) == {old}
    assert await picture_key(client, alice) == old


async def test_a_transaction_that_wrote_cannot_be_ended_early(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    """Ending a transaction early (to free its connection during slow work)
    refuses once it has written, so the request's rollback still undoes the
    write and deletes the file it stored."""
    async with server.app.state.sessionmaker() as session:
        session.add(
            User(
                username="carol", username_key="carol", email="carol@example.com", password_hash="x"
            )
        )
        await session.flush()
        with pytest.raises(TransactionHasWrites):
            await end_read_only_transaction(session)
        await session.rollback()
    async with server.app.state.sessionmaker() as session:
        await session.exec(update(User).where(col(User.id) == alice.id).values(username="mallory"))
        with pytest.raises(TransactionHasWrites):
            await end_read_only_transaction(session)
        await session.rollback()
    async with server.app.state.sessionmaker() as session:
        await store_picture(session, server)
        with pytest.raises(TransactionHasWrites):
            await end_read_only_transaction(session)
        await session.rollback()
    async with server.app.state.sessionmaker() as session:
        usernames = set((await session.exec(select(User.username))).all())
    assert usernames == {"alice"}
    assert await stored_keys(server) == set()


async def test_a_read_only_transaction_ends_early_and_its_rows_stay_usable(
    server: RunningApp, alice: Account
) -> None:
    async with server.app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        await end_read_only_transaction(session)
        assert not session.in_transaction()
        user.image = await store_picture(session, server)
        session.add(user)
        await session.commit()
    assert len(await stored_keys(server)) == 1


async def test_a_taken_name_undoes_only_its_own_insert(
    server: RunningApp, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sign-ups at once both pass the check for a free name; the database
    refuses the second INSERT inside a SAVEPOINT, which undoes that INSERT
    alone: what the transaction did before stays until its own end."""

    async def another_request_took_it_just_after(*_args: object, **_kwargs: object) -> None:
        return None

    monkeypatch.setattr(users, "_ensure_unique", another_request_took_it_just_after)
    taken = UserCreate(username="alice", email="other@example.com", password="long enough")
    fresh = UserCreate(username="dave", email="dave@example.com", password="long enough")
    async with server.app.state.sessionmaker() as session:
        me = await session.get(User, alice.id)
        assert me is not None
        await users.update_user(session, me, UserUpdate(email="alicia@example.com"))
        with pytest.raises(Conflict):
            await users.create_user(session, taken)
        await session.commit()
    async with server.app.state.sessionmaker() as session:
        await users.create_user(session, fresh)
        await session.rollback()
    async with server.app.state.sessionmaker() as session:
        emails = set((await session.exec(select(User.email))).all())
    assert emails == {"alicia@example.com"}


async def test_a_savepoint_rolled_back_keeps_the_file_its_row_points_at_again(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    await upload_picture(client, alice)
    old = await picture_key(client, alice)
    async with server.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        savepoint = await session.begin_nested()
        user.image = await store_picture(session, server)
        session.add(user)
        await session.flush()
        await savepoint.rollback()
        await session.commit()
    assert await picture_key(client, alice) == old
    assert await stored_keys(server) == {old}


async def test_a_refused_insert_in_a_savepoint_keeps_what_came_before_it(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await upload_picture(client, alice)
    async with server.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        user.image = new = await store_picture(session, server)
        session.add(user)
        await session.flush()
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                session.add(
                    User(
                        username="bob",
                        username_key="bob",
                        email="other@example.com",
                        password_hash="x",
                    )
                )
        with pytest.raises(TransactionHasWrites):
            await end_read_only_transaction(session)
        await session.commit()
    assert await picture_key(client, alice) == new.key
    assert await stored_keys(server) == {new.key}


async def test_racing_uploads_to_one_row_leave_exactly_its_file(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    covers = [
        client.patch(
            f"/api/posts/{post['id']}/image",
            files={"file": (f"c{n}.jpg", pictures.jpeg(320 + n, 200), "image/jpeg")},
            headers=alice.headers,
        )
        for n in range(4)
    ]
    responses = [
        *await asyncio.gather(*covers),
        *await asyncio.gather(*(upload_picture(client, alice, f"me{n}.jpg") for n in range(4))),
    ]
    # 409 for the losers of the race; 503 (try again) if too many of one
    # user's uploads are queued at once.
    assert {response.status_code for response in responses} <= {200, 409, 503}
    for response in responses:
        if response.status_code != 200:
            assert "try again" in response.json()["detail"].lower()
    cover = (await client.get(f"/api/posts/{post['id']}")).json()["image_url"]
    assert await stored_keys(server) == {key_in(cover), await picture_key(client, alice)}


async def test_session_closed_without_commit_deletes_its_uploads(server: RunningApp) -> None:
    async with server.app.state.sessionmaker() as session:
        await store_picture(session, server)
    assert await stored_keys(server) == set()


async def test_deleting_a_user_deletes_every_file_of_theirs(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await upload_picture(client, alice)
    for number in range(2):
        post = await create_post(client, alice, title=f"alice {number}")
        await add_cover(client, alice, post["id"])
    await create_post(client, alice, title="no cover")
    await upload_picture(client, bob)
    bob_cover = await add_cover(client, bob, (await create_post(client, bob))["id"])
    bob_picture = await picture_key(client, bob)
    assert len(await stored_keys(server)) == 5

    response = await delete_account(client, alice)
    assert response.status_code == 204
    assert await stored_keys(server) == {bob_picture, bob_cover}


@pytest.fixture
async def tables_under_posts(server: RunningApp) -> AsyncIterator[tuple[Table, Table]]:
    """Two tables a learner might add, each with a file field: chapters of a
    post, and pages of a chapter, deleted with them by ON DELETE CASCADE."""
    metadata = SQLModel.metadata
    chapters = Table(
        "test_chapters",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
        Column("file", FileType),
    )
    pages = Table(
        "test_pages",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("chapter_id", ForeignKey("test_chapters.id", ondelete="CASCADE"), nullable=False),
        Column("file", FileType),
    )
    async with server.engine.begin() as connection:
        await connection.run_sync(metadata.create_all, tables=[chapters, pages])
    try:
        yield chapters, pages
    finally:
        async with server.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all, tables=[pages, chapters])
        metadata.remove(pages)
        metadata.remove(chapters)


@pytest.mark.parametrize("deleted", ["post", "author"])
async def test_a_cascade_three_tables_deep_leaves_no_file_behind(
    server: RunningApp,
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    tables_under_posts: tuple[Table, Table],
    deleted: str,
) -> None:
    chapters, pages = tables_under_posts
    post = await create_post(client, alice)
    await add_cover(client, alice, post["id"])
    kept = await add_cover(client, bob, (await create_post(client, bob))["id"])
    async with server.sessionmaker() as session:
        for chapter_id in (1, 2):
            chapter_file = await store_picture(session, server)
            await session.exec(
                insert(chapters).values(id=chapter_id, post_id=post["id"], file=chapter_file)
            )
            for _ in range(2):
                page_file = await store_picture(session, server)
                await session.exec(insert(pages).values(chapter_id=chapter_id, file=page_file))
        await session.commit()
    assert len(await stored_keys(server)) == 1 + 1 + 2 + 4

    if deleted == "post":
        response = await client.delete(f"/api/posts/{post['id']}", headers=alice.headers)
    else:
        response = await delete_account(client, alice)
    assert response.status_code == 204
    assert await stored_keys(server) == {kept}
    async with server.sessionmaker() as session:
        assert (await session.exec(select(pages.c.id))).all() == []


async def test_deleting_a_post_deletes_its_image(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    await add_cover(client, alice, post["id"])
    await client.delete(f"/api/posts/{post['id']}", headers=alice.headers)
    assert await stored_keys(server) == set()


async def test_removing_pictures_deletes_files_and_restores_defaults(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    await upload_picture(client, alice)
    post = await create_post(client, alice)
    await add_cover(client, alice, post["id"])
    removed = await client.delete(f"/api/users/{alice.id}/picture", headers=alice.headers)
    assert removed.status_code == 200
    assert removed.json()["image_url"] == "/static/img/default-avatar.svg"
    cover_removed = await client.delete(f"/api/posts/{post['id']}/image", headers=alice.headers)
    assert cover_removed.status_code == 200
    assert cover_removed.json()["image_url"] is None
    assert await stored_keys(server) == set()


async def test_gc_deletes_exactly_the_old_orphans(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    await upload_picture(client, alice)
    referenced = await picture_key(client, alice)
    storage = storage_of(server)
    old_orphan = "avatars/old-orphan.webp"
    await storage.save(old_orphan, b"left behind by a crash", "image/webp")
    await asyncio.sleep(2.5)  # S3 keeps modification times to the second
    new_orphan = "posts/upload-in-progress.webp"
    await storage.save(new_orphan, b"not committed yet", "image/webp")

    # A grace period that ends halfway between the two orphans' stored times,
    # however long the steps above took on a busy machine.
    times = {stored.key: stored.last_modified async for stored in storage.scan()}
    halfway = times[old_orphan] + (times[new_orphan] - times[old_orphan]) / 2

    def grace() -> timedelta:
        return datetime.now(UTC) - halfway

    async with server.app.state.sessionmaker() as session:
        dry = await collect_garbage(
            session, SQLModel.metadata, storage, older_than=grace(), dry_run=True
        )
        assert [stored.key for stored in dry.deleted] == [old_orphan]
        assert await stored_keys(server) == {referenced, old_orphan, new_orphan}
        report = await collect_garbage(
            session, SQLModel.metadata, storage, older_than=grace(), dry_run=False
        )
    assert [stored.key for stored in report.deleted] == [old_orphan]
    # The picture and its two smaller renditions are referenced by the row.
    assert (report.kept_referenced, report.kept_recent) == (3, 1)
    assert await stored_keys(server) == {referenced, new_orphan}


async def test_storage_outage_is_503_and_the_next_request_after_it_succeeds(
    settings: Settings,
) -> None:
    moto = MotoServer()
    moto.start()
    try:
        bucket = moto.create_bucket()
        s3 = settings.model_copy(
            update={"storage_backend": "s3", "s3_bucket": bucket, "s3_endpoint_url": moto.endpoint}
        )
        async with running(s3) as live, live.client() as client:
            alice = await sign_up(client, "alice")
            await upload_picture(client, alice)
            before = await picture_key(client, alice)
            post = await create_post(client, alice, title="Before the outage")

            moto.stop()
            response = await upload_picture(client, alice)
            assert response.status_code == 503
            assert response.json() == {
                "detail": "File storage is unavailable right now, so nothing was saved. "
                "Please try again in a moment."
            }
            cover = await client.patch(
                f"/api/posts/{post['id']}/image",
                files={"file": ("c.jpg", pictures.jpeg(), "image/jpeg")},
                headers=alice.headers,
            )
            assert cover.status_code == 503
            assert await picture_key(client, alice) == before
            unchanged = (await client.get(f"/api/posts/{post['id']}")).json()
            assert unchanged["image_url"] is None
            assert unchanged["updated_at"] == post["updated_at"]

            moto.start()
            moto.create_bucket(bucket)
            retried = await upload_picture(client, alice)
            assert retried.status_code == 200
            assert key_in(retried.json()["image_url"]) != before
    finally:
        moto.stop()
