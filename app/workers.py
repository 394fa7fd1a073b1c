"""The thread pool that runs Pillow, so image work never runs on the event loop.

Decoding and encoding an image is CPU work that holds the GIL for long
stretches. The pool is also the limiter: at most `workers` images are
processed at once, and the rest wait their turn without holding a thread or
any pixels, so a burst of uploads cannot take every thread or all memory.
One pool per app, made in the lifespan and shared by every request.
"""

import asyncio
import contextlib
import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi import UploadFile

from app.images import ImagePreset, ProcessedImage, process
from app.uploads import check_upload_size, display_filename

# Linux's per-thread nice value for image threads: see _lower_priority.
IMAGE_THREAD_NICENESS = 10


def default_workers() -> int:
    """One image thread per core but one, which stays with the event loop."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class ImageWorkers:
    def __init__(self, *, max_upload_bytes: int, workers: int) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="images", initializer=_lower_priority
        )

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def process(self, upload: UploadFile, preset: ImagePreset) -> ProcessedImage:
        """Check the upload's size, then make `preset` of it in a worker thread."""
        await check_upload_size(upload, self.max_upload_bytes)
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self.executor, process, upload.file, preset)
        return dataclasses.replace(image, filename=display_filename(upload.filename))


def _lower_priority() -> None:
    """Image threads yield the CPU to the event loop and to I/O threads when cores
    are busy, so pages stay quick while uploads are processed (Linux: per-thread nice)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMAGE_THREAD_NICENESS)
