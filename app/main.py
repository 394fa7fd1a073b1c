"""The application: lifespan, middleware, routers, error handlers.

Run it with the FastAPI CLI: `fastapi dev` while you work on it (it reloads
on every change), `fastapi run` in production. Both find the module-level
`app` below. `create_app()` builds it from the settings; tests call it with
settings of their own, so that each test gets an app around its own
database. Importing this module reads the settings but opens no database:
the engine is made in the lifespan, when the server starts.
"""

import logging
import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

from app.api import accounts as accounts_api
from app.api import comments as comments_api
from app.api import health
from app.api import posts as posts_api
from app.api import users as users_api
from app.config import Settings, app_settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.docs import OPENAPI_URL, add_docs
from app.errors import AppError
from app.mail import Mailer
from app.middleware import (
    BodySizeLimitMiddleware,
    HeadAsGetMiddleware,
    SecurityHeadersMiddleware,
)
from app.models import MAX_ID, Post, User, UserPrivate
from app.pages import accounts as account_pages
from app.pages import feeds
from app.pages import posts as post_pages
from app.pages.auth import LOGIN_COOKIE, LoginRequired
from app.pages.rendering import configure_templates, render
from app.ratelimits import RateLimiter
from app.security import user_from_token
from app.storage import (
    MediaFiles,
    StorageError,
    create_storages,
    register_storage,
    unregister_storage,
)
from app.workers import ImageWorkers, default_workers

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The largest request body, in files of MAX_UPLOAD_BYTES, plus room for a
# form's other fields. A file over its own limit is still read (Starlette
# spools it to disk) and refused beside its field, so the form comes back with
# what the user typed; only a body beyond this is refused unread.
BODY_LIMIT_IN_UPLOADS = 6
FORM_OVERHEAD_BYTES = 256 * 1024


ERROR_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Changed meanwhile",
    413: "Too large",
    422: "Invalid request",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Try again soon",
}

DATABASE_UNAVAILABLE = "The database is unavailable. Please try again in a moment."
# Seconds a client should wait before trying again after a 503.
RETRY_AFTER_SECONDS = 5
# What asyncpg raises itself while connecting, not wrapped by SQLAlchemy: the
# server refused (ConnectionRefusedError) or reset the connection, its host
# name does not resolve (socket.gaierror), or it did not answer in time.
CONNECT_ERRORS = (ConnectionError, socket.gaierror, TimeoutError)
# PostgreSQL's error codes for "not now" rather than "wrong": connection
# exceptions (08...), the server shutting down or starting up (57P...), and
# too many connections (53300).
UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")
# ... and for a write that lost a race: foreign key violation, serialization
# failure, deadlock.
RACE_SQLSTATES = ("23503", "40001", "40P01")
# SQLite's for a file it cannot open, lock, read or write. Its other
# OperationalErrors (SQLITE_ERROR: no such table, a syntax error) are bugs.
UNAVAILABLE_SQLITE_ERRORS = (
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
)


ROUTERS = (
    health.router,
    users_api.router,
    accounts_api.router,
    posts_api.router,
    comments_api.router,
    account_pages.router,
    post_pages.router,
    feeds.router,
)

CHANGED_MEANWHILE = (
    "Someone else changed this at the same moment, so nothing was saved. Reload and try again."
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


async def _error_page(request: Request, status_code: int, message: str) -> Response:
    """An error page in the site's layout, showing who is logged in.

    An error raised before the route's dependencies ran (no such route, a
    body too large) has not looked the user up yet: the page does it here,
    unless the database is the problem.
    """
    if not hasattr(request.state, "user") and status_code != 503:
        request.state.user = await _logged_in_user(request)
    title = ERROR_TITLES.get(status_code, "Error")
    context = {"status_code": status_code, "title": title, "message": message}
    return render(request, "error.html", context, status_code=status_code)


async def _deleted_meanwhile(request: Request) -> str | None:
    """ "Post not found." (or user) when the row the address names no longer
    exists; None when it does, or when the address names none."""
    for parameter, model, message in (
        ("post_id", Post, "Post not found."),
        ("user_id", User, "User not found."),
    ):
        if parameter not in request.path_params:
            continue
        try:
            row_id = int(request.path_params[parameter])
        except ValueError:
            return None
        if not 1 <= row_id <= MAX_ID:
            return None
        try:
            async with request.app.state.sessionmaker() as session:
                row = await session.get(model, row_id)
        except (SQLAlchemyError, OSError):
            return None
        return message if row is None else None
    return None


async def _logged_in_user(request: Request) -> UserPrivate | None:
    token = request.cookies.get(LOGIN_COOKIE)
    if not token:
        return None
    try:
        async with request.app.state.sessionmaker() as session:
            user = await user_from_token(token, app_settings(request), session)
    except (SQLAlchemyError, OSError):
        return None
    return None if user is None else UserPrivate.model_validate(user)


def _database_unreachable(exc: DBAPIError) -> bool:
    """Whether a database error means the database cannot be reached right now.

    `connection_invalidated` marks a connection lost during the request, which
    asyncpg reports as an InterfaceError or a plain DBAPIError (an
    InterfaceError without it is a bug, such as two statements at once on one
    session). Otherwise the driver's own error code tells: the exception
    classes do not, since SQLite raises OperationalError for a missing table.
    """
    if exc.connection_invalidated:
        return True
    sqlstate: str = getattr(exc.orig, "sqlstate", None) or ""
    sqlite_error: str = getattr(exc.orig, "sqlite_errorname", None) or ""
    return sqlstate.startswith(UNAVAILABLE_SQLSTATES) or sqlite_error.startswith(
        UNAVAILABLE_SQLITE_ERRORS
    )


def _changed_meanwhile(exc: DBAPIError) -> bool:
    """Whether the database refused a write because of another request's:
    a row it refers to was deleted meanwhile (a post for an account deleted a
    moment before), or PostgreSQL picked it to end a deadlock. The rules
    checked before writing make any other constraint failure a bug."""
    sqlstate: str = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate in RACE_SQLSTATES:
        return True
    return isinstance(exc, IntegrityError) and "FOREIGN KEY" in str(exc.orig).upper()


def _encodable(value: Any) -> Any:
    """`value` as JSON can carry it: characters that UTF-8 cannot encode become
    "?", and numbers JSON has no words for (NaN, Infinity) become strings."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {key: _encodable(item) for key, item in value.items()}
    return value


def _add_error_handlers(app: FastAPI) -> None:
    """The API answers with JSON `{"detail": ...}`; pages answer with a page."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        response: Response
        if _is_api(request):
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        else:
            response = await _error_page(request, exc.status_code, exc.detail)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(StorageError)
    async def storage_unavailable(request: Request, exc: StorageError) -> Response:
        # The transaction has been rolled back and its uploads deleted.
        logger.error("Storage failed: %s", exc)
        message = (
            "File storage is unavailable right now, so nothing was saved. "
            "Please try again in a moment."
        )
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=503)
        return await _error_page(request, 503, message)

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        if isinstance(exc, DBAPIError) and _changed_meanwhile(exc):
            logger.warning("A request lost a race: %s", exc.orig)
            return await changed_meanwhile_response(request)
        if isinstance(exc, DBAPIError) and not _database_unreachable(exc):
            # Any other database error is a bug: the 500 handler answers, and
            # Starlette logs the traceback.
            raise exc
        # One line without a traceback: while the database is down, every
        # request ends here. The driver's own message leaves out the SQL.
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        logger.error("The database is unavailable: %s: %s", type(reason).__name__, reason)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if _is_api(request):
            return JSONResponse({"detail": DATABASE_UNAVAILABLE}, status_code=503, headers=headers)
        response = await _error_page(request, 503, DATABASE_UNAVAILABLE)
        response.headers.update(headers)
        return response

    # The pool's TimeoutError: every connection stayed busy for pool_timeout.
    for error in (DBAPIError, PoolTimeoutError, *CONNECT_ERRORS):
        app.add_exception_handler(error, database_unavailable)

    async def changed_meanwhile_response(request: Request) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": CHANGED_MEANWHILE}, status_code=409)
        return await _error_page(request, 409, CHANGED_MEANWHILE)

    @app.exception_handler(StaleDataError)
    async def changed_meanwhile(request: Request, _exc: StaleDataError) -> Response:
        # Another request updated or deleted the row after this one loaded it
        # (see `updated_at_column` in models.py). The transaction is rolled
        # back, so whatever this request stored is deleted again. If the row
        # of the address is gone, that is what the client is told: a 404.
        missing = await _deleted_meanwhile(request)
        if missing is not None:
            if _is_api(request):
                return JSONResponse({"detail": missing}, status_code=404)
            return await _error_page(request, 404, missing)
        return await changed_meanwhile_response(request)

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.login_url, status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _is_api(request):
            return await http_exception_handler(request, exc)
        messages = {404: "There is nothing at this address."}
        page = await _error_page(
            request, exc.status_code, messages.get(exc.status_code, exc.detail)
        )
        # A 405 names the methods that would work (Allow), as HTTP asks.
        page.headers.update(exc.headers or {})
        return page

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            # FastAPI's own answer, but its errors echo the input, and JSON with
            # a lone surrogate ("\ud800") or NaN in it can be parsed but not
            # written.
            detail = _encodable(jsonable_encoder(exc.errors()))
            return JSONResponse({"detail": detail}, status_code=422)
        return await _error_page(
            request, 422, "Part of this request is not valid: check the address or the form."
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback; the user sees none of it.
        message = "Something went wrong on our side. Please try again in a moment."
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=500)
        return await _error_page(request, 500, message)


def _image_origins(settings: Settings) -> tuple[str, ...]:
    """Where pictures are served from besides this site, for the CSP's img-src."""
    if not settings.s3_bucket:
        return ()
    url = settings.s3_public_url or settings.s3_endpoint_url
    if not url:
        return ("https://*.amazonaws.com",)
    parts = urlsplit(url)
    return (f"{parts.scheme}://{parts.netloc}",)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    storages = create_storages(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.limiter = RateLimiter(
            app.state.sessionmaker, enabled=settings.rate_limits_enabled
        )
        app.state.storage = storages[settings.storage_backend]
        for storage in storages.values():
            register_storage(storage)
        app.state.images = ImageWorkers(
            max_upload_bytes=settings.max_upload_bytes, workers=default_workers()
        )
        try:
            yield
        finally:
            app.state.images.close()
            await engine.dispose()
            for storage in storages.values():
                unregister_storage(storage)

    app = FastAPI(
        title="Blog",
        summary="An async FastAPI + SQLModel blog with a JSON API and server-rendered pages.",
        lifespan=lifespan,
        # DOCS_ENABLED=false: no /docs, /redoc or /openapi.json. FastAPI's own
        # docs pages load their code from a CDN; app/docs.py serves it from here.
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL if settings.docs_enabled else None,
    )
    app.state.settings = settings
    app.state.mailer = Mailer(settings)
    configure_templates(settings)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=BODY_LIMIT_IN_UPLOADS * settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        image_origins=_image_origins(settings),
        hsts=settings.is_production,
    )
    # Added last, so it is the outermost: everything inside sees a GET.
    app.add_middleware(HeadAsGetMiddleware, native_head=("/static/", "/media/"))

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if settings.docs_enabled:
        add_docs(app)
    # Local media is served while it is where new files go, and after a switch
    # to S3 for as long as the files are there (see `python -m app storage migrate`).
    if settings.storage_backend == "local" or settings.media_root.is_dir():
        settings.media_root.mkdir(parents=True, exist_ok=True)
        app.mount("/media", MediaFiles(directory=settings.media_root), name="media")
    _add_error_handlers(app)
    return app


app = create_app()
