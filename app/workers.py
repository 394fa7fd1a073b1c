"""The thread pool that runs Pillow, so image work never runs on the event loop.

Decoding and encoding an image is CPU work that holds the GIL for long
stretches. The pool is also the limiter: at most `workers` images are
processed at once, and the rest wait their turn without holding a thread or
any pixels, so a burst of uploads cannot take every thread or all memory.
It is fair: each user has at most one image in the queue at a time (their
next waits outside it, so one user's ten uploads do not make everyone wait
for ten images), and when the queue is full an upload is refused at once
with a 503 and `Retry-After` rather than left waiting for many seconds.
One pool per app, made in the lifespan and shared by every request.
"""

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from app.errors import AppError

T = TypeVar("T")

# Linux's per-thread nice value for CPU-heavy threads: see lower_thread_priority.
THREAD_NICENESS = 10
# Images that may wait for a thread, per thread, before uploads are refused.
QUEUE_PER_WORKER = 8
# Uploads one user may have waiting behind their own, before more are refused
# (a form sends a cover and five attachments at most).
WAITING_PER_USER = 5
RETRY_AFTER_SECONDS = 5


class ImagesBusy(AppError):
    status_code = 503
    retry_after = RETRY_AFTER_SECONDS

    def __init__(self) -> None:
        super().__init__(
            "Too many pictures are being processed right now. Please try again in a moment."
        )


def default_workers() -> int:
    """One image thread per core but one, which stays with the event loop."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class ImageWorkers:
    def __init__(self, *, max_upload_bytes: int, workers: int) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="images", initializer=lower_thread_priority
        )
        self.max_queued = workers * QUEUE_PER_WORKER
        self.queued = 0
        # One lock per user with an image queued or waiting: their next waits here.
        self.users: dict[int, asyncio.Lock] = {}
        self.waiting: dict[int, int] = {}

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def call(self, function: Callable[..., T], *args: Any, user: int | None) -> T:
        """`function(*args)` in an image thread (re-encoding a picture, checking
        a file's bytes), one at a time for each `user` (None: nobody's)."""
        if user is None:
            return await self._submit(function, *args)
        if self.waiting.get(user, 0) > WAITING_PER_USER:
            raise ImagesBusy
        lock = self.users.setdefault(user, asyncio.Lock())
        self.waiting[user] = self.waiting.get(user, 0) + 1
        try:
            async with lock:
                return await self._submit(function, *args)
        finally:
            self.waiting[user] -= 1
            if not self.waiting[user]:
                del self.waiting[user], self.users[user]

    async def _submit(self, function: Callable[..., T], *args: Any) -> T:
        if self.queued >= self.max_queued:
            raise ImagesBusy
        self.queued += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, function, *args)
        finally:
            self.queued -= 1


def lower_thread_priority() -> None:
    """A thread initializer: CPU-heavy threads (images, Argon2) yield the CPU
    to the event loop and to I/O threads when cores are busy, so pages stay
    quick meanwhile (Linux: per-thread nice)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), THREAD_NICENESS)
