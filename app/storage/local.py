"""Files on local disk under MEDIA_ROOT, written with aiofiles, served at /media/."""

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiofiles
import aiofiles.os
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.storage.base import (
    CACHE_CONTROL,
    Data,
    ObjectExists,
    StorageError,
    StoredObject,
    as_chunks,
    check_key,
)


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, base_url: str = "/media") -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def save(self, key: str, data: Data, content_type: str) -> int:
        path = self._path(key)
        # Write to a temporary name in the same directory, fsync, then link it
        # into place: a crash never leaves a partial file under a real key, and
        # link (unlike rename) refuses to replace an existing file.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        size = 0
        try:
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            async with aiofiles.open(temporary, "xb") as file:
                async for chunk in as_chunks(data):
                    await file.write(chunk)
                    size += len(chunk)
                await file.flush()
                await asyncio.to_thread(os.fsync, file.fileno())
            await aiofiles.os.link(temporary, path)
        except FileExistsError as exc:
            raise ObjectExists(f"{key} already exists") from exc
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc.strerror}") from exc
        finally:
            await _remove(temporary)
        return size

    async def read(self, key: str) -> bytes:
        try:
            async with aiofiles.open(self._path(key), "rb") as file:
                return await file.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror}") from exc

    async def exists(self, key: str) -> bool:
        return await aiofiles.os.path.isfile(self._path(key))

    async def delete(self, key: str) -> None:
        try:
            await _remove(self._path(key))
        except OSError as exc:
            raise StorageError(f"could not delete {key}: {exc.strerror}") from exc

    def url(self, key: str) -> str:
        return f"{self.base_url}/{check_key(key)}"

    async def scan(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        for stored in await asyncio.to_thread(self._walk, prefix):
            yield stored

    async def remove_incomplete(self, cutoff: datetime) -> int:
        """The temporary files of writes a crash interrupted (`save` writes to
        `.<name>.<random>.tmp` first, then links it into place)."""
        return await asyncio.to_thread(self._remove_incomplete, cutoff)

    def _remove_incomplete(self, cutoff: datetime) -> int:
        removed = 0
        for directory, _subdirectories, names in os.walk(self.root):
            for name in names:
                path = Path(directory, name)
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                if datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def _walk(self, prefix: str) -> list[StoredObject]:
        found = []
        for directory, _subdirectories, names in os.walk(self.root):
            for name in names:
                path = Path(directory, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not name.startswith("."):
                    info = path.stat()
                    modified = datetime.fromtimestamp(info.st_mtime, UTC)
                    found.append(StoredObject(key, info.st_size, modified))
        return found


async def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


class MediaFiles(StaticFiles):
    """Serves LocalStorage objects. Keys are never reused, so browsers may cache forever."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = CACHE_CONTROL
        return response
