"""What each file field accepts, declared with its column.

    class Post(SQLModel, table=True):
        image: StoredFile | None = Field(default=None, sa_type=FileType(policy=COVER))

A policy names where the field's files are stored (`kind`, the first part of
their keys), the types it takes (judged from the bytes, never from the name
or the declared type), its size limit, how many files it holds, and for
pictures the `ImagePreset` they are re-encoded with: size, crop, renditions,
the pixel limit and the smallest width and height. `store_upload`
(app/uploads.py) stores an upload under a policy, and the upload flows read
the policy of the field they fill (`policy_of`), so the model is the one
place where a field's rules are written.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect

from app.images import AVATAR, POST_COVER, ImagePreset

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")


@dataclass(frozen=True, slots=True)
class FilePolicy:
    kind: str
    accepts: tuple[str, ...]
    max_files: int = 1
    # Bytes per file; None: the MAX_UPLOAD_BYTES setting.
    max_bytes: int | None = None
    # Pictures are decoded and written anew as WebP with this preset; other
    # files are kept as they were sent.
    image: ImagePreset | None = None

    def with_image_size(self, size: int) -> "FilePolicy":
        """The same policy, its pictures made at `size` (profile pictures: AVATAR_SIZE)."""
        assert self.image is not None
        return dataclasses.replace(self, image=self.image.with_size(size))


PROFILE_PICTURE = FilePolicy(kind="avatars", accepts=IMAGE_TYPES, image=AVATAR)
COVER = FilePolicy(kind="posts", accepts=IMAGE_TYPES, image=POST_COVER)
ATTACHMENTS = FilePolicy(kind="attachments", accepts=("application/pdf", *IMAGE_TYPES), max_files=5)


def policy_of(model: Any, field: str) -> FilePolicy:
    """The policy declared with `model`'s file field `field`."""
    column = inspect(model).columns[field]
    policy = getattr(column.type, "policy", None)
    if not isinstance(policy, FilePolicy):
        raise LookupError(f"{model.__name__}.{field} declares no file policy")
    return policy
