"""Uploaded pictures: read with a size limit, checked, and re-encoded with Pillow.

Every accepted image is decoded and written anew as WebP, which is what strips
EXIF, GPS, XMP and comments, and what makes a polyglot file (an image that is
also HTML or a script) harmless. Decoding is CPU work that holds the GIL for
long stretches, so it runs in a small pool of worker threads of its own, which
bounds how many run at once: a burst of uploads cannot take every thread or
all memory.
"""

import asyncio
import contextlib
import dataclasses
import io
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, BinaryIO, Literal

from fastapi import Depends, File, Request, UploadFile
from PIL import Image, ImageCms, ImageOps
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import AppError, human_size
from app.storage import Storage, StoredFile, store_file

MAX_PIXELS = 40_000_000
POST_IMAGE_MAX_SIDE = 1600
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
WEBP_QUALITY = 82
# libwebp effort, 0-6: at 2, encoding takes about half the CPU of the default (4)
# for files within a few per cent of the same size, measured on photos (bench/).
WEBP_METHOD = 2
CHUNK_SIZE = 64 * 1024
IMAGE_THREAD_NICENESS = 10

# Pillow's own guard against decompression bombs, set to our limit: it refuses
# images over twice the limit when opening them and only warns above it; we
# refuse anything above the limit ourselves (see _open), so the warning is noise.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

Preset = Literal["avatar", "post"]


class ImageRejected(AppError):
    status_code = 422


class UploadTooLarge(AppError):
    status_code = 413


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes
    width: int
    height: int
    # The name the user gave the file, kept as metadata only (never in the key).
    filename: str | None = None
    content_type: str = "image/webp"
    extension: str = "webp"


async def check_upload_size(upload: UploadFile, max_bytes: int) -> None:
    """Read the upload in chunks, refusing it once it passes `max_bytes`.

    The chunks are counted, not kept: Starlette has already spooled the upload
    to a temporary file, and Pillow decodes straight from that file, so a 10 MB
    upload never sits in memory as one 10 MB string.
    """
    total = 0
    while chunk := await upload.read(CHUNK_SIZE):
        total += len(chunk)
        if total > max_bytes:
            raise UploadTooLarge(f"The file is too large. The limit is {human_size(max_bytes)}.")
    if total == 0:
        raise ImageRejected("The file is empty. Choose a JPEG, PNG, WebP or GIF image.")
    await upload.seek(0)


class ImageProcessor:
    """Turns uploads into stored-ready images, at most `workers` at a time.

    One per app (built in the lifespan), so every request shares its threads.
    """

    def __init__(self, *, max_upload_bytes: int, avatar_size: int, workers: int) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.avatar_size = avatar_size
        # The pool is the limiter: at most `workers` images are decoded at once,
        # the rest wait their turn without holding a thread or any pixels.
        self.executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="images", initializer=_lower_priority
        )

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def avatar(self, upload: UploadFile) -> ProcessedImage:
        """A square of AVATAR_SIZE, centre-cropped, upright, without metadata."""
        return await self._process(upload, "avatar")

    async def post_image(self, upload: UploadFile) -> ProcessedImage:
        """At most 1600 pixels on the longer side, aspect kept, upright, without metadata."""
        return await self._process(upload, "post")

    async def _process(self, upload: UploadFile, preset: Preset) -> ProcessedImage:
        await check_upload_size(upload, self.max_upload_bytes)
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(
            self.executor, process, upload.file, preset, self.avatar_size
        )
        return dataclasses.replace(image, filename=display_filename(upload.filename))


def _lower_priority() -> None:
    """Image threads yield the CPU to the event loop and to I/O threads when cores
    are busy, so pages stay quick while uploads are processed (Linux: per-thread nice)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMAGE_THREAD_NICENESS)


def default_workers() -> int:
    """One image thread per core but one, which stays with the event loop."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


async def _image_processor(request: Request) -> ImageProcessor:
    processor: ImageProcessor = request.app.state.images
    return processor


ImagesDep = Annotated[ImageProcessor, Depends(_image_processor)]
# The API's upload parameter (multipart field `file`).
ImageUpload = Annotated[UploadFile, File(description="A JPEG, PNG, WebP or GIF image.")]


def display_filename(filename: str | None) -> str | None:
    """The name the user gave, as metadata: no directories, no control characters."""
    if not filename:
        return None
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(char for char in name if char.isprintable())
    return name[:255] or None


async def save_image(
    session: AsyncSession,
    storage: Storage,
    image: ProcessedImage,
    *,
    kind: str,
) -> StoredFile:
    """Upload a processed image under a new key, tied to the session's transaction."""
    return await store_file(
        session,
        storage,
        image.data,
        kind=kind,
        extension=image.extension,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        filename=image.filename,
    )


def process(source: BinaryIO, preset: Preset, size: int) -> ProcessedImage:
    """The whole pipeline, synchronous: call it in a worker thread.

    Raises ImageRejected for anything that is not an image we accept."""
    image = _open(source)
    try:
        image = _avatar(image, size) if preset == "avatar" else _post_image(image)
        return _encode(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports truncated and corrupt data while decoding.
        raise ImageRejected(
            "The image could not be read; the file may be damaged or incomplete."
        ) from exc


def _open(source: BinaryIO) -> Image.Image:
    """Identify the format from the bytes (never the name or the declared type)
    and check the dimensions from the header, before decoding any pixels."""
    try:
        image = Image.open(source, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except (OSError, SyntaxError, ValueError):
        raise ImageRejected(
            "This file is not an image we accept. Upload a JPEG, PNG, WebP or GIF image."
        ) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(f" ({width}x{height} pixels)")
    return image


def _too_many_pixels(dimensions: str = "") -> ImageRejected:
    return ImageRejected(
        f"The image is too large{dimensions}. "
        f"The limit is {MAX_PIXELS // 1_000_000} million pixels."
    )


def _draft(image: Image.Image, min_width: int, min_height: int) -> None:
    """Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 while decoding, never
    below the size we need: a 12-megapixel photo need not be decoded in full
    to make a 256-pixel avatar."""
    if image.format == "JPEG":
        image.draft("RGB", (min_width, min_height))


def _avatar(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    shorter = min(width, height)
    if shorter > size:
        # Ask for the size at which the shorter side is still at least `size`.
        _draft(image, width * size // shorter + 1, height * size // shorter + 1)
    image = _normalise(image)
    return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def _post_image(image: Image.Image) -> Image.Image:
    width, height = image.size
    longer = max(width, height)
    if longer > POST_IMAGE_MAX_SIDE:
        scale = POST_IMAGE_MAX_SIDE / longer
        _draft(image, int(width * scale) + 1, int(height * scale) + 1)
    image = _normalise(image)
    image.thumbnail((POST_IMAGE_MAX_SIDE, POST_IMAGE_MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _normalise(image: Image.Image) -> Image.Image:
    """Upright, first frame, sRGB, and 8-bit RGB or RGBA."""
    image.seek(0)  # an animation's first frame
    # exif_transpose reads the EXIF orientation (before we drop the metadata).
    image = ImageOps.exif_transpose(image)
    image = _to_srgb(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits (a plain convert would clip to white).
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert("RGBA" if has_alpha else "RGB")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert through the embedded colour profile, if any, to sRGB."""
    profile = image.info.get("icc_profile")
    if not profile:
        return image
    mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: fall back to a plain conversion
    assert converted is not None
    return converted


def _encode(image: Image.Image) -> ProcessedImage:
    # A fresh image carries no metadata at all: no EXIF, GPS, XMP, comments.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    output = io.BytesIO()
    clean.save(output, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return ProcessedImage(data=output.getvalue(), width=clean.width, height=clean.height)
