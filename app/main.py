"""The application factory: lifespan, middleware, routers, error handlers.

Run it with `uvicorn app.main:create_app --factory`. A factory (rather than a
module-level `app`) means importing this module reads no settings and opens no
database, and each test can build an app around its own database.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from app import pages
from app.api import health
from app.api import posts as posts_api
from app.api import users as users_api
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import AppError
from app.middleware import SecurityHeadersMiddleware
from app.pages.rendering import render
from app.security import LoginRequired

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


ERROR_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    422: "Invalid request",
    500: "Something went wrong",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def _error_page(request: Request, status_code: int, message: str) -> Response:
    title = ERROR_TITLES.get(status_code, "Error")
    context = {"status_code": status_code, "title": title, "message": message}
    return render(request, "error.html", context, status_code=status_code)


def _add_error_handlers(app: FastAPI) -> None:
    """The API answers with JSON `{"detail": ...}`; pages answer with a page."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return _error_page(request, exc.status_code, exc.detail)

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.login_url, status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _is_api(request):
            return await http_exception_handler(request, exc)
        messages = {404: "There is nothing at this address."}
        return _error_page(request, exc.status_code, messages.get(exc.status_code, exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        return _error_page(request, 422, "Part of this address is not valid.")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback; the user sees none of it.
        message = "Something went wrong on our side. Please try again in a moment."
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=500)
        return _error_page(request, 500, message)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Blog",
        summary="An async FastAPI + SQLModel blog with a JSON API and server-rendered pages.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(SecurityHeadersMiddleware)

    api = APIRouter(prefix="/api")
    api.include_router(users_api.router)
    api.include_router(posts_api.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_error_handlers(app)
    return app
