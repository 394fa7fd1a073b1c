"""The application factory: lifespan, routers, error handlers.

Run it with `uvicorn app.main:create_app --factory`. A factory (rather than a
module-level `app`) means importing this module reads no settings and opens no
database, and each test can build an app around its own database.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app.api import health
from app.api import posts as posts_api
from app.api import users as users_api
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import AppError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


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

    api = APIRouter(prefix="/api")
    api.include_router(users_api.router)
    api.include_router(posts_api.router)
    app.include_router(api)
    app.include_router(health.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    return app
