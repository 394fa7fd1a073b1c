"""Several uvicorn workers behind one database and one media store share everything:
nothing the app needs lives in a process."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests import pictures
from tests.helpers import ROOT, TEST_SECRET, sign_up
from tests.s3server import free_port


def environment(settings: Settings) -> dict[str, str]:
    values = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": TEST_SECRET,
        "STORAGE_BACKEND": settings.storage_backend,
        "MEDIA_ROOT": str(settings.media_root),
    }
    if settings.storage_backend == "s3":
        assert settings.s3_bucket
        assert settings.s3_endpoint_url
        values |= {
            "S3_BUCKET": settings.s3_bucket,
            "S3_ENDPOINT_URL": settings.s3_endpoint_url,
            "S3_PREFIX": settings.s3_prefix,
        }
    return {**os.environ, **values}


def worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes: the children of the parent that serve requests."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"resource_tracker" not in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def write_calls(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise LookupError("syscw")


@pytest.fixture
def two_workers(settings: Settings) -> Iterator[tuple[str, list[int]]]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "2",
        ],
        cwd=ROOT,
        env=environment(settings),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = worker_pids(process.pid)
            try:
                if len(workers) == 2 and httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("uvicorn --workers 2 did not start")
        yield url, workers
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


async def test_two_workers_share_users_pictures_and_posts(
    two_workers: tuple[str, list[int]],
) -> None:
    url, workers = two_workers
    writes_before = {pid: write_calls(pid) for pid in workers}
    # No keep-alive: every request is a new connection, which either worker may accept.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        alice = await sign_up(client, "alice")
        uploaded = await client.patch(
            f"/api/users/{alice.id}/picture",
            files={"file": ("me.jpg", pictures.jpeg(400, 300), "image/jpeg")},
            headers=alice.headers,
        )
        assert uploaded.status_code == 200
        first_post = await client.post(
            "/api/posts", json={"title": "hello", "content": "c"}, headers=alice.headers
        )
        assert first_post.status_code == 201

        for _ in range(30):
            me = await client.get("/api/users/me", headers=alice.headers)
            assert me.status_code == 200
            picture = await client.get(me.json()["image_url"])
            assert picture.status_code == 200
            assert picture.headers["content-type"] == "image/webp"
            listed = await client.get(f"/api/users/{alice.id}/posts")
            assert [post["title"] for post in listed.json()["posts"]] == ["hello"]

        async def write(number: int) -> int:
            response = await client.post(
                "/api/posts",
                json={"title": f"concurrent {number}", "content": "c"},
                headers=alice.headers,
            )
            return response.status_code

        statuses = await asyncio.gather(*(write(number) for number in range(40)))
        assert statuses == [201] * 40
        listed = (await client.get("/api/posts", params={"limit": 100})).json()
        titles = {post["title"] for post in listed["posts"]}
        assert titles == {"hello"} | {f"concurrent {number}" for number in range(40)}
        # The author's post count, kept in each post's transaction, lost none
        # of the 40 posts written at once through two processes.
        author_page = await client.get(f"/users/{alice.id}/posts")
        assert "41 posts" in author_page.text

    # Both workers answered requests: each made write system calls (responses).
    for pid in workers:
        assert write_calls(pid) - writes_before[pid] > 20, f"worker {pid} served nothing"
