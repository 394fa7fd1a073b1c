"""SQLite pool size, side by side: `python bench/pool.py`.

Serves the home page in-process (ASGI calls, no HTTP) with 32 requests at once,
once with the app's pool (app.db.SQLITE_POOL_SIZE connections, no overflow) and
once with SQLAlchemy's default (5 + 10 overflow), alternating rounds on the same
seeded database. Prints the process CPU time per request of each and the ratio.

Options: --requests N per round (default 1500), --rounds N (default 3).
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app.main as main_module  # noqa: E402
from app import db, sqlite  # noqa: E402
from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from bench.server import SECRET, app_environment, migrate  # noqa: E402
from bench.throughput import seed  # noqa: E402

CONCURRENCY = 32
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 80),
}


def default_pool_engine(database_url: str) -> AsyncEngine:
    """The app's engine with SQLAlchemy's default pool instead of its own."""
    engine = create_async_engine(database_url, module=sqlite.DBAPI(), pool_reset_on_return=None)
    event.listen(engine.sync_engine, "connect", db._configure_sqlite)
    return engine


async def cpu_per_request(app: Any, requests: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"/ answered {message['status']}")

    async def client(count: int) -> None:
        for _ in range(count):
            await app(dict(SCOPE), receive, send)

    await client(100)  # warm: connections, compiled statements, templates
    started = time.process_time()
    await asyncio.gather(*(client(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (requests // CONCURRENCY * CONCURRENCY)


async def measure(settings: Settings, requests: int, rounds: int) -> dict[str, list[float]]:
    own = create_app(settings)
    default = create_app(settings)
    results: dict[str, list[float]] = {"own": [], "default": []}
    async with own.router.lifespan_context(own):
        # The lifespan builds its engine with app.main.create_engine.
        main_module.create_engine = default_pool_engine
        try:
            async with default.router.lifespan_context(default):
                for _ in range(rounds):
                    results["own"].append(await cpu_per_request(own, requests))
                    results["default"].append(await cpu_per_request(default, requests))
        finally:
            main_module.create_engine = db.create_engine
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="blog-pool-"))
    env = app_environment(workdir)
    try:
        migrate(env)
        asyncio.run(seed(env["DATABASE_URL"]))
        settings = Settings(
            _env_file=None,
            environment="production",
            database_url=env["DATABASE_URL"],
            secret_key=SECRET,  # type: ignore[call-arg]
            media_root=workdir / "media",
        )
        results = uvloop.run(measure(settings, options.requests, options.rounds))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    own = statistics.median(results["own"]) * 1000
    default = statistics.median(results["default"]) * 1000
    print(f"home page, {CONCURRENCY} requests at once, CPU per request (median of rounds):")
    print(f"  pool of {db.SQLITE_POOL_SIZE}, no overflow:  {own:.2f} ms")
    print(f"  default pool (5 + 10):    {default:.2f} ms")
    print(f"  ratio: {own / default:.2f}")


if __name__ == "__main__":
    main()
