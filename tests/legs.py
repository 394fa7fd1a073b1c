"""Run the test suite on both stacks: `python -m tests.legs [--leg sqlite|postgres|all]`.

- sqlite:   SQLite files and local media (each test gets its own database file);
- postgres: PostgreSQL (asyncpg) and S3 (obstore against moto_server).

For the postgres leg this starts a throwaway PostgreSQL cluster (initdb into a
temporary directory, pg_ctl on a free 127.0.0.1 port) and a moto_server with a
bucket, and stops both at the end, failures included. Missing system packages
(postgresql; chromium when CI is set) are installed with apt-get when running
as root.
Anything after `--` goes to pytest.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.s3server import MotoServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[tests.legs] {message}", flush=True)


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"Missing {', '.join(packages)}: install them (Debian: apt-get install ...).")
    log(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(  # noqa: S603
        ["apt-get", "install", "-y", "-qq", *packages],  # noqa: S607
        check=True,
        env=env,
    )


def postgres_bin() -> Path:
    """The directory holding initdb and pg_ctl, installing PostgreSQL if needed."""
    for _attempt in range(2):
        found = shutil.which("initdb")
        if found:
            return Path(found).resolve().parent
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if versions:
            return Path(versions[-1]).parent
        apt_install("postgresql")
    sys.exit("PostgreSQL's initdb was not found after installing it.")


def ensure_chromium() -> None:
    """CI installs Chromium for the browser tests. Elsewhere they are skipped,
    saying so, where it is missing: the rest of the suite does not need it."""
    if os.environ.get("CI") and not (shutil.which("chromium") or shutil.which("chromium-browser")):
        apt_install("chromium")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway cluster on a free loopback port; yields its admin URL."""
    bin_dir = postgres_bin()
    data = Path(tempfile.mkdtemp(prefix="blog-pg-"))
    port = free_port()
    # initdb refuses to run as root; the cluster belongs to the postgres user then.
    as_user: list[str] = []
    if os.geteuid() == 0:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)  # noqa: S607
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data / "cluster")]
    try:
        subprocess.run(  # noqa: S603
            [
                *as_user,
                str(bin_dir / "initdb"),
                "-D",
                str(data / "cluster"),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c fsync=off -k {data}"
        subprocess.run(  # noqa: S603
            [*pg_ctl, "-o", options, "-l", str(data / "server.log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        log(f"PostgreSQL running on 127.0.0.1:{port}")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)  # noqa: S603
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def s3_server() -> Iterator[tuple[str, str]]:
    moto = MotoServer()
    moto.start()
    try:
        bucket = moto.create_bucket("blog-test")
        log(f"moto_server running on {moto.endpoint}, bucket {bucket}")
        yield moto.endpoint, bucket
    finally:
        moto.stop()


def pytest(env: dict[str, str], args: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", *args]
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=env).returncode  # noqa: S603
    log(f"pytest exited with {code} after {time.monotonic() - started:.0f} s")
    return code


def run_leg(leg: str, args: list[str]) -> int:
    env = {**os.environ, "TEST_LEG": leg}
    for name in ("TEST_DATABASE_URL", "TEST_S3_ENDPOINT_URL", "TEST_S3_BUCKET"):
        env.pop(name, None)
    log(f"leg {leg}")
    if leg == "sqlite":
        return pytest(env, args)
    with postgres_cluster() as database_url, s3_server() as (endpoint, bucket):
        env |= {
            "TEST_DATABASE_URL": database_url,
            "TEST_S3_ENDPOINT_URL": endpoint,
            "TEST_S3_BUCKET": bucket,
        }
        return pytest(env, args)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.legs", description=__doc__)
    parser.add_argument("--leg", choices=["all", "sqlite", "postgres"], default="all")
    options, pytest_args = parser.parse_known_args()
    pytest_args = [arg for arg in pytest_args if arg != "--"]
    ensure_chromium()
    legs = ["sqlite", "postgres"] if options.leg == "all" else [options.leg]
    results = {leg: run_leg(leg, pytest_args) for leg in legs}
    for leg, code in results.items():
        log(f"{leg}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    return 0 if all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
