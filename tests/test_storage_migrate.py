"""Switching STORAGE_BACKEND, then moving the files: no page breaks at any point."""

import re

import httpx
import pytest
from sqlmodel import SQLModel

from app import users
from app.config import Settings
from app.models import User, UserUpdate
from app.storage import StorageError, get_storage
from app.storage.migrate import migrate_files
from tests import pictures
from tests.helpers import Account, RunningApp, add_account, create_post, running
from tests.s3server import MotoServer


def on_s3(settings: Settings, moto: MotoServer, prefix: str = "") -> Settings:
    """The test's settings with new files going to a bucket of their own."""
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": moto.create_bucket(),
            "s3_endpoint_url": moto.endpoint,
            "s3_prefix": prefix,
        }
    )


async def upload(client: httpx.AsyncClient, url: str, account: Account) -> str:
    files = {"file": ("photo.jpg", pictures.jpeg(320, 200), "image/jpeg")}
    response = await client.patch(url, files=files, headers=account.headers)
    assert response.status_code == 200, response.text
    image_url: str = response.json()["image_url"]
    return image_url


async def every_picture_loads(live: RunningApp, client: httpx.AsyncClient) -> list[str]:
    """Each page renders, and each picture on it loads; the pictures' URLs."""
    urls: list[str] = []
    for path in ("/", "/users/1/posts", "/posts/1"):
        page = await client.get(path)
        assert page.status_code == 200, path
        urls += re.findall(r'<img class="(?:cover|avatar)[^"]*" src="([^"]+)"', page.text)
    for url in set(urls):
        if not url.startswith("/static/"):
            picture = await client.get(url.replace("&amp;", "&"))
            assert picture.status_code == 200, url
    return urls


async def keys(name: str) -> set[str]:
    return {stored.key async for stored in get_storage(name).scan()}


async def test_local_to_s3_interrupted_resumed_and_every_page_still_renders(
    settings: Settings, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = settings.model_copy(update={"storage_backend": "local"})
    s3 = on_s3(settings, moto, prefix="media")
    async with running(local) as live, live.client() as client:
        alice = await add_account(live, "alice")
        await upload(client, f"/api/users/{alice.id}/picture", alice)
        for number in range(3):
            post = await create_post(client, alice, title=f"Post {number}")
            await upload(client, f"/api/posts/{post['id']}/image", alice)
        attached = await client.post(
            f"/api/posts/{post['id']}/attachments",
            files={"file": ("notes.pdf", b"%PDF-1.4 notes", "application/pdf")},
            headers=alice.headers,
        )
        assert attached.status_code == 201
        download_url = attached.json()["url"]
        local_keys = await keys("local")
        # The picture with its two renditions, three covers, one attachment.
        assert len(local_keys) == 3 + 3 + 1

    async with running(s3) as live, live.client() as client:
        # Switched, not moved yet: the old pictures still come from local disk.
        assert all(
            "/media/" in url
            for url in await every_picture_loads(live, client)
            if "/static/" not in url
        )

        # Interrupted: the seventh copy fails (the storage went away). The
        # profile picture and its two renditions were the first three, the
        # covers the next three; the last post's attachment is the seventh, so
        # that post's row still names local disk, with its cover copied already.
        target = live.storage
        saving = target.save
        saved = 0

        async def failing_save(*args: object, **kwargs: object) -> int:
            nonlocal saved
            saved += 1
            if saved == 7:
                raise StorageError("the bucket went away")
            return await saving(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(target, "save", failing_save)
        with pytest.raises(StorageError):
            await migrate_files(live.sessionmaker, SQLModel.metadata, target, batch_size=2)
        await every_picture_loads(live, client)
        monkeypatch.undo()

        # Resumed: everything moves, the sources go, every page still renders.
        report = await migrate_files(live.sessionmaker, SQLModel.metadata, target, batch_size=2)
        # Every other row moved before the interruption.
        assert (report.moved, report.already_there) == (2, 1)
        assert await keys("local") == set()
        assert await keys("s3") == local_keys
        urls = await every_picture_loads(live, client)
        assert not any(url.startswith("/media/") for url in urls)
        download = await client.get(download_url)
        assert download.status_code == 200
        assert download.content == b"%PDF-1.4 notes"

        again = await migrate_files(live.sessionmaker, SQLModel.metadata, target)
        assert (again.moved, again.already_there) == (0, 0)


async def test_rows_on_a_backend_no_longer_configured_still_render(
    settings: Settings, moto: MotoServer
) -> None:
    s3 = on_s3(settings, moto)
    async with running(s3) as live, live.client() as client:
        alice = await add_account(live, "alice")
        await upload(client, f"/api/users/{alice.id}/picture", alice)
        post = await create_post(client, alice)
        await upload(client, f"/api/posts/{post['id']}/image", alice)

    local_only = settings.model_copy(update={"storage_backend": "local", "s3_bucket": None})
    async with running(local_only) as live, live.client() as client:
        for path in ("/", f"/users/{alice.id}/posts", f"/posts/{post['id']}"):
            assert (await client.get(path)).status_code == 200
        shown = (await client.get(f"/api/posts/{post['id']}")).json()
        assert shown["image_url"] is None
        assert shown["author"]["image_url"] == "/static/img/default-avatar.svg"


async def test_a_row_changed_while_its_files_are_copied_waits_for_the_next_run(
    settings: Settings, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = settings.model_copy(update={"storage_backend": "local"})
    s3 = on_s3(settings, moto)
    async with running(local) as live, live.client() as client:
        alice = await add_account(live, "alice")
        await upload(client, f"/api/users/{alice.id}/picture", alice)
        local_keys = await keys("local")

    async with running(s3) as live:
        target = live.storage
        saving = target.save
        changed = False

        async def save_while_the_user_renames(*args: object, **kwargs: object) -> int:
            nonlocal changed
            if not changed:
                changed = True
                async with live.sessionmaker() as session:
                    user = await session.get(User, alice.id)
                    assert user is not None
                    await users.update_user(session, user, UserUpdate(username="alicia"))
                    await session.commit()
            return await saving(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(target, "save", save_while_the_user_renames)
        report = await migrate_files(live.sessionmaker, SQLModel.metadata, target)
        assert (report.moved, report.changed_meanwhile) == (0, 1)
        assert await keys("s3") == set()
        assert await keys("local") == local_keys

        again = await migrate_files(live.sessionmaker, SQLModel.metadata, target)
        assert (again.moved, again.changed_meanwhile) == (1, 0)
        assert await keys("s3") == local_keys
        assert await keys("local") == set()
