"""Throughput of the blog against the ceiling, in one run: `python bench/throughput.py`.

1. Seeds a fresh SQLite database: 50 users, 1,000 posts.
2. Counts the SQL statements each route runs (in-process, same database).
3. Starts the blog with uvicorn (uvloop, httptools), one worker, in
   production mode (ENVIRONMENT=production, as it would be deployed), and the
   ceiling (bench/ceiling.py: static bodies of the same sizes) the same way.
4. Loads each route on both, alternately, at 32 connections for a fixed time,
   with wrk where it is installed (Debian: apt-get install wrk), else with a
   small asyncio HTTP/1.1 client that measures the same figures. It does so
   for several short rounds, the blog first in one round and the ceiling
   first in the next: the load generator shares the machine with the server,
   and the machine's speed drifts by a third within minutes, so a ratio is
   only fair between two loads taken back to back.
5. Prints, per route, the median over the rounds of req/s, p50 and p99, of
   the ceiling, and of the ratio to the ceiling (each round's ratio compares
   two loads taken one after the other), with the lowest and highest ratio.

Options: --duration SECONDS (default 2), --rounds N (default 7),
--connections N (default 32), --client wrk|python.
"""

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import Post, User, utcnow  # noqa: E402
from app.security import hash_password  # noqa: E402
from bench.server import SECRET, app_environment, migrate, uvicorn  # noqa: E402

USERS, POSTS = 50, 1000
ROUTES = ["/", "/posts/500", "/users/25/posts", "/api/posts", "/api/posts/500", "/health"]
ROUTE_NAMES = {
    "/": "/",
    "/posts/500": "/posts/{id}",
    "/users/25/posts": "/users/{id}/posts",
    "/api/posts": "/api/posts",
    "/api/posts/500": "/api/posts/{id}",
    "/health": "/health",
}


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


# --- database ------------------------------------------------------------------------


async def seed(database_url: str) -> None:
    engine = create_engine(database_url)
    password_hash = await hash_password("benchmark-password")
    async with create_sessionmaker(engine)() as session, session.begin():
        users = [
            User(
                username=f"user{n}",
                email=f"user{n}@example.com",
                password_hash=password_hash,
                # The posts below go round the users: as many each as the author page shows.
                post_count=POSTS // USERS + (n < POSTS % USERS),
            )
            for n in range(USERS)
        ]
        session.add_all(users)
        await session.flush()
        start = utcnow() - timedelta(days=POSTS)
        for n in range(POSTS):
            author = users[n % USERS]
            assert author.id is not None
            posted = start + timedelta(hours=n)
            paragraph = f"Post {n} by {author.username}. " + "Some words about async Python. " * 12
            session.add(
                Post(
                    title=f"Post number {n}",
                    content=paragraph,
                    user_id=author.id,
                    date_posted=posted,
                    updated_at=posted,
                )
            )
    await engine.dispose()


async def count_statements(settings: Settings) -> dict[str, int]:
    app = create_app(settings)
    counts: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])

        event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for route in ROUTES:
                await client.get(route)  # warm: connect, compile, cache
                statements.clear()
                response = await client.get(route)
                response.raise_for_status()
                counts[route] = len(statements)
    return counts


# --- servers -------------------------------------------------------------------------


UVICORN_FAST = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")


# --- load generators -----------------------------------------------------------------


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_with_wrk(url: str, connections: int, duration: int) -> Load:
    output = subprocess.run(  # noqa: S603
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"{url} answered with errors:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50 = _wrk_ms(re.search(r"\s50%\s+(\S+)", output)[1])  # type: ignore[index]
    p99 = _wrk_ms(re.search(r"\s99%\s+(\S+)", output)[1])  # type: ignore[index]
    return Load(rate, p50, p99)


async def _python_load(url: str, connections: int, duration: int) -> Load:
    parts = httpx.URL(url)
    request = f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}\r\n\r\n".encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{url}: {head[:40]!r}")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head)[1])  # type: ignore[index]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Load(len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000)


def load_with_python(url: str, connections: int, duration: int) -> Load:
    return asyncio.run(_python_load(url, connections, duration))


def add_load_options(parser: argparse.ArgumentParser, *, rounds: int, duration: int) -> None:
    """The options of every benchmark that loads a server: rounds, seconds per
    load, connections and load generator."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--duration", type=int, default=duration)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )


def load_generator(options: argparse.Namespace) -> Callable[..., Load]:
    """Load a URL as the options say: `measure(url)`, or `measure(url, seconds)`
    for another duration (a warm-up)."""
    load = load_with_wrk if options.client == "wrk" else load_with_python

    def measure(url: str, duration: int | None = None) -> Load:
        return load(url, options.connections, duration or options.duration)

    return measure


# --- the run -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser, rounds=7, duration=2)
    options = parser.parse_args()
    measure = load_generator(options)

    workdir = Path(tempfile.mkdtemp(prefix="blog-throughput-"))
    env = app_environment(workdir)
    database_url = env["DATABASE_URL"]
    try:
        migrate(env)
        asyncio.run(seed(database_url))
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            secret_key=SECRET,  # type: ignore[call-arg]
            media_root=workdir / "media",
        )
        statements = asyncio.run(count_statements(settings))

        rounds: dict[str, list[tuple[Load, Load]]] = {route: [] for route in ROUTES}
        with uvicorn("app.main:create_app", env, "--factory", *UVICORN_FAST) as (blog, _pid):
            spec = {}
            for route in ROUTES:
                response = httpx.get(blog + route)
                response.raise_for_status()
                spec[route] = [len(response.content), response.headers["content-type"]]
            spec_file = workdir / "ceiling.json"
            spec_file.write_text(json.dumps(spec))
            ceiling_env = {"BENCH_CEILING_SPEC": str(spec_file)}
            with uvicorn("bench.ceiling:app", ceiling_env, *UVICORN_FAST) as (ceiling, _pid):
                for number in range(options.rounds):
                    for route in ROUTES:
                        # The ceiling goes first in every other round, so that
                        # drift in the machine's speed favours neither.
                        if number % 2:
                            ceiling_load = measure(ceiling + route)
                            app_load = measure(blog + route)
                        else:
                            app_load = measure(blog + route)
                            ceiling_load = measure(ceiling + route)
                        rounds[route].append((app_load, ceiling_load))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"client: {options.client}, {options.connections} connections, "
        f"{options.duration} s per route and server, {options.rounds} rounds (medians); "
        f"one uvicorn worker; SQLite, {USERS} users, {POSTS} posts"
    )
    header = (
        f"{'route':<20}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'ceiling':>10}{'ratio':>8}{'low-high':>14}{'SQL/req':>9}  body"
    )
    print(header)
    print("-" * len(header))
    for route in ROUTES:
        loads = rounds[route]
        ratios = [blog.requests_per_second / top.requests_per_second for blog, top in loads]
        print(
            f"{ROUTE_NAMES[route]:<20}"
            f"{statistics.median(blog.requests_per_second for blog, _ in loads):>9.0f}"
            f"{statistics.median(blog.p50_ms for blog, _ in loads):>9.1f}"
            f"{statistics.median(blog.p99_ms for blog, _ in loads):>9.1f}"
            f"{statistics.median(top.requests_per_second for _, top in loads):>10.0f}"
            f"{statistics.median(ratios):>7.1%} {min(ratios):>6.1%}-{max(ratios):<6.1%}"
            f"{statements[route]:>8}  {spec[route][0]} B"
        )


if __name__ == "__main__":
    main()
