"""File storage: backends (local disk, S3), the file field, and its transactional lifecycle."""

from app.config import Settings
from app.storage.base import Storage, StorageError, StoredObject
from app.storage.fields import FileType, StoredFile
from app.storage.lifecycle import forget_files, store_file
from app.storage.local import LocalStorage, MediaFiles
from app.storage.registry import get_storage, register_storage
from app.storage.s3 import S3Storage

__all__ = [
    "FileType",
    "LocalStorage",
    "MediaFiles",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoredFile",
    "StoredObject",
    "create_storage",
    "forget_files",
    "get_storage",
    "register_storage",
    "store_file",
]


def create_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        assert settings.s3_bucket, "Settings require S3_BUCKET with STORAGE_BACKEND=s3"
        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            public_url=settings.s3_public_url,
        )
    return LocalStorage(settings.media_root)
