"""File storage: backends (local disk, S3), the file field, and its transactional lifecycle."""

from app.config import Settings
from app.storage.base import Storage, StorageError, StoredObject
from app.storage.fields import FileListType, FileType, Rendition, StoredFile
from app.storage.lifecycle import forget_files, store_file
from app.storage.local import LocalStorage, MediaFiles
from app.storage.registry import get_storage, register_storage, unregister_storage
from app.storage.s3 import S3Storage

__all__ = [
    "FileListType",
    "FileType",
    "LocalStorage",
    "MediaFiles",
    "Rendition",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoredFile",
    "StoredObject",
    "create_storage",
    "create_storages",
    "forget_files",
    "get_storage",
    "register_storage",
    "store_file",
    "unregister_storage",
]


def create_storages(settings: Settings) -> dict[str, Storage]:
    """Every backend the settings describe, by name: local disk always (rows
    stored there before a switch to S3 keep their files), S3 when a bucket is
    set. New files go to `create_storage`'s; rows name the one holding theirs."""
    storages: dict[str, Storage] = {"local": LocalStorage(settings.media_root)}
    if settings.s3_bucket:
        storages["s3"] = S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            public_url=settings.s3_public_url,
        )
    return storages


def create_storage(settings: Settings) -> Storage:
    """The backend new files go to: STORAGE_BACKEND."""
    return create_storages(settings)[settings.storage_backend]
