"""SQLModel tables and the schemas the API reads and writes.

Each resource has a family: `XBase` holds shared fields, `X(table=True)` is the
row, `XCreate`/`XUpdate` are request bodies, `XPublic` is what the API returns.
Table models are never request bodies: SQLModel skips validation on them.
"""

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import EmailStr, field_validator
from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Relationship, SQLModel

from app.storage import FileType, StoredFile

DEFAULT_AVATAR_URL = "/static/img/default-avatar.svg"

# Named constraints let later migrations drop or alter them by name, which
# SQLite's table rebuilds (Alembic batch mode) need.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware, in UTC.

    PostgreSQL keeps the offset; SQLite stores text without one. Normalising
    here means the rest of the code only ever sees aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# --- users -------------------------------------------------------------------


class UserBase(SQLModel):
    username: str = Field(min_length=1, max_length=50)


class User(UserBase, table=True):
    __tablename__: ClassVar[str] = "users"
    # Never reuse the id of a deleted row on SQLite: tokens name users by id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=50, unique=True)
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The profile picture: key and metadata here, bytes in the storage backend.
    image: StoredFile | None = Field(default=None, sa_type=FileType)

    # lazy="raise": touching an unloaded relationship raises at once instead of
    # emitting SQL, which in async code would fail later with MissingGreenlet.
    # passive_deletes: the database's ON DELETE CASCADE removes the posts, so
    # the ORM need not load them first.
    posts: list["Post"] = Relationship(
        back_populates="author",
        sa_relationship_kwargs={
            "lazy": "raise",
            "cascade": "all, delete-orphan",
            "passive_deletes": True,
        },
    )

    @property
    def image_url(self) -> str:
        return self.image.url if self.image else DEFAULT_AVATAR_URL


def _strip(value: Any) -> Any:
    """Surrounding spaces are never meant: "  " is not a title."""
    return value.strip() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class UserCreate(UserBase):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=128)

    _strip_username = field_validator("username", "email", mode="before")(_strip)
    _lower_email = field_validator("email")(_lower)


class UserUpdate(SQLModel):
    username: str | None = Field(default=None, min_length=1, max_length=50)
    email: EmailStr | None = Field(default=None, max_length=254)

    _strip_username = field_validator("username", "email", mode="before")(_strip)
    _lower_email = field_validator("email")(_lower)


class UserPublic(UserBase):
    id: int
    image_url: str


class UserPrivate(UserPublic):
    email: str


# --- posts -------------------------------------------------------------------


class PostBase(SQLModel):
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=10_000)


class Post(PostBase, table=True):
    __tablename__: ClassVar[str] = "posts"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    content: str = Field(sa_type=Text)
    date_posted: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # An optional cover picture.
    image: StoredFile | None = Field(default=None, sa_type=FileType)

    author: User = Relationship(back_populates="posts", sa_relationship_kwargs={"lazy": "raise"})

    @property
    def image_url(self) -> str | None:
        return self.image.url if self.image else None


class PostCreate(PostBase):
    _strip_text = field_validator("title", "content", mode="before")(_strip)


class PostUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=100)
    content: str | None = Field(default=None, min_length=1, max_length=10_000)

    _strip_text = field_validator("title", "content", mode="before")(_strip)


class PostPublic(PostBase):
    id: int
    date_posted: datetime
    updated_at: datetime
    image_url: str | None
    author: UserPublic


class PostsPublic(SQLModel):
    posts: list[PostPublic]
    total: int
    skip: int
    limit: int
    has_more: bool
