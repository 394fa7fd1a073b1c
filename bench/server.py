"""What the benchmarks share: a migrated SQLite database and uvicorn servers on 127.0.0.1."""

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

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "benchmark-secret-key-benchmark-secret-key"


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
    }


def migrate(env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603
        [str(BIN / "alembic"), "upgrade", "head"],
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
    and process id."""
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
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
