"""Support code for the benchmarks (not a script to run): a migrated SQLite
database, uvicorn servers on 127.0.0.1, and the static "ceiling" app that
bench/throughput.py measures the blog against."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "benchmark-secret-key-benchmark-secret-key"
# How the benchmarks run uvicorn: the fast event loop and HTTP parser, no access log.
UVICORN_FAST = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def app_environment(workdir: Path) -> dict[str, str]:
    """The blog's settings, as in production, for a fresh SQLite database and
    media folder in `workdir`."""
    return {
        "ENVIRONMENT": "production",
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "MEDIA_ROOT": str(workdir / "media"),
        "SECRET_KEY": SECRET,
        "MAIL_DIR": str(workdir / "mail"),
        # Load from one client would be refused as guessing: limits off.
        "RATE_LIMITS_ENABLED": "false",
    }


def migrate(env: dict[str, str], revision: str = "head") -> None:
    subprocess.run(  # noqa: S603
        [str(BIN / "alembic"), "upgrade", revision],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


@contextmanager
def uvicorn(
    target: str, env: dict[str, str], *options: str, checkout: Path = ROOT
) -> Iterator[tuple[str, int]]:
    """Serve `target` from `checkout` with uvicorn (one worker); yields its URL
    and process id. The server must answer GET /health."""
    port = free_port()
    command = [str(BIN / "uvicorn"), target, "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(  # noqa: S603
        [*command, *options],
        cwd=checkout,
        env={**os.environ, **env, "PYTHONPATH": str(checkout)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/health")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{target} did not start") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def ceiling() -> Starlette:
    """The ceiling: a minimal Starlette app that answers each benchmarked path
    with a static body of the same size and type as the blog's.

    Whatever the blog spends beyond this, under the same server, is the cost
    of its own work (database, ORM, templates, validation). Served with
    `uvicorn bench.server:ceiling --factory` and BENCH_CEILING_SPEC naming a
    JSON file: {path: [size, content_type]}.
    """
    spec: dict[str, list[object]] = json.loads(Path(os.environ["BENCH_CEILING_SPEC"]).read_text())
    bodies = {
        path: (b"x" * int(str(size)), str(content_type))
        for path, (size, content_type) in spec.items()
    }

    async def static(request: Request) -> Response:
        body, content_type = bodies.get(request.url.path, (b"", "text/plain"))
        return Response(body, media_type=content_type)

    return Starlette(routes=[Route("/{path:path}", static)])
