"""Every dependency a route can declare, as an `Annotated` alias: one place to
look up what `SessionDep` or `PageUser` gives and how.

- What the app made when it started: `SessionDep`, `SettingsDep`,
  `StorageDep`, `ImagesDep`, `MailerDep`, `LimiterDep`.
- Who is asking: `CurrentUser` (the API's Bearer token), `OptionalPageUser` /
  `PageUser` (the pages' login cookie), `ClientAddress` (for rate limits);
  `Publisher` / `PagePublisher` when they are about to publish
  (REQUIRE_VERIFIED_EMAIL).
- Rows the asker may change, found before their rights are checked, so a
  missing row is a 404 for everyone and another's a 403: `OwnPost`,
  `OwnPagePost`, `RemovablePost` (or an admin's), `OwnAccount`, and
  `CommentablePost` / `CommentablePagePost` (a post the asker may comment on).
- Parameters of the API and the pages: `PostId`, `UserId`, `CommentId`,
  `Limit`, `Cursor`, `CommentCursor`, `CursorText`, `TagName`, `TagFilter`,
  `SearchText`, `FormText`, `FormFile`, `FormFiles`, `Fragment`, `ImageUpload`.

Settings are loaded once, when the app is made (`create_app`), and read from
the app: `SettingsDep` in a route, `app_settings(request)` in the helpers
that get the request (rendering a page, writing a cursor).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, File, Form, HTTPException, Path, Query, Request, UploadFile, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import AfterValidator
from sqlmodel.ext.asyncio.session import AsyncSession

from app import posts, users
from app.config import Settings, app_settings
from app.db import get_session
from app.errors import Forbidden
from app.mail import Mailer
from app.models import MAX_ID, MAX_TAG_LENGTH, TAG_PATTERN, Post, User, UserPrivate
from app.pages.auth import LOGIN_COOKIE, SAFE_METHODS, LoginRequired, login_path, verify_csrf
from app.pagination import COMMENTS, MAX_CURSOR_LENGTH, Position, read_position
from app.ratelimits import RateLimiter
from app.search import MAX_QUERY_LENGTH, query_problem
from app.security import user_from_token
from app.storage import Storage
from app.workers import ImageWorkers

# --- what the lifespan made ----------------------------------------------------


# scope="function": the commit runs when the handler returns, before the
# response is sent, so a client never sees a success for a write that failed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# `async def` although they never await: FastAPI runs a plain `def`
# dependency in its thread pool, a trip to another thread for a lookup.
async def get_app_settings(request: Request) -> Settings:
    return app_settings(request)


async def get_app_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def get_image_workers(request: Request) -> ImageWorkers:
    workers: ImageWorkers = request.app.state.images
    return workers


async def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StorageDep = Annotated[Storage, Depends(get_app_storage)]
ImagesDep = Annotated[ImageWorkers, Depends(get_image_workers)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]


# --- parameters ------------------------------------------------------------------

PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="The post's id.")]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.")]
CommentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The comment's id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="How many per page, 1 to 100.")]
# ?cursor=, as the client sent it.
CursorText = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` from the previous page; leave out for the first page.",
    ),
]


async def read_cursor(request: Request, cursor: CursorText = None) -> Position | None:
    """Where a page of a list of posts starts, or None for the first page."""
    return read_position(request, cursor)


async def read_comment_cursor(request: Request, cursor: CursorText = None) -> Position | None:
    """Where a page of a post's comments starts, or None for the first page."""
    return read_position(request, cursor, COMMENTS)


# The cursor decoded (a list's, or a post's comments'); a forged one is a 422.
Cursor = Annotated[Position | None, Depends(read_cursor)]
CommentCursor = Annotated[Position | None, Depends(read_comment_cursor)]
# ?tag= on a list, or a tag in a path: 1 to 30 lower-case letters, digits or hyphens.
_TAG = f"^{TAG_PATTERN.pattern}$"
TagName = Annotated[str, Path(max_length=MAX_TAG_LENGTH, pattern=_TAG, description="A tag.")]
TagFilter = Annotated[
    str | None,
    Query(max_length=MAX_TAG_LENGTH, pattern=_TAG, description="Only posts with this tag."),
]


def _encodable(value: str) -> str:
    # A form that declares another charset than UTF-8 can smuggle in a lone
    # surrogate, which no page could show back: refused like any bad input.
    # (A NUL character is refused by the models, with a message by the field.)
    value.encode()
    return value


FormText = Annotated[str, Form(), AfterValidator(_encodable)]


def _searchable(value: str | None) -> str | None:
    problem = None if value is None else query_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# ?q= on the API's list: words to look for in titles, tags and content. (The
# search page reads its `q` itself, to show a problem with it beside the box.)
SearchText = Annotated[
    str | None,
    Query(
        max_length=MAX_QUERY_LENGTH,
        description="Words to search for in titles, tags and content; results best first.",
    ),
    AfterValidator(_searchable),
]
# A form's file input: None when the form has none (an empty input still sends
# a part without a filename: see `chosen_file` in app/pages/rendering.py).
FormFile = Annotated[UploadFile | None, File()]
# A form's input with `multiple`: the files chosen (empty parts for none).
FormFiles = Annotated[list[UploadFile] | None, File()]


async def client_address(request: Request) -> str:
    """The client's IP address, as the server saw it (behind a proxy: see
    the README's production command for the headers uvicorn may trust)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
# ?fragment=1 asks a list page for just its cards and pager, for "Load more" in place.
Fragment = Annotated[bool, Query()]
# The API's upload parameter (multipart field `file`).
ImageUpload = Annotated[UploadFile, File(description="A JPEG, PNG, WebP or GIF image.")]


# --- who is asking: the API --------------------------------------------------------

# auto_error=False so that a missing token gets the same clear 401 as a bad one.
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/users/token", auto_error=False)


async def get_current_user(
    token: Annotated[str | None, Depends(bearer_token)],
    settings: SettingsDep,
    session: SessionDep,
) -> User:
    user = await user_from_token(token, settings, session)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Not authenticated: log in and send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_optional_user(
    token: Annotated[str | None, Depends(bearer_token)],
    settings: SettingsDep,
    session: SessionDep,
) -> User | None:
    """The user of the Bearer token, or None for a visitor (public routes that
    say more to a logged-in user: `liked_by_me`)."""
    return await user_from_token(token, settings, session)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


# --- who is asking: the pages ----------------------------------------------------


async def check_csrf(request: Request, settings: SettingsDep) -> None:
    """Every state-changing page request must carry a valid CSRF token."""
    if request.method not in SAFE_METHODS:
        await verify_csrf(request, settings)


async def get_page_user(
    request: Request, settings: SettingsDep, session: SessionDep
) -> User | None:
    """The logged-in user (the login cookie), or None for a visitor."""
    user = await user_from_token(request.cookies.get(LOGIN_COOKIE), settings, session)
    # The layout (navigation, error pages) needs who is logged in. It gets a
    # plain copy, not the row: if the request fails, the rollback expires every
    # row of the session, and reading an expired row would need SQL.
    request.state.user = None if user is None else UserPrivate.model_validate(user)
    return user


OptionalPageUser = Annotated[User | None, Depends(get_page_user)]


async def require_page_user(request: Request, user: OptionalPageUser) -> User:
    if user is None:
        raise LoginRequired(login_path(request))
    return user


PageUser = Annotated[User, Depends(require_page_user)]

# On every page router, so that no page can forget them: the CSRF check on
# every form, and who is logged in for every page's navigation.
PAGE_DEPENDENCIES = [Depends(check_csrf), Depends(get_page_user)]


# --- rows the asker may change -------------------------------------------------------


def _own_post(
    get_user: Callable[..., Awaitable[User]], *, or_admin: bool = False
) -> Callable[..., Awaitable[Post]]:
    """A dependency giving the post of the path, if `get_user`'s user wrote it
    (or, with `or_admin`, is an admin)."""

    async def own_post(
        post_id: PostId, session: SessionDep, user: Annotated[User, Depends(get_user)]
    ) -> Post:
        post = await posts.get_post(session, post_id)
        allowed = posts.may_delete(post, user) if or_admin else post.user_id == user.id
        if not allowed:
            raise Forbidden("Only the author can change this post.")
        return post

    return own_post


OwnPost = Annotated[Post, Depends(_own_post(get_current_user))]
OwnPagePost = Annotated[Post, Depends(_own_post(require_page_user))]
# Deleting a post: its author, or an admin.
RemovablePost = Annotated[Post, Depends(_own_post(get_current_user, or_admin=True))]
RemovablePagePost = Annotated[Post, Depends(_own_post(require_page_user, or_admin=True))]


async def get_own_account(user_id: UserId, session: SessionDep, current_user: CurrentUser) -> User:
    """The user of the path, if it is the one asking."""
    user = await users.get_user(session, user_id)
    if user.id != current_user.id:
        raise Forbidden("You can only change your own account.")
    return user


OwnAccount = Annotated[User, Depends(get_own_account)]


# --- who may publish -------------------------------------------------------------------


def ensure_may_publish(user: User, settings: Settings) -> None:
    """With REQUIRE_VERIFIED_EMAIL, only a verified address may publish (403)."""
    if settings.require_verified_email and not user.email_verified:
        raise Forbidden(
            "Confirm your email address before publishing: open the link we sent you, "
            "or ask for a new one on your account page."
        )


def _publisher(
    get_user: Callable[..., Awaitable[User]],
) -> Callable[..., Awaitable[User]]:
    """A dependency giving `get_user`'s user, if they may publish."""

    async def publisher(user: Annotated[User, Depends(get_user)], settings: SettingsDep) -> User:
        ensure_may_publish(user, settings)
        return user

    return publisher


Publisher = Annotated[User, Depends(_publisher(get_current_user))]
PagePublisher = Annotated[User, Depends(_publisher(require_page_user))]


def _commentable_post(
    get_user: Callable[..., Awaitable[User]],
) -> Callable[..., Awaitable[Post]]:
    """A dependency giving the post of the path, if `get_user`'s user may
    comment on it: the post is found first (404), then the user checked (403)."""

    async def commentable_post(
        post_id: PostId,
        session: SessionDep,
        settings: SettingsDep,
        user: Annotated[User, Depends(get_user)],
    ) -> Post:
        post = await posts.get_post(session, post_id)
        ensure_may_publish(user, settings)
        return post

    return commentable_post


CommentablePost = Annotated[Post, Depends(_commentable_post(get_current_user))]
CommentablePagePost = Annotated[Post, Depends(_commentable_post(require_page_user))]
