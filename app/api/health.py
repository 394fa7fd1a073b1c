"""Liveness with a database round trip, for load balancers and uptime checks."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """`{"status": "ok"}` when the database answers; 503 when it does not."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # One SELECT needs no transaction: in autocommit mode asyncpg
                # sends no BEGIN and no ROLLBACK, two of the check's four
                # round trips (with the pool's ping and the SELECT). Under
                # load each round trip waits its turn on the event loop, so
                # fewer of them keep the check quick. SQLite starts no
                # transaction for a SELECT, and switching modes would cost it
                # two trips to its thread.
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return JSONResponse({"detail": "The database is unavailable."}, status_code=503)
    return JSONResponse({"status": "ok"})
