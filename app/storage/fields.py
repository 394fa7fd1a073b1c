"""The file field: a column that keeps a file's key and metadata in the row.

    class Post(SQLModel, table=True):
        image: StoredFile | None = Field(default=None, sa_type=FileType)
        attachments: list[StoredFile] = Field(default_factory=list, sa_type=FileListType)

The bytes live in a storage backend; the row holds a small JSON document
naming the backend and the key. Deleting or replacing the value in a row is
what deletes the old object (after commit): see `lifecycle.py`.
"""

from collections.abc import Hashable
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Dialect
from sqlalchemy.types import TypeDecorator

from app.storage.registry import get_storage


class Rendition(BaseModel):
    """A smaller copy of a stored image, kept with it and deleted with it."""

    model_config = ConfigDict(frozen=True)

    key: str
    width: int
    height: int
    size: int


class StoredFile(BaseModel):
    """A stored file as the application sees it. Immutable: replace it, don't edit it."""

    model_config = ConfigDict(frozen=True)

    key: str
    storage: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    # What the user called it; metadata only, never part of the key.
    filename: str | None = None
    # Smaller copies of an image, smallest first; the file itself is the largest.
    renditions: tuple[Rendition, ...] = ()
    # Names the file within a list field (FileListType): stable, unlike its place.
    id: str | None = None

    @property
    def url(self) -> str:
        return get_storage(self.storage).url(self.key)

    @property
    def keys(self) -> tuple[str, ...]:
        """The file's key and its renditions' keys: every object it stands for."""
        return (self.key, *(rendition.key for rendition in self.renditions))

    def rendition_url(self, rendition: Rendition) -> str:
        return get_storage(self.storage).url(rendition.key)

    @property
    def srcset(self) -> str:
        """For <img srcset>: every rendition and the file, each with its width."""
        sizes = [(self.rendition_url(r), r.width) for r in self.renditions]
        sizes.append((self.url, self.width or 0))
        return ", ".join(f"{url} {width}w" for url, width in sizes)


class FileType(TypeDecorator[StoredFile]):
    """Stores a `StoredFile` as JSON; NULL when there is no file.

    `policy` says what the field accepts (app/policies.py); it is the app's,
    not the database's, so migrations leave it out.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def __init__(self, policy: Hashable | None = None) -> None:
        super().__init__()
        self.policy = policy

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):
            value = StoredFile.model_validate(value)
        if not isinstance(value, StoredFile):
            raise TypeError(f"expected a StoredFile, got {type(value).__name__}")
        return value.model_dump(mode="json", exclude_none=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> StoredFile | None:
        if value is None:
            return None
        return StoredFile.model_validate(value)


class FileListType(TypeDecorator[list[StoredFile]]):
    """Stores several `StoredFile`s as a JSON list; an empty list when there are none."""

    impl = JSON
    cache_ok = True

    def __init__(self, policy: Hashable | None = None) -> None:
        super().__init__()
        self.policy = policy

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        files = [StoredFile.model_validate(item) for item in value or []]
        return [file.model_dump(mode="json", exclude_none=True) for file in files]

    def process_result_value(self, value: Any, dialect: Dialect) -> list[StoredFile]:
        return [StoredFile.model_validate(item) for item in value or []]


def files_in(value: Any) -> list[StoredFile]:
    """The files a file field's value holds: none, one, or a list of them."""
    if isinstance(value, StoredFile):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, StoredFile)]
    return []


def is_file_column(column: Any) -> bool:
    return isinstance(column.type, FileType | FileListType)
