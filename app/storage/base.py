"""What every storage backend offers, and the errors they raise.

Objects are written once under a key the application chose and never
overwritten, so a URL always shows the same bytes and can be cached forever.
"""

import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import NamedTuple, Protocol

CACHE_CONTROL = "public, max-age=31536000, immutable"

Data = bytes | AsyncIterable[bytes]

# `<kind>/<random>.<ext>`, and for a smaller rendition `<kind>/<random>.<width>w.<ext>`.
_KEY = re.compile(r"[a-z0-9-]+/[A-Za-z0-9_-]+(\.[0-9]+w)?\.[a-z0-9]+")
_PART = re.compile(r"[a-z0-9-]+")


class StorageError(Exception):
    """The storage backend failed or could not be reached. The app answers 503."""


class ObjectExists(StorageError):
    """A save would have overwritten an object; keys are never reused."""


class StoredObject(NamedTuple):
    key: str
    size: int
    last_modified: datetime


class Storage(Protocol):
    name: str

    async def save(self, key: str, data: Data, content_type: str) -> int:
        """Store a new object and return its size; raise ObjectExists if the key is taken."""
        ...

    async def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError if there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def url(self, key: str) -> str:
        """Where a browser can fetch the object. Builds a string; no I/O."""
        ...

    def scan(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        """Every object under `prefix` (for the garbage collector)."""
        ...

    async def remove_incomplete(self, cutoff: datetime) -> int:
        """Delete what writes that a crash interrupted left, from before
        `cutoff` (for the garbage collector); how many were deleted."""
        ...


def new_key(kind: str, extension: str) -> str:
    """`<kind>/<random>.<ext>`: chosen here, never from the user's filename,
    and random enough never to repeat."""
    if not _PART.fullmatch(kind) or not _PART.fullmatch(extension):
        raise ValueError(f"invalid key parts: {kind!r}, {extension!r}")
    return f"{kind}/{secrets.token_urlsafe(18)}.{extension}"


def rendition_key(key: str, width: int) -> str:
    """The key of a smaller rendition of `key`'s image: beside it, its width in the name."""
    stem, extension = check_key(key).rsplit(".", 1)
    return f"{stem}.{width}w.{extension}"


def check_key(key: str) -> str:
    """Refuse anything that is not a key this app could have made (no `..`, no `/x`)."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


async def as_chunks(data: Data) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        yield data
    else:
        async for chunk in data:
            yield chunk
