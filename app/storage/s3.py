"""Objects in any S3-compatible bucket (AWS, MinIO, moto...), through obstore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError
from obstore.store import S3Store

from app.storage.base import (
    CACHE_CONTROL,
    Data,
    ObjectExists,
    StorageError,
    StoredObject,
    as_chunks,
    check_key,
)

if TYPE_CHECKING:  # obstore's config types exist for type checkers only
    from obstore.store import ClientConfig, RetryConfig, S3Config

PRESIGNED_URL_LIFETIME = timedelta(hours=1)

# A dead or unreachable server must fail a request in seconds, not minutes:
# short timeouts, two retries, and a cap on the time spent retrying.
CLIENT_OPTIONS: ClientConfig = {
    "connect_timeout": "2s",
    "timeout": "20s",
    "pool_idle_timeout": "30s",
    "allow_http": True,  # for local S3-compatible servers; AWS itself is https
}
RETRIES: RetryConfig = {
    "max_retries": 2,
    "retry_timeout": timedelta(seconds=5),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)},
}


class S3Storage:
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        public_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        config: S3Config = {"region": region}
        if endpoint_url:
            # Both names: AWS_ENDPOINT_URL_S3 in the environment would otherwise
            # silently win over `endpoint`.
            config["endpoint"] = endpoint_url
            config["aws_endpoint_url_s3"] = endpoint_url
        # Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the platform.
        self.store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,
            client_options=CLIENT_OPTIONS,
            retry_config=RETRIES,
        )

    async def save(self, key: str, data: Data, content_type: str) -> int:
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in as_chunks(data):
                size += len(chunk)
                yield chunk

        body = data if isinstance(data, bytes) else counted()
        try:
            # mode="create" sends If-None-Match: *, so the server refuses to overwrite.
            await obstore.put_async(
                self.store,
                check_key(key),
                body,
                mode="create",
                attributes={"Content-Type": content_type, "Cache-Control": CACHE_CONTROL},
            )
        except AlreadyExistsError as exc:
            raise ObjectExists(f"{key} already exists") from exc
        except (BaseError, OSError, TimeoutError) as exc:
            raise StorageError(f"could not store {key}: {exc}") from exc
        return len(data) if isinstance(data, bytes) else size

    async def read(self, key: str) -> bytes:
        try:
            result = await obstore.get_async(self.store, check_key(key))
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            raise
        except (BaseError, OSError, TimeoutError) as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self.store, check_key(key))
        except FileNotFoundError:
            return False
        except (BaseError, OSError, TimeoutError) as exc:
            raise StorageError(f"could not check {key}: {exc}") from exc
        return True

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self.store, check_key(key))
        except FileNotFoundError:
            pass
        except (BaseError, OSError, TimeoutError) as exc:
            raise StorageError(f"could not delete {key}: {exc}") from exc

    def url(self, key: str) -> str:
        """The public URL when S3_PUBLIC_URL is set (CDN or public bucket), else a
        presigned one that expires. Signing is a local computation, not a request."""
        check_key(key)
        if self.public_url:
            path = f"{self.prefix}/{key}" if self.prefix else key
            return f"{self.public_url}/{path}"
        return obstore.sign(self.store, "GET", key, PRESIGNED_URL_LIFETIME)

    async def remove_incomplete(self, cutoff: datetime) -> int:
        """Nothing to do: an object appears in a bucket whole or not at all."""
        return 0

    async def scan(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        try:
            async for batch in obstore.list(self.store, prefix=prefix or None):
                for meta in batch:
                    yield StoredObject(meta["path"], meta["size"], meta["last_modified"])
        except (BaseError, OSError, TimeoutError) as exc:
            raise StorageError(f"could not list the bucket: {exc}") from exc
