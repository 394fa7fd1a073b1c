"""The server under CPU-heavy work (pictures, passwords), side by side in one
run: `python bench/images.py`.

1. Avatar from a 12-megapixel JPEG: this app's pipeline against a
   straightforward one (open, exif_transpose, ImageOps.fit at full size, save),
   same process, same input, alternating runs.
2. Event-loop stall: p99 latency of GET /health while four 12-megapixel
   uploads are processed at once, against the same server idle.
3. Peak memory (RSS) of the server process during one 10 MB upload, above idle.
4. Forty wrong-password logins at once (Argon2, 64 MiB a hash): the server's
   peak RSS above idle, and GET /health p99 meanwhile against idle. (Rate
   limits are off here, as they are for any load test: with them on, all but
   the first few guesses would be refused before any hashing.)
5. One client guessing one account's password, one request after another,
   with the rate limits off and then on: the passwords the server checks
   with Argon2 a minute.

The server is the real app under uvicorn, one worker, SQLite and local media
in a temporary directory. Figures vary between machines; the ratios are what
to compare.

Options: --rounds N (default 5) runs of each avatar pipeline; --guess-seconds S
(default 60) how long the client of 5 guesses, each way.
"""

import argparse
import asyncio
import io
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.images import AVATAR, process  # noqa: E402
from bench.server import app_environment, migrate, uvicorn  # noqa: E402

PASSWORD = "benchmark-password"
AVATAR_SIZE = 256


def photo(width: int, height: int, quality: int) -> bytes:
    """A photo-like JPEG: smooth gradients under fine grain, which compresses like a photo."""
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 48)
    red = Image.blend(gradient, noise, 0.35)
    green = Image.blend(gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise, 0.35)
    blue = Image.blend(gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM), noise, 0.35)
    image = Image.merge("RGB", (red, green, blue))
    exif = image.getexif()
    exif[0x0112] = 6
    output = io.BytesIO()
    image.save(output, "JPEG", quality=quality, exif=exif)
    return output.getvalue()


def straightforward_avatar(data: bytes, size: int) -> bytes:
    image: Image.Image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image)
    image = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
    output = io.BytesIO()
    image.save(output, "WEBP", quality=82)
    return output.getvalue()


def bench_pipeline(data: bytes, rounds: int = 5) -> dict[str, float]:
    preset = AVATAR.with_size(AVATAR_SIZE)
    ours, naive = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        process(io.BytesIO(data), preset)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        straightforward_avatar(data, AVATAR_SIZE)
        naive.append(time.perf_counter() - started)
    return {"ours": statistics.median(ours), "naive": statistics.median(naive)}


# --- the real server ---------------------------------------------------------------


@contextmanager
def running_server(**settings: str) -> Iterator[tuple[str, int]]:
    workdir = Path(tempfile.mkdtemp(prefix="blog-bench-"))
    env = app_environment(workdir) | settings
    try:
        migrate(env)
        with uvicorn("app.main:create_app", env, "--factory") as (url, pid):
            yield url, pid
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def sign_up(client: httpx.AsyncClient) -> tuple[dict[str, str], list[int]]:
    """A user with four posts: one for each concurrent uploader (uploads to one
    post at the same moment would be refused as conflicting, 409)."""
    await client.post(
        "/api/users",
        json={"username": "bench", "email": "bench@example.com", "password": PASSWORD},
    )
    token = await client.post(
        "/api/users/token", data={"username": "bench@example.com", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    post_ids = []
    for _ in range(4):
        post = await client.post("/api/posts", json={"title": "t", "content": "c"}, headers=headers)
        post_ids.append(int(post.json()["id"]))
    return headers, post_ids


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


async def health_latencies(
    client: httpx.AsyncClient, stop: asyncio.Event, minimum: int
) -> list[float]:
    latencies: list[float] = []
    while not stop.is_set() or len(latencies) < minimum:
        started = time.perf_counter()
        await client.get("/health")
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.002)
    return latencies


def upload_four_at_once(
    url: str, headers: dict[str, str], post_ids: list[int], data: bytes
) -> None:
    """Runs in its own process, so that the sampler's timings are not the uploader's."""

    async def uploads(client: httpx.AsyncClient, post_id: int) -> None:
        files = {"file": ("photo.jpg", data, "image/jpeg")}
        for _ in range(2):
            response = await client.patch(
                f"/api/posts/{post_id}/image", files=files, headers=headers
            )
            response.raise_for_status()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            await asyncio.gather(*(uploads(client, post_id) for post_id in post_ids))

    asyncio.run(run())


async def latencies_while(
    client: httpx.AsyncClient, target: Callable[..., None], *args: object
) -> list[float]:
    """/health latencies sampled while `target(*args)` runs in a process of its
    own (so that the sampler's timings are not the load's)."""
    busy = asyncio.Event()
    load = multiprocessing.get_context("spawn").Process(target=target, args=args)
    sampler = asyncio.create_task(health_latencies(client, busy, minimum=100))
    load.start()
    await asyncio.to_thread(load.join)
    busy.set()
    loaded = await sampler
    if load.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed")
    return loaded


async def bench_stall(url: str, data: bytes) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        headers, post_ids = await sign_up(client)
        files = {"file": ("photo.jpg", data, "image/jpeg")}
        await client.patch(f"/api/posts/{post_ids[0]}/image", files=files, headers=headers)

        done = asyncio.Event()
        done.set()
        idle = await health_latencies(client, done, minimum=400)

        loaded = await latencies_while(client, upload_four_at_once, url, headers, post_ids, data)
    return {"idle_p99": p99(idle), "loaded_p99": p99(loaded), "samples": len(loaded)}


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: restart VmHWM from now


async def bench_memory(url: str, pid: int, uploads: list[bytes]) -> list[dict[str, float]]:
    """The server's RSS when idle and its peak while each upload is processed
    (accepted or refused: a refusal must cost no memory either)."""
    results = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        headers, (post_id, *_others) = await sign_up(client)
        small = {"file": ("warm.jpg", photo(800, 600, 90), "image/jpeg")}
        await client.patch(f"/api/posts/{post_id}/image", files=small, headers=headers)
        for data in uploads:
            await asyncio.sleep(0.5)
            idle = rss_kib(pid, "VmRSS")
            reset_peak_rss(pid)
            files = {"file": ("upload", data, "application/octet-stream")}
            response = await client.patch(
                f"/api/posts/{post_id}/image", files=files, headers=headers
            )
            if response.status_code not in (200, 422):
                response.raise_for_status()
            peak = rss_kib(pid, "VmHWM")
            results.append(
                {
                    "idle_mib": idle / 1024,
                    "peak_mib": peak / 1024,
                    "delta_mib": (peak - idle) / 1024,
                    "status": response.status_code,
                }
            )
    return results


def guess_forty_at_once(url: str) -> None:
    """Runs in its own process: forty wrong passwords sent at the same moment."""

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/api/users/token",
                        data={"username": "bench@example.com", "password": f"wrong {n}"},
                    )
                    for n in range(40)
                )
            )
        if any(answer.status_code not in (401, 503) for answer in answers):
            raise RuntimeError([answer.status_code for answer in answers])

    asyncio.run(run())


async def bench_logins(url: str, pid: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await sign_up(client)
        done = asyncio.Event()
        done.set()
        idle = await health_latencies(client, done, minimum=400)
        await asyncio.sleep(0.5)
        idle_rss = rss_kib(pid, "VmRSS")
        reset_peak_rss(pid)
        loaded = await latencies_while(client, guess_forty_at_once, url)
        peak = rss_kib(pid, "VmHWM")
    return {
        "idle_p99": p99(idle),
        "loaded_p99": p99(loaded),
        "idle_mib": idle_rss / 1024,
        "delta_mib": (peak - idle_rss) / 1024,
    }


async def guesses(url: str, seconds: float) -> dict[int, int]:
    """One client guessing one account's password, one request after another,
    for `seconds`: how many answers of each status it got (401: a password
    was checked with Argon2; 429: refused before any hashing)."""
    answers: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await sign_up(client)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            guess = {"username": "bench@example.com", "password": f"guess {sum(answers.values())}"}
            answer = await client.post("/api/users/token", data=guess)
            answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
    return answers


def wide_webp() -> bytes:
    """A few tens of KB that decode to 16383x2441 pixels (40 megapixels)."""
    output = io.BytesIO()
    Image.new("RGB", (16383, 2441), (200, 30, 30)).save(output, "WEBP", quality=50)
    return output.getvalue()


def ten_megabyte_photo() -> bytes:
    """A 12-megapixel photo just under the 10 MiB upload limit."""
    for quality in (98, 97, 96, 95, 93, 90):
        data = photo(4000, 3000, quality)
        if len(data) <= 10 * 1024 * 1024:
            return data
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each avatar pipeline")
    parser.add_argument(
        "--guess-seconds", type=float, default=60, help="how long one client guesses, each way"
    )
    options = parser.parse_args()
    twelve_mp = photo(4000, 3000, 90)
    big = ten_megabyte_photo()
    print(f"inputs: 12 MP JPEG {len(twelve_mp) / 1e6:.1f} MB; 10 MB upload {len(big) / 1e6:.1f} MB")

    pipeline = bench_pipeline(twelve_mp, options.rounds)
    with running_server() as (url, _pid):
        stall = asyncio.run(bench_stall(url, twelve_mp))
    with running_server() as (url, pid):
        memory, wide = asyncio.run(bench_memory(url, pid, [big, wide_webp()]))
    with running_server() as (url, pid):
        logins = asyncio.run(bench_logins(url, pid))
    seconds = options.guess_seconds
    with running_server() as (url, _pid):
        unlimited = asyncio.run(guesses(url, seconds))
    with running_server(RATE_LIMITS_ENABLED="true") as (url, _pid):
        limited = asyncio.run(guesses(url, seconds))
    per_minute = 60 / seconds

    rows = [
        (
            "avatar from 12 MP JPEG: this pipeline",
            f"{pipeline['ours'] * 1000:.0f} ms",
            "with its 64 and 128 px renditions",
        ),
        (
            "avatar from 12 MP JPEG: straightforward",
            f"{pipeline['naive'] * 1000:.0f} ms",
            "one size",
        ),
        ("  ratio (target <= 0.60)", f"{pipeline['ours'] / pipeline['naive']:.2f}x", ""),
        ("GET /health p99, idle", f"{stall['idle_p99'] * 1000:.1f} ms", ""),
        (
            "GET /health p99, 4 uploads of 12 MP",
            f"{stall['loaded_p99'] * 1000:.1f} ms",
            f"{stall['samples']:.0f} samples",
        ),
        ("  ratio (target <= 3.0)", f"{stall['loaded_p99'] / stall['idle_p99']:.2f}x", ""),
        ("server RSS, idle", f"{memory['idle_mib']:.0f} MiB", ""),
        ("server RSS, peak during one 10 MB upload", f"{memory['peak_mib']:.0f} MiB", ""),
        ("  above idle (target <= 64 MiB)", f"{memory['delta_mib']:.0f} MiB", ""),
        (
            "server RSS, peak during a 16383x2441 WebP",
            f"{wide['peak_mib']:.0f} MiB",
            f"answered {wide['status']:.0f}",
        ),
        ("  above idle (target <= 250 MiB)", f"{wide['delta_mib']:.0f} MiB", ""),
        ("40 wrong passwords at once: RSS above idle", f"{logins['delta_mib']:.0f} MiB", ""),
        ("  (target <= 300 MiB)", "", ""),
        ("GET /health p99, idle", f"{logins['idle_p99'] * 1000:.1f} ms", ""),
        ("GET /health p99, 40 logins", f"{logins['loaded_p99'] * 1000:.1f} ms", ""),
        ("  ratio (target <= 3.0)", f"{logins['loaded_p99'] / logins['idle_p99']:.2f}x", ""),
        (
            "Argon2 checks one client forces, limits off",
            f"{unlimited.get(401, 0) * per_minute:.0f}/min",
            f"{unlimited}",
        ),
        (
            "Argon2 checks one client forces, limits on",
            f"{limited.get(401, 0) * per_minute:.0f}/min",
            f"{limited}",
        ),
    ]
    width = max(len(row[0]) for row in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    main()
