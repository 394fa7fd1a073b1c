"""Lists of posts at 1,000 posts and at 1,000,000, side by side in one run:
`python bench/scale.py [--database sqlite|postgres]`.

A list must cost the same whatever the size of the table: it reads one page
through an index, and counts nothing. And while a slow list is served, the
server must go on answering everything else.

1. Loads two fresh databases, migrated with Alembic, with 50 users each: one
   with 1,000 posts, one with 1,000,000. User 1 wrote half of the posts, the
   other 49 the rest, and each user's post_count says how many. The rows go
   in through the drivers' bulk paths (SQLite: sqlite3's executemany in one
   transaction; PostgreSQL: asyncpg's COPY), then ANALYZE. Each load prints
   its time (target: under a minute).
2. Serves both with the blog under uvicorn (uvloop, httptools), one worker
   each, in production mode, at the same time.
3. For each list (the home page, user 1's author page, /api/posts,
   /api/users/1/posts, and searches for a word in every post and for one in
   every 98th), the first page and the next one (through the cursor
   the first page links to), times requests one at a time, alternating
   between the two servers, and prints the p50 at each size and their ratio
   (target: at most 1.5; for a search at most 3).
4. The p99 of /health, one request at a time, on each server: idle, and
   while two clients (in another process) load the slowest list of step 3 in
   a loop, taking turns over five rounds; and their ratio (target: at most 3
   at 1,000,000 posts). The figures at 1,000 posts tell what the load itself
   costs, whatever the size of the table.

Options: --database sqlite|postgres (default sqlite; postgres starts a
throwaway cluster as the tests do, see tests/legs.py), --warmup N (default
30) and --requests N (default 200) per list, page and size,
--health-requests N (default 500) for /health idle and as many loaded,
--large N (default 1,000,000 posts).
"""

import argparse
import asyncio
import html
import multiprocessing
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import UVICORN_FAST, app_environment, migrate, uvicorn  # noqa: E402

USERS = 50
SMALL = 1_000
LISTS = [
    "/",
    "/users/1/posts",
    "/api/posts",
    "/api/users/1/posts",
    # Search: a word in every post (FILLER), and one in every 98th (user 7's).
    "/search?q=async+python",
    "/api/posts?q=thousand",
    "/api/posts?q=user7",
]
# The migration that makes the search index fills it from the posts there are
# (as it would for a blog that had them): the loader writes the posts at the
# revision before it, then upgrades.
BEFORE_SEARCH = "0012"
PAGES = ["first", "next"]  # the next page: the one after the first, by its cursor
# Some 300 characters, as a short post; the number and author in front make
# each one different.
FILLER = (
    "Async Python serves many requests with one thread, as long as nothing "
    "blocks the event loop. A list of posts reads one page through an index: "
    "the newest ten, or the ten after the last one shown. It never counts the "
    "table, so the page costs the same whether the blog has a thousand posts "
    "or a million of them."
)
# /health is timed in rounds, idle and loaded in turns: see health_p99.
HEALTH_ROUNDS = 5
LOAD_MORE = re.compile(r'<a class="button load-more" href="([^"]+)"')


# --- the rows ------------------------------------------------------------------------

# The columns the loader fills; the others keep their defaults (image: NULL).
USER_COLUMNS = [
    "id",
    "username",
    "username_key",
    "email",
    "password_hash",
    "created_at",
    "updated_at",
    "post_count",
]
POST_COLUMNS = ["id", "title", "content", "date_posted", "updated_at", "user_id"]


def author_of(number: int) -> int:
    """User 1 wrote every other post; users 2 to 50 take turns at the rest."""
    return 1 if number % 2 else 2 + (number // 2) % (USERS - 1)


def user_rows(posts: int, created: datetime) -> list[tuple[Any, ...]]:
    """USER_COLUMNS of the 50 users, with the number of posts each wrote."""
    counts = Counter(author_of(number) for number in range(1, posts + 1))
    # Nobody logs in: any string will do for the hash.
    return [
        (
            n,
            f"user{n}",
            f"user{n}",
            f"user{n}@example.com",
            "not-a-hash",
            created,
            created,
            counts[n],
        )
        for n in range(1, USERS + 1)
    ]


def post_rows(
    posts: int, newest: datetime, stamp: Callable[[datetime], Any]
) -> Iterator[tuple[Any, ...]]:
    """POST_COLUMNS of `posts` posts, one second apart and ending at `newest`,
    whose dates `stamp` turns into what the driver takes. A generator: a
    million rows never sit in memory at once."""
    for number in range(1, posts + 1):
        author = author_of(number)
        posted = stamp(newest - timedelta(seconds=posts - number))
        content = f"Post {number} by user{author}. {FILLER}"
        yield (number, f"Post {number}", content, posted, posted, author)


# --- loading -------------------------------------------------------------------------


def sqlite_stamp(moment: datetime) -> str:
    # As SQLAlchemy writes a DateTime to SQLite: UTC, no offset, always six
    # digits of microseconds (the app compares these strings in its queries).
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(database_url: str, posts: int) -> None:
    path = make_url(database_url).database
    assert path is not None
    newest = datetime.now(UTC)
    created = newest - timedelta(seconds=posts)
    connection = sqlite3.connect(path)
    try:
        # A throwaway database: were the machine to crash, it would be loaded
        # again, so there is no need to wait for the disk.
        connection.execute("PRAGMA synchronous=OFF")
        with connection:  # one transaction: a commit per row would take hours
            connection.executemany(
                "INSERT INTO users (id, username, username_key, email, password_hash,"
                " created_at, updated_at, post_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (*row[:5], sqlite_stamp(row[5]), sqlite_stamp(row[6]), row[7])
                    for row in user_rows(posts, created)
                ],
            )
            connection.executemany(
                "INSERT INTO posts (id, title, content, date_posted, updated_at, user_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                post_rows(posts, newest, sqlite_stamp),
            )
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def load_postgres(database_url: str, posts: int) -> None:
    dsn = make_url(database_url).set(drivername="postgresql")
    newest = datetime.now(UTC)
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "users",
                records=user_rows(posts, newest - timedelta(seconds=posts)),
                columns=USER_COLUMNS,
            )
            await connection.copy_records_to_table(
                "posts",
                records=post_rows(posts, newest, lambda moment: moment),
                columns=POST_COLUMNS,
            )
        # The rows brought their ids: move the sequences past them, or the
        # app's next insert would take id 1 again.
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"
        )
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('posts', 'id'), (SELECT max(id) FROM posts))"
        )
        # VACUUM as well: after a million inserts autovacuum would run it
        # anyway, in the middle of the timings.
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def analyze_postgres(database_url: str) -> None:
    """Statistics for the new search index (the planner's guess at how many
    posts hold a word decides how it searches), as autovacuum would gather."""
    dsn = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute("VACUUM ANALYZE posts_search")
    finally:
        await connection.close()


async def create_database(admin_url: str, name: str) -> str:
    """A new database in the cluster of `admin_url`; returns its URL."""
    dsn = make_url(admin_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def load(env: dict[str, str], posts: int) -> None:
    migrate(env, BEFORE_SEARCH)
    started = time.perf_counter()
    if env["DATABASE_URL"].startswith("sqlite"):
        load_sqlite(env["DATABASE_URL"], posts)
    else:
        asyncio.run(load_postgres(env["DATABASE_URL"], posts))
    loaded = time.perf_counter()
    migrate(env)
    if not env["DATABASE_URL"].startswith("sqlite"):
        asyncio.run(analyze_postgres(env["DATABASE_URL"]))
    print(
        f"loaded {USERS} users and {posts:,} posts in {loaded - started:.1f} s,"
        f" indexed them for search in {time.perf_counter() - loaded:.1f} s",
        flush=True,
    )


# --- measuring -----------------------------------------------------------------------


def next_page(client: httpx.Client, path: str) -> str:
    """The URL of the page after the first, as the first page gives it."""
    response = client.get(path)
    response.raise_for_status()
    if response.headers["content-type"].startswith("application/json"):
        separator = "&" if "?" in path else "?"
        return f"{path}{separator}{urlencode({'cursor': response.json()['next_cursor']})}"
    link = LOAD_MORE.search(response.text)
    if link is None:
        raise RuntimeError(f"{path} has no 'Load more' link")
    return html.unescape(link[1])


def p50_side_by_side(
    clients: dict[int, httpx.Client], urls: dict[int, str], warmup: int, requests: int
) -> dict[int, float]:
    """Median milliseconds of one request at a time, per size. The sizes take
    turns, request by request, so drift in the machine's speed favours neither."""
    for size, client in clients.items():
        for _ in range(warmup):
            client.get(urls[size]).raise_for_status()
    samples: dict[int, list[float]] = {size: [] for size in clients}
    order = list(clients)
    for number in range(requests):
        for size in order if number % 2 == 0 else reversed(order):
            started = time.perf_counter()
            response = clients[size].get(urls[size])
            samples[size].append(time.perf_counter() - started)
            response.raise_for_status()
    return {size: statistics.median(times) * 1000 for size, times in samples.items()}


def health_latencies(client: httpx.Client, requests: int) -> list[float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/health")
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    return latencies


def hammer(url: str, clients: int, started: Any, stop: Any, served: Any) -> None:
    """Load `url` with `clients` clients, each one request at a time, until
    `stop` is set; count the requests in `served`."""
    # Lower priority: where cores are few, these clients would otherwise
    # take the CPU from the /health client and delay its timings, which are
    # meant to be the server's.
    os.nice(10)
    # `started` is set once every client has its first answer: from then on
    # the server has work at all times.
    going = threading.Barrier(clients + 1)

    def client_loop() -> None:
        with httpx.Client(timeout=60) as client:
            client.get(url).raise_for_status()
            going.wait(timeout=60)
            while not stop.is_set():
                client.get(url).raise_for_status()
                with served.get_lock():
                    served.value += 1

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    going.wait(timeout=60)
    started.set()
    for thread in threads:
        thread.join()


@contextmanager
def loading(url: str, clients: int) -> Iterator[Any]:
    """`clients` clients loading `url` for as long as the block runs; yields
    the count of their requests served so far.

    They run in a process of their own: threads in the measuring process
    would hold the GIL while the /health client waits for it, and its timings
    would be the client's as much as the server's.
    """
    context = multiprocessing.get_context("spawn")
    started, stop, served = context.Event(), context.Event(), context.Value("i", 0)
    loader = context.Process(target=hammer, args=(url, clients, started, stop, served))
    loader.start()
    try:
        while not started.wait(timeout=0.1):
            if not loader.is_alive():
                raise RuntimeError(f"the clients loading {url} did not start")
        yield served
    finally:
        stop.set()
        loader.join(timeout=60)
        if loader.is_alive():
            loader.terminate()
    if loader.exitcode != 0:
        raise RuntimeError(f"the clients loading {url} failed")


@dataclass
class Health:
    idle_p99_ms: float
    loaded_p99_ms: float
    # The slow list's requests per second while /health was timed under load.
    list_rate: float


def health_p99(
    clients: dict[int, httpx.Client], slow_urls: dict[int, str], requests: int
) -> dict[int, Health]:
    """p99 of /health on each server, one request at a time, idle and while
    two clients load that server's `slow_urls`.

    The four measurements take turns over HEALTH_ROUNDS rounds, in one order
    and then the reverse: on a shared machine a p99 moves with whatever else
    runs, and this way drift favours none of them.
    """
    conditions = [(size, loaded) for size in clients for loaded in (False, True)]
    latencies: dict[tuple[int, bool], list[float]] = {key: [] for key in conditions}
    served = dict.fromkeys(clients, 0)
    seconds = dict.fromkeys(clients, 0.0)
    per_round = requests // HEALTH_ROUNDS
    for number in range(HEALTH_ROUNDS):
        for size, loaded in conditions if number % 2 == 0 else reversed(conditions):
            client = clients[size]
            if not loaded:
                latencies[(size, loaded)] += health_latencies(client, per_round)
                continue
            with loading(str(client.base_url.join(slow_urls[size])), clients=2) as count:
                before, started = count.value, time.perf_counter()
                latencies[(size, loaded)] += health_latencies(client, per_round)
                served[size] += count.value - before
                seconds[size] += time.perf_counter() - started

    def p99(key: tuple[int, bool]) -> float:
        return statistics.quantiles(latencies[key], n=100)[98] * 1000

    return {
        size: Health(p99((size, False)), p99((size, True)), served[size] / seconds[size])
        for size in clients
    }


# --- the run -------------------------------------------------------------------------


@contextmanager
def databases(
    database: str, workdir: Path, sizes: list[int]
) -> Iterator[dict[int, dict[str, str]]]:
    """The app's environment for a fresh database of each size."""
    environments = {}
    for size in sizes:
        env = app_environment(workdir / str(size))
        env["RATE_LIMITS_ENABLED"] = "false"  # the benchmark's clients send a lot
        environments[size] = env
    if database == "sqlite":
        for size in sizes:
            (workdir / str(size)).mkdir()
        yield environments
        return
    from tests.legs import postgres_cluster

    with postgres_cluster() as admin_url:
        for size in sizes:
            url = asyncio.run(create_database(admin_url, f"blog_{size}"))
            environments[size]["DATABASE_URL"] = url
        yield environments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--health-requests", type=int, default=500)
    parser.add_argument("--large", type=int, default=1_000_000)
    options = parser.parse_args()
    small, large = SMALL, options.large
    sizes = [small, large]

    begun = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="blog-scale-"))
    p50: dict[tuple[str, str], dict[int, float]] = {}
    try:
        with databases(options.database, workdir, sizes) as environments, ExitStack() as stack:
            for size in sizes:
                load(environments[size], size)
            servers = {
                size: stack.enter_context(
                    uvicorn("app.main:create_app", env, "--factory", *UVICORN_FAST)
                )[0]
                for size, env in environments.items()
            }
            clients = {
                size: stack.enter_context(httpx.Client(base_url=url, timeout=60))
                for size, url in servers.items()
            }
            print("timing the lists, one request at a time", flush=True)
            urls: dict[tuple[str, str], dict[int, str]] = {}
            for path in LISTS:
                urls[(path, "first")] = dict.fromkeys(sizes, path)
                # Each database has its own cursor: fetched once, then timed.
                urls[(path, "next")] = {size: next_page(clients[size], path) for size in sizes}
                for page in PAGES:
                    p50[(path, page)] = p50_side_by_side(
                        clients, urls[(path, page)], options.warmup, options.requests
                    )
            slowest = max(p50, key=lambda key: p50[key][large])
            print(f"timing /health, idle and while {slowest[0]} is loaded", flush=True)
            health = health_p99(clients, urls[slowest], options.health_requests)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"{options.database}, {USERS} users, user 1 wrote half the posts; one uvicorn "
        f"worker per size; p50 of {options.requests} requests one at a time, "
        f"after {options.warmup} to warm up"
    )
    header = (
        f"{'list':<22}{'page':<7}{f'p50 {small:,} ms':>16}{f'p50 {large:,} ms':>20}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for (path, page), times in p50.items():
        print(
            f"{path:<22}{page:<7}{times[small]:>16.2f}{times[large]:>20.2f}"
            f"{times[large] / times[small]:>8.2f}"
        )
    print("  (target: every ratio <= 1.5, a search's <= 3)")
    print()
    columns = [health[small], health[large]]
    rows = [
        ("idle", [f"{h.idle_p99_ms:.2f} ms" for h in columns]),
        (
            f"while 2 clients load {slowest[0]} ({slowest[1]} page)",
            [f"{h.loaded_p99_ms:.2f} ms" for h in columns],
        ),
        (
            "  ratio (target at the larger size: <= 3)",
            [f"{h.loaded_p99_ms / h.idle_p99_ms:.2f}" for h in columns],
        ),
        ("  the list meanwhile, requests/s", [f"{h.list_rate:.0f}" for h in columns]),
    ]
    width = max(len(name) for name, _cells in rows) + 2
    header = (
        f"{'/health p99, one request at a time':<{width}}"
        f"{f'{small:,} posts':>14}{f'{large:,} posts':>18}"
    )
    print(header)
    print("-" * len(header))
    for name, (at_small, at_large) in rows:
        print(f"{name:<{width}}{at_small:>14}{at_large:>18}")
    print(f"total time {time.perf_counter() - begun:.0f} s")


if __name__ == "__main__":
    main()
