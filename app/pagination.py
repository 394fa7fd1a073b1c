"""Keyset pagination: a page starts where the previous one ended, not at an offset.

`OFFSET 100000` makes the database read and throw away 100,000 rows before the
page; a keyset page asks for "the next rows after (date_posted, id)", which an
index on those columns finds directly. So the 10,000th page costs what the
first does, and a post published while someone reads the list neither shifts
a post onto the next page twice nor pushes one past them unseen: new posts
sort before the place they have reached.

The place is handed to the client as an opaque cursor: the last post's sort
key, signed with the secret key. Clients pass it back unchanged; one that was
edited or made up fails its signature and gets a 422, never a database error.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from itsdangerous import BadData

from app.config import Settings, app_settings
from app.errors import AppError
from app.models import MAX_ID, Post
from app.security import serializer

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The largest cursor this app writes is about 60 characters.
MAX_CURSOR_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of posts ended: the sort key of its last post."""

    date_posted: datetime
    id: int


@dataclass(frozen=True, slots=True)
class Rank:
    """Where a page of search results ended: the last one's score and id."""

    score: float
    id: int


class InvalidCursor(AppError):
    status_code = 422

    def __init__(self) -> None:
        super().__init__(
            "This cursor is not valid. Pass back the next_cursor of the previous "
            "page unchanged, or leave it out to start from the first page."
        )


# What a cursor pages through, signed into it: one list's cursor is refused by another.
POSTS, COMMENTS, SEARCH = "cursor", "comment-cursor", "search-cursor"


def encode_cursor(position: Position | Rank, settings: Settings, purpose: str = POSTS) -> str:
    if isinstance(position, Rank):
        return serializer(settings, SEARCH).dumps([position.score, position.id])
    # Whole microseconds since 1970: exact, and shorter than an ISO date.
    micros = (position.date_posted - EPOCH) // timedelta(microseconds=1)
    return serializer(settings, purpose).dumps([micros, position.id])


def decode_cursor(cursor: str, settings: Settings, purpose: str = POSTS) -> Position:
    try:
        micros, post_id = serializer(settings, purpose).loads(cursor)
        if not (type(micros) is int and type(post_id) is int and 1 <= post_id <= MAX_ID):
            raise InvalidCursor
        return Position(EPOCH + timedelta(microseconds=micros), post_id)
    except (BadData, TypeError, ValueError, OverflowError):
        raise InvalidCursor from None


def decode_rank(cursor: str, settings: Settings) -> Rank:
    """A search page's cursor (signed apart from the lists': one cannot pass for the other)."""
    try:
        score, post_id = serializer(settings, SEARCH).loads(cursor)
        if not (
            type(score) in (int, float)
            and math.isfinite(score)
            and type(post_id) is int
            and 1 <= post_id <= MAX_ID
        ):
            raise InvalidCursor
        return Rank(float(score), post_id)
    except (BadData, TypeError, ValueError):
        raise InvalidCursor from None


@dataclass(frozen=True, slots=True)
class PostPage:
    posts: Sequence[Post]
    limit: int
    # Where the next page starts (a search's pages: by rank); None on the last page.
    next: Position | Rank | None

    @property
    def has_more(self) -> bool:
        return self.next is not None


def read_position(request: Request, cursor: str | None, purpose: str = POSTS) -> Position | None:
    """The `?cursor=` of a list: where the page starts, or None for the first page."""
    if cursor is None:
        return None
    return decode_cursor(cursor, app_settings(request), purpose)


def read_rank(request: Request, cursor: str | None) -> Rank | None:
    """The `?cursor=` of a page of search results, or None for the first page."""
    if cursor is None:
        return None
    return decode_rank(cursor, app_settings(request))


def write_cursor(
    request: Request, position: Position | Rank | None, purpose: str = POSTS
) -> str | None:
    """The cursor of the page after the one ending at `position` (None: no more pages)."""
    if position is None:
        return None
    return encode_cursor(position, app_settings(request), purpose)
