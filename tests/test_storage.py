"""One suite for every storage backend: local disk, and S3 against a real moto_server."""

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.storage import LocalStorage, S3Storage, Storage, StorageError, create_storage
from app.storage.base import ObjectExists, new_key
from tests.s3server import MotoServer, free_port


@pytest.fixture
def storage(storage_settings: Settings) -> Storage:
    return create_storage(storage_settings)


async def keys(storage: Storage) -> set[str]:
    return {stored.key async for stored in storage.scan()}


async def test_saved_object_reads_back_and_is_listed(storage: Storage) -> None:
    key = new_key("avatars", "webp")
    size = await storage.save(key, b"picture bytes", "image/webp")
    assert size == len(b"picture bytes")
    assert await storage.read(key) == b"picture bytes"
    assert await storage.exists(key)
    listed = [stored async for stored in storage.scan()]
    assert [(stored.key, stored.size) for stored in listed] == [(key, size)]


async def test_save_accepts_async_chunks(storage: Storage) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"first ", b"second ", b"third"):
            yield part

    key = new_key("posts", "webp")
    assert await storage.save(key, chunks(), "image/webp") == len(b"first second third")
    assert await storage.read(key) == b"first second third"


async def test_save_never_overwrites(storage: Storage) -> None:
    key = new_key("avatars", "webp")
    await storage.save(key, b"original", "image/webp")
    with pytest.raises(ObjectExists):
        await storage.save(key, b"replacement", "image/webp")
    assert await storage.read(key) == b"original"


async def test_delete_removes_and_tolerates_missing_keys(storage: Storage) -> None:
    key = new_key("avatars", "webp")
    await storage.save(key, b"x", "image/webp")
    await storage.delete(key)
    assert not await storage.exists(key)
    await storage.delete(key)
    with pytest.raises(FileNotFoundError):
        await storage.read(key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "avatars/ü.jpg", "a/../b.jpg"])
async def test_keys_the_app_could_not_have_made_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        await storage.save(key, b"x", "image/jpeg")


def test_new_keys_are_unique_and_made_of_safe_parts() -> None:
    made = {new_key("avatars", "webp") for _ in range(1000)}
    assert len(made) == 1000
    assert all(key.startswith("avatars/") and key.endswith(".webp") for key in made)
    with pytest.raises(ValueError, match="invalid key parts"):
        new_key("../x", "webp")


async def test_local_files_are_written_whole_under_media_root(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, secret_key="k" * 40, media_root=tmp_path)
    storage = create_storage(settings)
    key = new_key("avatars", "webp")
    await storage.save(key, b"data", "image/webp")
    assert (tmp_path / key).read_bytes() == b"data"
    # No temporary file is left beside it.
    assert [path.name for path in (tmp_path / "avatars").iterdir()] == [key.split("/")[1]]
    assert storage.url(key) == f"/media/{key}"


async def test_gc_removes_what_an_interrupted_write_left_on_disk(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = new_key("posts", "webp")
    await storage.save(key, b"kept", "image/webp")
    (tmp_path / "posts").mkdir(exist_ok=True)
    crashed = tmp_path / "posts" / ".abc.webp.0123456789ab.tmp"
    writing = tmp_path / "posts" / ".def.webp.ba9876543210.tmp"
    crashed.write_bytes(b"half a pic")
    writing.write_bytes(b"still being written")
    a_day_ago = time.time() - 24 * 3600
    os.utime(crashed, (a_day_ago, a_day_ago))
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    assert await storage.remove_incomplete(cutoff) == 1
    assert not crashed.exists()
    assert writing.exists()
    assert await keys(storage) == {key}


async def test_s3_objects_carry_type_and_cache_headers(moto: MotoServer) -> None:
    storage = S3Storage(moto.create_bucket(), endpoint_url=moto.endpoint, prefix="media")
    key = new_key("avatars", "webp")
    await storage.save(key, b"RIFFdata", "image/webp")
    url = storage.url(key)
    assert "X-Amz-Signature=" in url  # presigned, since no public URL is configured
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFFdata"
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_s3_public_url_is_plain_string_building(moto: MotoServer) -> None:
    storage = S3Storage(
        "bucket", endpoint_url=moto.endpoint, prefix="media", public_url="https://cdn.example/"
    )
    assert storage.url("avatars/abc.webp") == "https://cdn.example/media/avatars/abc.webp"


async def test_s3_server_that_is_down_fails_in_seconds() -> None:
    storage = S3Storage("bucket", endpoint_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(StorageError):
        await storage.save(new_key("avatars", "webp"), b"x", "image/webp")
    assert time.monotonic() - started < 15
