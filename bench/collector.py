"""The garbage collector's share of the blog's time under load, at Python's
default threshold and at the app's, side by side in one run:
`python bench/collector.py`.

The app raises the threshold at which the collector scans the youngest
objects (`YOUNG_GC_THRESHOLD` in app/main.py). This serves the blog twice
from one seeded SQLite database (50 users, 1,000 posts, as
bench/throughput.py): once as it ships, once with Python's default of 700.
Both run through this module's `create_app`, which times the collector with
`gc.callbacks` and writes its figures to a file when the process gets
SIGUSR1. Each route is loaded on both servers in turns for several rounds,
and the table shows, per route and server, the medians of req/s, CPU time per
request (from /proc, so Linux only), the collector's time per request and its
collections of the youngest generation per 100 requests.

Options: --rounds N (default 5), --duration SECONDS (default 3),
--connections N (default 32), --client wrk|python, --route PATH (repeat;
default /, /posts/500, /api/posts).
"""

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app.main  # noqa: E402
from bench.compare import DEFAULT_ROUTES, cpu_seconds  # noqa: E402
from bench.server import app_environment, migrate, uvicorn  # noqa: E402
from bench.throughput import UVICORN_FAST, add_load_options, load_generator, seed  # noqa: E402

PYTHON_DEFAULT = gc.get_threshold()[0]


# --- in the served process ---------------------------------------------------------


def create_app() -> FastAPI:
    """The blog, with a stopwatch on the garbage collector.

    BENCH_YOUNG_GC_THRESHOLD, if set, replaces the app's threshold; SIGUSR1
    writes the collector's time and collections so far to BENCH_GC_FILE.
    """
    if threshold := os.environ.get("BENCH_YOUNG_GC_THRESHOLD"):
        app.main.YOUNG_GC_THRESHOLD = int(threshold)
    spent = 0.0
    collections = [0, 0, 0]
    started = 0.0

    def stopwatch(phase: str, info: dict[str, Any]) -> None:
        nonlocal spent, started
        # CPU time of the thread that collects, as the CPU time per request
        # it is compared with: a collection the scheduler interrupts is not
        # charged for the wait.
        if phase == "start":
            started = time.thread_time()
        else:
            spent += time.thread_time() - started
            collections[info["generation"]] += 1

    def report(_signal: int, _frame: FrameType | None) -> None:
        target = Path(os.environ["BENCH_GC_FILE"])
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps({"seconds": spent, "collections": collections}))
        partial.rename(target)

    gc.callbacks.append(stopwatch)
    signal.signal(signal.SIGUSR1, report)
    return app.main.create_app()


# --- the run ---------------------------------------------------------------------


def collector_so_far(pid: int, report: Path) -> tuple[float, int]:
    """Seconds spent collecting and young collections, as the server reports them."""
    report.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not report.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not report its garbage collector")
        time.sleep(0.01)
    figures = json.loads(report.read_text())
    return figures["seconds"], figures["collections"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser, rounds=5, duration=3)
    parser.add_argument("--route", action="append", dest="routes")
    options = parser.parse_args()
    routes = options.routes or DEFAULT_ROUTES
    measure = load_generator(options)

    thresholds = {
        f"default {PYTHON_DEFAULT:,}": PYTHON_DEFAULT,
        f"app {app.main.YOUNG_GC_THRESHOLD:,}": app.main.YOUNG_GC_THRESHOLD,
    }
    workdir = Path(tempfile.mkdtemp(prefix="blog-collector-"))
    env = app_environment(workdir)
    figures: dict[tuple[str, str], dict[str, list[float]]] = {
        (name, route): {"rate": [], "cpu": [], "gc": [], "young": []}
        for name in thresholds
        for route in routes
    }
    try:
        migrate(env)
        asyncio.run(seed(env["DATABASE_URL"]))
        with ExitStack() as servers:
            started = {}
            for number, (name, threshold) in enumerate(thresholds.items()):
                report = workdir / f"collector-{number}.json"
                server_env = {
                    **env,
                    "BENCH_YOUNG_GC_THRESHOLD": str(threshold),
                    "BENCH_GC_FILE": str(report),
                }
                url, pid = servers.enter_context(
                    uvicorn("bench.collector:create_app", server_env, "--factory", *UVICORN_FAST)
                )
                started[name] = (url, pid, report)
            for url, _pid, _report in started.values():  # warm up
                for route in routes:
                    measure(url + route, 1)
            for number in range(options.rounds):
                # Each server goes first in every other round.
                order = list(started.items())[:: 1 if number % 2 == 0 else -1]
                for route in routes:
                    for name, (url, pid, report) in order:
                        cpu_before = cpu_seconds(pid)
                        gc_before, young_before = collector_so_far(pid, report)
                        result = measure(url + route)
                        gc_after, young_after = collector_so_far(pid, report)
                        cpu_spent = cpu_seconds(pid) - cpu_before
                        served = result.requests_per_second * options.duration
                        row = figures[(name, route)]
                        row["rate"].append(result.requests_per_second)
                        row["cpu"].append(cpu_spent / served * 1000)
                        row["gc"].append((gc_after - gc_before) / served * 1000)
                        row["young"].append((young_after - young_before) / served * 100)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"client: {options.client}, {options.connections} connections, {options.duration} s "
        f"per route and server, {options.rounds} rounds (medians); one uvicorn worker each"
    )
    header = (
        f"{'route':<14}{'threshold':<16}{'req/s':>8}{'CPU ms/req':>12}"
        f"{'GC ms/req':>11}{'GC share':>10}{'young GCs/100 req':>19}"
    )
    print(header)
    print("-" * len(header))
    for route in routes:
        for name in thresholds:
            row = figures[(name, route)]
            median = {key: statistics.median(values) for key, values in row.items()}
            print(
                f"{route:<14}{name:<16}{median['rate']:>8.0f}{median['cpu']:>12.3f}"
                f"{median['gc']:>11.3f}{median['gc'] / median['cpu']:>10.1%}"
                f"{median['young']:>19.1f}"
            )


if __name__ == "__main__":
    main()
