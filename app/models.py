"""SQLModel tables and the schemas the API reads and writes.

Each resource has a family: `XBase` holds shared fields, `X(table=True)` is the
row, `XCreate`/`XUpdate` are request bodies, `XPublic` is what the API returns.
Table models are never request bodies: SQLModel skips validation on them.
"""

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import EmailStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Column, DateTime, Dialect, Index, Text, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Relationship, SQLModel

from app.names import normalise_username, username_problem
from app.passwords import is_common_password
from app.policies import ATTACHMENTS, COVER, PROFILE_PICTURE
from app.storage import FileListType, FileType, StoredFile

DEFAULT_AVATAR_URL = "/static/img/default-avatar.svg"

# Ids are `Integer` columns: 32 bits on PostgreSQL. A larger number cannot be
# the id of any row, and sent to the database it would fail there (a 500), so
# parameters and tokens refuse it first.
MAX_ID = 2**31 - 1
EDIT_GRACE = timedelta(minutes=1)

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


def updated_at_column() -> Column[datetime]:
    """When the row last changed, which is also its version.

    Declared as the mapper's `version_id_col`, it makes every UPDATE and
    DELETE of the row through the session say `WHERE updated_at = <the value
    it was loaded with>`. When another request changed the row in between,
    no row matches, and SQLAlchemy raises StaleDataError (a 409) instead of
    overwriting the other change, or leaving the file that change stored
    without a row that points at it. The code sets the value itself
    (`version_id_generator: False`) whenever it changes the row.
    """
    return Column("updated_at", UTCDateTime, nullable=False, default=utcnow)


USERS_UPDATED_AT = updated_at_column()
POSTS_UPDATED_AT = updated_at_column()


def file_url(file: StoredFile | None) -> str | None:
    """Where the file is served; None when there is none, or when its backend
    is not configured here (a row from before STORAGE_BACKEND changed, with
    the old backend's settings gone): pages then show it as missing rather
    than fail."""
    if file is None:
        return None
    try:
        return file.url
    except LookupError:
        return None


class RenditionPublic(SQLModel):
    url: str
    width: int
    height: int


class ImagePublic(SQLModel):
    """A stored picture in the API: the largest copy, and the smaller ones."""

    url: str
    width: int | None
    height: int | None
    content_type: str
    renditions: list[RenditionPublic]

    @property
    def srcset(self) -> str:
        """For <img srcset>: every rendition and the picture, each with its width."""
        copies = [(r.url, r.width) for r in self.renditions] + [(self.url, self.width)]
        return ", ".join(f"{url} {width}w" for url, width in copies)


def image_public(value: Any) -> Any:
    """A before-validator: a row's StoredFile as ImagePublic (None if it cannot be shown)."""
    if not isinstance(value, StoredFile):
        return value
    url = file_url(value)
    if url is None:
        return None
    renditions = [
        RenditionPublic(url=value.rendition_url(r), width=r.width, height=r.height)
        for r in value.renditions
    ]
    return ImagePublic(
        url=url,
        width=value.width,
        height=value.height,
        content_type=value.content_type,
        renditions=renditions,
    )


# --- users -------------------------------------------------------------------


class UserBase(SQLModel):
    username: str = Field(min_length=1, max_length=50)


class User(UserBase, table=True):
    __tablename__: ClassVar[str] = "users"
    # Never reuse the id of a deleted row on SQLite: tokens name users by id.
    __table_args__ = {"sqlite_autoincrement": True}
    __mapper_args__ = {"version_id_col": USERS_UPDATED_AT, "version_id_generator": False}

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=50)
    # What usernames are compared by (app/names.py): names that look alike
    # have the same key, so the second is refused as taken.
    username_key: str = Field(max_length=200, unique=True)
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=USERS_UPDATED_AT)
    # Kept by app.posts in the transaction that adds or deletes a post, so the
    # author page shows it without counting the posts on every visit.
    post_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The profile picture: key and metadata here, bytes in the storage backend.
    image: StoredFile | None = Field(default=None, sa_type=FileType(policy=PROFILE_PICTURE))
    # Every login token carries the version it was issued under; raising it
    # ends every login at once (a new password, "log out everywhere").
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Set when the user opens the link mailed to their address.
    email_verified: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # May delete any post or comment (`python -m app make-admin EMAIL`).
    is_admin: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})

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
        return file_url(self.image) or DEFAULT_AVATAR_URL


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None if it can.

    A NUL character or a lone surrogate is never text a person typed:
    PostgreSQL refuses to store the first, and no encoding can write the second.
    """
    if "\x00" in value:
        return "This text contains a NUL character, which cannot be stored."
    try:
        value.encode()
    except UnicodeEncodeError:
        return "This text contains a character that is not valid Unicode."
    return None


def check_text(value: Any) -> Any:
    """A validator: text that `text_problem` finds fault with is refused."""
    problem = text_problem(value) if isinstance(value, str) else None
    if problem is not None:
        raise PydanticCustomError("invalid_text", problem)
    return value


def clean_text(value: Any) -> Any:
    """Valid text without surrounding spaces, which are never meant ("  " is not a
    title), and with a browser's line breaks (CRLF) as one character each, as
    the form's maxlength counted them."""
    value = check_text(value)
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _shows(character: str) -> bool:
    # Not a space, nor an invisible format or control character (U+200B...).
    return not character.isspace() and unicodedata.category(character)[0] != "C"


def check_visible(value: Any) -> Any:
    """A validator: text with nothing a reader would see is refused."""
    if isinstance(value, str) and value and not any(map(_shows, value)):
        raise PydanticCustomError("invisible_text", "Write something a reader can see.")
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


MIN_PASSWORD_LENGTH = 8
PASSWORD_IS_NAME = "Your password cannot be your username or email address."


def password_is_name(password: str, username: str, email: str) -> bool:
    """Whether the password is the username, the email address or its first part."""
    guess = password.strip().casefold()
    return guess in (username.casefold(), email.casefold(), email.split("@")[0].casefold())


MAX_USERNAME_LENGTH = 50


def check_username(value: Any) -> Any:
    """A validator for a new username: NFKC, and nothing invisible in it."""
    if not isinstance(value, str):
        return value
    problem = username_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_username", problem)
    name = normalise_username(value)
    # NFKC can lengthen a name (one ligature may become several letters).
    if not 1 <= len(name) <= MAX_USERNAME_LENGTH:
        raise PydanticCustomError(
            "invalid_username", "Use 1 to {max} characters.", {"max": MAX_USERNAME_LENGTH}
        )
    return name


def check_password(value: Any) -> Any:
    """A validator for a new password: valid text, at least 8 characters
    without counting spaces at either end (so never only spaces), and not
    one of the passwords every attacker tries first."""
    value = check_text(value)
    if not isinstance(value, str):
        return value
    if len(value.strip()) < MIN_PASSWORD_LENGTH:
        raise PydanticCustomError(
            "short_password",
            "Use at least {min} characters (spaces at either end do not count).",
            {"min": MIN_PASSWORD_LENGTH},
        )
    if is_common_password(value):
        raise PydanticCustomError(
            "common_password",
            "This password is one of the most common ones, which are tried first. Choose another.",
        )
    return value


class UserCreate(UserBase):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=128)

    _clean = field_validator("username", "email", mode="before")(clean_text)
    _username = field_validator("username")(check_username)
    _check_password = field_validator("password", mode="before")(check_password)
    _lower_email = field_validator("email")(_lower)

    @model_validator(mode="after")
    def _password_is_not_the_name(self) -> "UserCreate":
        if password_is_name(self.password, self.username, self.email):
            raise PydanticCustomError("password_is_name", PASSWORD_IS_NAME)
        return self


class UserUpdate(SQLModel):
    username: str | None = Field(default=None, min_length=1, max_length=50)
    email: EmailStr | None = Field(default=None, max_length=254)
    # Needed to change the email address: a stolen login alone cannot take
    # the account over by pointing it at another inbox.
    current_password: str | None = Field(default=None, max_length=128)

    _check_current = field_validator("current_password", mode="before")(check_text)
    _clean = field_validator("username", "email", mode="before")(clean_text)
    _username = field_validator("username")(check_username)
    _lower_email = field_validator("email")(_lower)


class UserPublic(UserBase):
    id: int
    image_url: str
    image: ImagePublic | None = None

    _image = field_validator("image", mode="before")(image_public)


class UserPrivate(UserPublic):
    email: str
    email_verified: bool
    is_admin: bool = False


class NewPassword(SQLModel):
    """A password someone chooses: at least 8 characters, not all spaces, not
    one of the most common passwords (and, checked where the user is known,
    not their name or address)."""

    new_password: str = Field(min_length=8, max_length=128)

    _check = field_validator("new_password", mode="before")(check_password)


class PasswordChange(NewPassword):
    current_password: str = Field(max_length=128)

    _check_current = field_validator("current_password", mode="before")(check_text)


class PasswordReset(NewPassword):
    token: str = Field(max_length=100)

    _check_token = field_validator("token", mode="before")(check_text)


class PasswordRecovery(SQLModel):
    email: EmailStr = Field(max_length=254)

    _clean = field_validator("email", mode="before")(clean_text)


class AccountDeletion(SQLModel):
    password: str = Field(max_length=128)

    _check = field_validator("password", mode="before")(check_text)


class EmailVerification(SQLModel):
    token: str = Field(max_length=500)

    _check_token = field_validator("token", mode="before")(check_text)


# --- posts -------------------------------------------------------------------


class PostBase(SQLModel):
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=10_000)


# --- tags ----------------------------------------------------------------------

MAX_TAGS = 5
TAG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_TAG_LENGTH = 30


class Tag(SQLModel, table=True):
    __tablename__: ClassVar[str] = "tags"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=MAX_TAG_LENGTH, unique=True)


class PostTag(SQLModel, table=True):
    """A post's tag. It keeps a copy of the post's `date_posted` (which never
    changes), so that a tag's posts, newest first, are read straight off this
    table's index from the cursor's place, as the other lists are."""

    __tablename__: ClassVar[str] = "post_tags"
    __table_args__ = (
        Index("ix_post_tags_tag_id_date_posted_post_id", "tag_id", "date_posted", "post_id"),
    )

    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", ondelete="CASCADE", primary_key=True)
    date_posted: datetime = Field(sa_type=UTCDateTime)


class Like(SQLModel, table=True):
    """One user's like of one post: the pair is the key, so liking twice is
    one like."""

    __tablename__: ClassVar[str] = "likes"
    # The key serves a post's likes; this index a user's (deleting a user
    # deletes theirs).
    __table_args__ = (Index("ix_likes_user_id_post_id", "user_id", "post_id"),)

    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)


def check_tags(value: Any) -> Any:
    """A validator: tags as a list or comma-separated (the forms), each
    lower-cased and trimmed, duplicates dropped; at most 5, each 1 to 30
    letters, digits or hyphens."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return value
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            return value  # the type check that follows says what is wrong
        tag = item.strip().lower()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH or not TAG_PATTERN.fullmatch(tag):
            raise PydanticCustomError(
                "invalid_tag",
                "A tag has 1 to {max} letters (a-z), digits or hyphens, like async-python: "
                '"{tag}" is not one.',
                {"max": MAX_TAG_LENGTH, "tag": tag[:40]},
            )
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise PydanticCustomError(
            "too_many_tags", "A post has at most {max} tags.", {"max": MAX_TAGS}
        )
    return tags


class Post(PostBase, table=True):
    __tablename__: ClassVar[str] = "posts"
    # One index per list, in the list's order (newest first, ties broken by
    # id): the database reads a page straight off the index, from the
    # cursor's place, at any table size. The author's index also serves the
    # foreign key (finding a user's posts when the user is deleted).
    __table_args__ = (
        Index("ix_posts_date_posted_id", "date_posted", "id"),
        Index("ix_posts_user_id_date_posted_id", "user_id", "date_posted", "id"),
        {"sqlite_autoincrement": True},
    )
    __mapper_args__ = {"version_id_col": POSTS_UPDATED_AT, "version_id_generator": False}

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    # Markdown, as the author wrote it.
    content: str = Field(sa_type=Text)
    # Rendered from `content` when it is saved (app/markdown.py): sanitised
    # HTML for the post's page, and plain text for cards.
    content_html: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    excerpt: str = Field(default="", max_length=300, sa_column_kwargs={"server_default": ""})
    # Kept by app/likes.py in the transaction that adds or removes a like,
    # so that cards show it without counting.
    like_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Kept by app/comments.py in the same way.
    comment_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    date_posted: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=POSTS_UPDATED_AT)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    # An optional cover picture.
    image: StoredFile | None = Field(default=None, sa_type=FileType(policy=COVER))
    # Up to five files (PDF or images), downloaded as they were sent.
    attachments: list[StoredFile] = Field(
        default_factory=list,
        sa_type=FileListType(policy=ATTACHMENTS),
        sa_column_kwargs={"server_default": text("'[]'")},
    )

    author: User = Relationship(back_populates="posts", sa_relationship_kwargs={"lazy": "raise"})
    # Read-only here (viewonly): app/tags.py writes the PostTag rows, which
    # need the post's date as well.
    tags: list[Tag] = Relationship(
        link_model=PostTag,
        sa_relationship_kwargs={"lazy": "raise", "viewonly": True, "order_by": "Tag.name"},
    )

    @property
    def image_url(self) -> str | None:
        return file_url(self.image)

    @property
    def tag_names(self) -> list[str]:
        return [tag.name for tag in self.tags]

    @property
    def edited(self) -> bool:
        """Changed after the first minute: a typo fixed at once is no edit to
        show, nor is the new version a maintenance command gives a row."""
        return self.updated_at - self.date_posted > EDIT_GRACE

    @property
    def attachments_public(self) -> list["AttachmentPublic"]:
        """The attachments as the API shows them, each with its download URL."""
        return [
            AttachmentPublic(
                id=file.id or "",
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
                url=f"/api/posts/{self.id}/attachments/{file.id}",
            )
            for file in self.attachments
        ]


class PostCreate(PostBase):
    tags: list[str] = Field(default_factory=list, description="0 to 5 tags.")

    _clean = field_validator("title", "content", mode="before")(clean_text)
    _visible = field_validator("title", "content")(check_visible)
    _tags = field_validator("tags", mode="before")(check_tags)


class PostUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=100)
    content: str | None = Field(default=None, min_length=1, max_length=10_000)
    tags: list[str] | None = Field(default=None, description="0 to 5 tags; replaces them.")

    _clean = field_validator("title", "content", mode="before")(clean_text)
    _visible = field_validator("title", "content")(check_visible)
    _tags = field_validator("tags", mode="before")(check_tags)


class AttachmentPublic(SQLModel):
    id: str
    filename: str | None
    content_type: str
    size: int
    # Downloads as a file named `filename` (Content-Disposition: attachment).
    url: str


class PostPublic(PostBase):
    id: int
    content_html: str
    like_count: int = 0
    comment_count: int = 0
    # Whether the user asking (by their token) likes it: false for a visitor.
    liked_by_me: bool = False
    tags: list[str] = Field(default_factory=list, validation_alias="tag_names")
    date_posted: datetime
    updated_at: datetime
    image_url: str | None
    image: ImagePublic | None = None
    attachments: list[AttachmentPublic] = Field(
        default_factory=list, validation_alias="attachments_public"
    )
    author: UserPublic

    _image = field_validator("image", mode="before")(image_public)


class PostsPublic(SQLModel):
    """A page of a list. Pass `next_cursor` back as `cursor` for the next page."""

    posts: list[PostPublic]
    limit: int
    has_more: bool
    next_cursor: str | None


# --- comments --------------------------------------------------------------------

MAX_COMMENT_LENGTH = 2_000


class CommentBase(SQLModel):
    content: str = Field(min_length=1, max_length=MAX_COMMENT_LENGTH)


class Comment(CommentBase, table=True):
    """A reader's comment under a post, in Markdown like the post."""

    __tablename__: ClassVar[str] = "comments"
    # A post's comments, oldest first, page by page off this index (as the
    # post lists are read off theirs); the user's index serves deleting a user.
    __table_args__ = (
        Index("ix_comments_post_id_created_at_id", "post_id", "created_at", "id"),
        Index("ix_comments_user_id", "user_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    content: str = Field(sa_type=Text)
    content_html: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Who removed it, when not its author ("post-author" or "admin"): the
    # thread keeps its place and says so, without the words.
    removed_by: str | None = Field(default=None, max_length=20)

    author: User = Relationship(sa_relationship_kwargs={"lazy": "raise"})


class CommentCreate(CommentBase):
    _clean = field_validator("content", mode="before")(clean_text)
    _visible = field_validator("content")(check_visible)


class CommentPublic(SQLModel):
    id: int
    post_id: int
    # Empty once removed by someone else than its author.
    content: str
    content_html: str
    created_at: datetime
    # "post-author" or "admin" when they removed it (its content is then empty).
    removed_by: str | None = None
    author: UserPublic


class CommentsPublic(SQLModel):
    """A page of a post's comments, oldest first. Pass `next_cursor` back as
    `cursor` for the next page."""

    comments: list[CommentPublic]
    limit: int
    has_more: bool
    next_cursor: str | None


# --- accounts ----------------------------------------------------------------


class PasswordResetToken(SQLModel, table=True):
    """A password reset link that was mailed: only a hash of its token is kept,
    so a copy of the database cannot reset anyone's password. Used once (the
    row is deleted), dead after `expires_at`, and deleted with every other of
    the user's when their password changes."""

    __tablename__: ClassVar[str] = "password_reset_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # SHA-256 of the token, hex: a random token needs no slow hash.
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class RateLimit(SQLModel, table=True):
    """How often something was tried lately (failed logins to an account, say),
    and until when it is refused: kept in the database, so that every worker
    and every machine counts together (see app/ratelimits.py)."""

    __tablename__: ClassVar[str] = "rate_limits"

    # What is counted and for whom, hashed: "login-account:<sha256 of the email>".
    key: str = Field(primary_key=True, max_length=100)
    hits: int
    last_at: datetime = Field(sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
