"""Path and query parameters shared by the JSON API and the pages."""

from typing import Annotated

from fastapi import Form, Path, Query
from pydantic import AfterValidator

# Ids are `Integer` columns: 32 bits on PostgreSQL. A larger number cannot be
# the id of any row, and sent to the database it would fail there (a 500), so
# it is refused here as a 422 that says why.
MAX_ID = 2**31 - 1

PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="The post's id.")]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="How many posts per page, 1 to 100.")]


def _encodable(value: str) -> str:
    # A form that declares another charset than UTF-8 can smuggle in a lone
    # surrogate, which no page could show back: refused like any bad input.
    # (A NUL character is refused by the models, with a message by the field.)
    value.encode()
    return value


FormText = Annotated[str, Form(), AfterValidator(_encodable)]
