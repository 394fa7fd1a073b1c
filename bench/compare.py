"""Two versions of the blog side by side in one run: `python bench/compare.py REF`.

Did a change make the app faster? Figures from two separate runs cannot say:
on these machines the same code measures a third faster or slower from one
minute to the next. This serves the working tree and git REF (a commit, a
branch, `HEAD~3`) at the same time, from one seeded SQLite database (50
users, 1,000 posts, as `bench/throughput.py`), and loads each route on one,
then the other, for several rounds. It prints per route and version the
median req/s and the median CPU time the server process spent per request
(read from /proc, so Linux only), and the working tree's ratio to REF.

CPU per request is the steadier figure: it does not depend on how the load
generator and the server share the cores. The schema must be the same in
both versions (the database is migrated by the working tree).

Options: --rounds N (default 5), --duration SECONDS (default 3),
--connections N (default 32), --client wrk|python, --route PATH (repeat;
default /, /posts/500, /api/posts).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import app_environment, migrate, uvicorn  # noqa: E402
from bench.throughput import UVICORN_FAST, add_load_options, load_generator, seed  # noqa: E402

DEFAULT_ROUTES = ["/", "/posts/500", "/api/posts"]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far, in all its threads,
    including those that have ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", help="the git commit or branch to compare the working tree with")
    add_load_options(parser, rounds=5, duration=3)
    parser.add_argument("--route", action="append", dest="routes")
    options = parser.parse_args()
    routes = options.routes or DEFAULT_ROUTES
    measure = load_generator(options)

    workdir = Path(tempfile.mkdtemp(prefix="blog-compare-"))
    other = workdir / "ref"
    subprocess.run(  # noqa: S603
        ["git", "worktree", "add", "--detach", str(other), options.ref],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    versions = {options.ref: other, "working tree": ROOT}
    env = app_environment(workdir)
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
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
        subprocess.run(  # noqa: S603
            ["git", "worktree", "remove", "--force", str(other)],  # noqa: S607
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"client: {options.client}, {options.connections} connections, {options.duration} s "
        f"per route and version, {options.rounds} rounds (medians); one uvicorn worker each"
    )
    header = f"{'route':<16}{'version':<16}{'req/s':>8}{'CPU ms/req':>12}{'CPU ratio':>11}"
    print(header)
    print("-" * len(header))
    for route in routes:
        reference = statistics.median(cpu[(options.ref, route)])
        for name in versions:
            cpu_ms = statistics.median(cpu[(name, route)])
            print(
                f"{route:<16}{name:<16}{statistics.median(rates[(name, route)]):>8.0f}"
                f"{cpu_ms:>12.3f}{cpu_ms / reference:>11.2f}"
            )


if __name__ == "__main__":
    main()
