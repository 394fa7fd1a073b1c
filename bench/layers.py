"""Where a request's time goes, layer by layer, in one process:
`python bench/layers.py`.

Seeds a fresh SQLite database (50 users, 1,000 posts, as bench/throughput.py),
builds the app in this process in production mode, and calls it as an ASGI
app, one request after another. A stopwatch runs around each of the app's
layers:

- the database: the query functions of `app.posts` and `app.users` that the
  route calls (the ORM and the driver: for a list, one statement that reads
  the page and its authors, `joinedload`);
- the session: making the request's `AsyncSession`, its commit (which gives
  the connection back to the pool) and its close;
- the template: `render()` of `app.pages.rendering`;
- the response model: FastAPI validating what a JSON route returned against
  its `response_model` and writing the JSON;
- everything else: the middleware, routing, solving the dependencies,
  parameters and the response itself.

For each route it prints the time per request and each layer's share of it,
medians over several rounds taken in turns. Without an HTTP server and a load
generator sharing the machine, requests take less time than under
bench/throughput.py; the shares are what carries over.

Options: --rounds N (default 7), --requests N per route and round (default 300).
"""

import argparse
import asyncio
import functools
import inspect
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

import fastapi.routing
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import posts, users  # noqa: E402
from app.main import create_app  # noqa: E402
from app.pages import posts as post_pages  # noqa: E402
from app.storage.lifecycle import FileSession  # noqa: E402
from bench.server import app_environment, migrate  # noqa: E402
from bench.throughput import ROUTE_NAMES, ROUTES, seed  # noqa: E402

LAYERS = ("database", "session", "template", "response model")
REST = "everything else"


class Stopwatch:
    """Adds up the time spent inside chosen functions, per layer."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)

    def time(self, layer: str, owner: ModuleType | type, name: str) -> None:
        """Replace `owner.name` (a module's function or a class's method) with
        a copy that adds its time to `layer`."""
        function: Callable[..., Any] = getattr(owner, name)
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await function(*args, **kwargs)
                finally:
                    self.spent[layer] += time.perf_counter() - started

            setattr(owner, name, timed_coroutine)
        else:

            @functools.wraps(function)
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.spent[layer] += time.perf_counter() - started

            setattr(owner, name, timed)


def _scope(route: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def measure(rounds: int, requests: int) -> dict[str, dict[str, list[float]]]:
    """Per route, per layer ("request" for the whole), seconds per request in each round."""
    stopwatch = Stopwatch()
    stopwatch.time("database", posts, "list_posts")
    stopwatch.time("database", posts, "get_post")
    stopwatch.time("database", users, "get_user")
    for method in ("__init__", "commit", "close"):
        stopwatch.time("session", FileSession, method)
    stopwatch.time("template", post_pages, "render")
    stopwatch.time("response model", fastapi.routing, "serialize_response")

    app = create_app()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(route: str, count: int) -> float:
        scope = _scope(route)
        started = time.perf_counter()
        for _ in range(count):
            await app(dict(scope), receive, send)
        return time.perf_counter() - started

    figures: dict[str, dict[str, list[float]]] = {
        route: {layer: [] for layer in ("request", *LAYERS, REST)} for route in ROUTES
    }
    async with app.router.lifespan_context(app):
        for route in ROUTES:  # warm up: compile statements and templates, fill caches
            await run(route, 100)
        for number in range(rounds):
            order = ROUTES if number % 2 == 0 else ROUTES[::-1]
            for route in order:
                stopwatch.spent.clear()
                elapsed = await run(route, requests)
                figures[route]["request"].append(elapsed / requests)
                for layer in LAYERS:
                    figures[route][layer].append(stopwatch.spent[layer] / requests)
                figures[route][REST].append((elapsed - sum(stopwatch.spent.values())) / requests)
    if set(statuses) != {200}:
        raise RuntimeError(f"some requests failed: {sorted(set(statuses))}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="blog-layers-"))
    try:
        env = app_environment(workdir)
        migrate(env)
        asyncio.run(seed(env["DATABASE_URL"]))
        os.environ.update(env)
        figures = uvloop.run(measure(options.rounds, options.requests))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"in-process ASGI calls, one at a time; {options.rounds} rounds of "
        f"{options.requests} requests per route (medians); µs per request and share"
    )
    header = f"{'route':<20}{'request':>9}" + "".join(f"{name:>18}" for name in (*LAYERS, REST))
    print(header)
    print("-" * len(header))
    for route in ROUTES:
        total = statistics.median(figures[route]["request"])
        cells = [statistics.median(figures[route][layer]) for layer in (*LAYERS, REST)]
        print(
            f"{ROUTE_NAMES[route]:<20}{total * 1e6:>9.0f}"
            + "".join(
                f"{cell * 1e6:>10.0f} ({cell / total:>4.0%})" if cell > 0.5e-6 else f"{'-':>18}"
                for cell in cells
            )
        )


if __name__ == "__main__":
    main()
