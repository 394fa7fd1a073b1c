"""Throughput of the blog, in one run: against the ceiling,
`python bench/throughput.py`, or against another version of itself,
`python bench/throughput.py --against REF`.

Both ways measure side by side. Figures from two separate runs cannot say
whether the app got faster: the load generator shares the machine with the
server, and on these machines the same code measures a third faster or
slower from one minute to the next. So each run seeds one fresh SQLite
database (50 users, 1,000 posts), serves it with uvicorn (uvloop, httptools),
one worker, in production mode (ENVIRONMENT=production, as it would be
deployed), and loads each route on two servers back to back, at 32
connections for a fixed time, for several short rounds, with the other
server first in every other round so that drift favours neither. The load
comes from wrk where it is installed (Debian: apt-get install wrk), else from
a small asyncio HTTP/1.1 client that measures the same figures. It prints
medians over the rounds.

Against the ceiling (the default): the second server is a minimal app that
answers each route with a static body of the same size and type as the
blog's (`ceiling` in bench/server.py), so the ratio is the share of the
server's capacity the blog keeps for itself. Per route it prints req/s, p50
and p99, the ceiling's req/s, the ratio to the ceiling (each round's ratio
compares two loads taken one after the other) with the lowest and highest,
the SQL statements one request runs (counted in-process, same database) and
the size of the body. Defaults: --rounds 7, --duration 2, all six routes.

Against REF (a commit, a branch, `HEAD~3`): the second server is the blog as
it was at REF, exported with `git archive` into a temporary directory and
served from the same database, migrated by the working tree (so the schema
must be the same in both versions). Per route and version it prints req/s,
the CPU time the server process spent per request (read from /proc, so Linux
only) and the working tree's CPU ratio to REF. CPU per request is the steadier
figure: it does not depend on how the load generator and the server share the
cores; even so, a difference under about 5% is noise. Defaults: --rounds 5,
--duration 3, routes /, /posts/500 and /api/posts.

Options: --against REF, --rounds N, --duration SECONDS, --connections N
(default 32), --client wrk|python, --route PATH (repeat, to load only those).
"""

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.main import create_app  # noqa: E402
from app.markdown import render_post  # noqa: E402
from app.models import Post, User, utcnow  # noqa: E402
from app.security import hash_password  # noqa: E402
from bench.server import SECRET, UVICORN_FAST, app_environment, migrate, uvicorn  # noqa: E402

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
AGAINST_ROUTES = ["/", "/posts/500", "/api/posts"]
WORKING_TREE = "working tree"


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
                username_key=f"user{n}",
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
            rendered = render_post(paragraph)
            session.add(
                Post(
                    title=f"Post number {n}",
                    content=paragraph,
                    content_html=rendered.html,
                    excerpt=rendered.excerpt,
                    user_id=author.id,
                    date_posted=posted,
                    updated_at=posted,
                )
            )
    await engine.dispose()


async def count_statements(settings: Settings, routes: list[str]) -> dict[str, int]:
    """The SQL statements one request to each route runs, once warm."""
    app = create_app(settings)
    counts: dict[str, int] = {}
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    # On every engine (the app makes its own in its lifespan); this process has no other.
    event.listen(Engine, "before_cursor_execute", record)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for route in routes:
                    await client.get(route)  # warm: connect, compile, cache
                    statements.clear()
                    response = await client.get(route)
                    response.raise_for_status()
                    counts[route] = len(statements)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return counts


# --- load generators -----------------------------------------------------------------


def wrk_ms(text: str) -> float:
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
    p50 = wrk_ms(re.search(r"\s50%\s+(\S+)", output)[1])  # type: ignore[index]
    p99 = wrk_ms(re.search(r"\s99%\s+(\S+)", output)[1])  # type: ignore[index]
    return Load(rate, p50, p99)


async def python_load(url: str, connections: int, duration: int) -> Load:
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
    return asyncio.run(python_load(url, connections, duration))


def load_generator(options: argparse.Namespace) -> Callable[..., Load]:
    """Load a URL as the options say: `measure(url)`, or `measure(url, seconds)`
    for another duration (a warm-up)."""
    load = load_with_wrk if options.client == "wrk" else load_with_python

    def measure(url: str, duration: int | None = None) -> Load:
        return load(url, options.connections, duration or options.duration)

    return measure


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far, in all its threads,
    including those that have ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


# --- against the ceiling -------------------------------------------------------------


def against_ceiling(options: argparse.Namespace, routes: list[str]) -> None:
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
            secret_key=SECRET,
            media_root=workdir / "media",
        )
        statements = asyncio.run(count_statements(settings, routes))

        rounds: dict[str, list[tuple[Load, Load]]] = {route: [] for route in routes}
        with uvicorn("app.main:create_app", env, "--factory", *UVICORN_FAST) as (blog, _pid):
            spec = {}
            for route in routes:
                response = httpx.get(blog + route)
                response.raise_for_status()
                spec[route] = [len(response.content), response.headers["content-type"]]
            spec_file = workdir / "ceiling.json"
            spec_file.write_text(json.dumps(spec))
            ceiling_env = {"BENCH_CEILING_SPEC": str(spec_file)}
            with uvicorn("bench.server:ceiling", ceiling_env, "--factory", *UVICORN_FAST) as (
                ceiling,
                _pid,
            ):
                for number in range(options.rounds):
                    for route in routes:
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
    for route in routes:
        loads = rounds[route]
        ratios = [blog.requests_per_second / top.requests_per_second for blog, top in loads]
        print(
            f"{ROUTE_NAMES.get(route, route):<20}"
            f"{statistics.median(blog.requests_per_second for blog, _ in loads):>9.0f}"
            f"{statistics.median(blog.p50_ms for blog, _ in loads):>9.1f}"
            f"{statistics.median(blog.p99_ms for blog, _ in loads):>9.1f}"
            f"{statistics.median(top.requests_per_second for _, top in loads):>10.0f}"
            f"{statistics.median(ratios):>7.1%} {min(ratios):>6.1%}-{max(ratios):<6.1%}"
            f"{statements[route]:>8}  {spec[route][0]} B"
        )


# --- against another version ---------------------------------------------------------


def export(ref: str, target: Path) -> str:
    """The files of git `ref` in `target` (the repository itself is left as it
    is); returns the commit's short hash."""

    def git(*args: str) -> bytes:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout

    commit = git("rev-parse", "--short", "--verify", f"{ref}^{{commit}}").decode().strip()
    with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", commit))) as archive:
        archive.extractall(target, filter="data")
    return commit


def against_ref(options: argparse.Namespace, routes: list[str]) -> None:
    measure = load_generator(options)
    workdir = Path(tempfile.mkdtemp(prefix="blog-against-"))
    other = workdir / "ref"
    env = app_environment(workdir)
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        try:
            commit = export(options.against, other)
        except subprocess.CalledProcessError as error:
            sys.exit(f"cannot export {options.against}: {error.stderr.decode().strip()}")
        versions = {options.against: other, WORKING_TREE: ROOT}
        migrate(env)
        asyncio.run(seed(env["DATABASE_URL"]))
        with ExitStack() as servers:
            started = {
                name: servers.enter_context(
                    uvicorn("app.main:create_app", env, "--factory", *UVICORN_FAST, checkout=path)
                )
                for name, path in versions.items()
            }
            for url, _pid in started.values():  # warm up: connect, compile, fill caches
                for route in routes:
                    measure(url + route, 1)
            for number in range(options.rounds):
                # Each version goes first in every other round, so that neither
                # always runs right after the other's load.
                order = list(started.items())[:: 1 if number % 2 == 0 else -1]
                for route in routes:
                    for name, (url, pid) in order:
                        before = cpu_seconds(pid)
                        result = measure(url + route)
                        spent = cpu_seconds(pid) - before
                        served = result.requests_per_second * options.duration
                        rates.setdefault((name, route), []).append(result.requests_per_second)
                        cpu.setdefault((name, route), []).append(spent / served * 1000)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"{WORKING_TREE} against {options.against} ({commit}); client: {options.client}, "
        f"{options.connections} connections, {options.duration} s per route and version, "
        f"{options.rounds} rounds (medians); one uvicorn worker each; "
        f"SQLite, {USERS} users, {POSTS} posts"
    )
    width = max(len(route) for route in routes) + 2
    version_width = max(len(name) for name in versions) + 2
    header = (
        f"{'route':<{width}}{'version':<{version_width}}{'req/s':>8}"
        f"{'CPU ms/req':>12}{'CPU ratio':>11}"
    )
    print(header)
    print("-" * len(header))
    for route in routes:
        reference = statistics.median(cpu[(options.against, route)])
        for name in versions:
            cpu_ms = statistics.median(cpu[(name, route)])
            print(
                f"{route:<{width}}{name:<{version_width}}"
                f"{statistics.median(rates[(name, route)]):>8.0f}"
                f"{cpu_ms:>12.3f}{cpu_ms / reference:>11.2f}"
            )


# --- the run -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--against",
        metavar="REF",
        help="compare the working tree with this git commit or branch instead of the ceiling",
    )
    parser.add_argument("--rounds", type=int, help="default 7, or 5 with --against")
    parser.add_argument(
        "--duration", type=int, help="seconds per load; default 2, or 3 with --against"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument(
        "--route",
        action="append",
        dest="routes",
        metavar="PATH",
        help="load only this path (repeat for more); default: "
        f"{', '.join(ROUTES)}, or {', '.join(AGAINST_ROUTES)} with --against",
    )
    options = parser.parse_args()
    if options.against is None:
        options.rounds = options.rounds or 7
        options.duration = options.duration or 2
        against_ceiling(options, options.routes or ROUTES)
    else:
        options.rounds = options.rounds or 5
        options.duration = options.duration or 3
        against_ref(options, options.routes or AGAINST_ROUTES)


if __name__ == "__main__":
    main()
