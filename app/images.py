"""Uploaded pictures, checked and re-encoded with Pillow: pure functions.

Every accepted image is decoded and written anew as WebP, which is what strips
EXIF, GPS, XMP and comments, and what makes a polyglot file (an image that is
also HTML or a script) harmless. What to make of an upload is an
`ImagePreset`: a profile picture is a small centre-cropped square, a post's
cover keeps its shape. Everything here is synchronous CPU work that holds the
GIL for long stretches: `app/workers.py` runs it in threads of its own.
"""

import dataclasses
import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageCms, ImageOps

from app.errors import UploadRejected

MAX_PIXELS = 40_000_000
# Memory that decoding one image may take at its peak (see _decode_bytes). A
# 40-megapixel photo fits; the worker threads process one image each, so the
# pool's size bounds what images take in all.
MAX_DECODE_BYTES = 192 * 1024 * 1024
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Pillow's name for what it opened, as a content type. A JPEG may open as an
# MPO: several pictures in one file, as many cameras and phones write.
SOURCE_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
WEBP_QUALITY = 82
# libwebp effort, 0-6: at 2, encoding takes about half the CPU of the default (4)
# for files within a few per cent of the same size, measured on photos (bench/images.py).
WEBP_METHOD = 2

# Pillow's own guard against decompression bombs, set to our limit: it refuses
# images over twice the limit when opening them and only warns above it; we
# refuse anything above the limit ourselves (see _open), so the warning is noise.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageRejected(UploadRejected):
    """Not an image we accept, or one we cannot read."""


@dataclass(frozen=True, slots=True)
class ImagePreset:
    """What to make of an uploaded picture, and which pictures to accept."""

    # crop=True: a `size` x `size` square, centre-cropped.
    # crop=False: at most `size` pixels on the longer side, the shape kept,
    # never enlarged.
    size: int
    crop: bool
    # Widths of the smaller copies made beside it, for <img srcset>: a phone
    # loads a small one. None is wider than the image itself.
    renditions: tuple[int, ...] = ()
    # Pictures with more pixels (width x height) are refused before decoding;
    # at most MAX_PIXELS, Pillow's own limit here.
    max_pixels: int = MAX_PIXELS
    # Smaller pictures are refused: too small to show.
    min_width: int = 16
    min_height: int = 16

    def with_size(self, size: int) -> "ImagePreset":
        """The same preset at another size, keeping the renditions smaller than it."""
        smaller = tuple(width for width in self.renditions if width < size)
        return dataclasses.replace(self, size=size, renditions=smaller)


POST_COVER = ImagePreset(size=1600, crop=False, renditions=(480, 960))
# Profile pictures: squares of AVATAR_SIZE (a setting), and of 64 and 128 pixels.
AVATAR = ImagePreset(size=256, crop=True, renditions=(64, 128))


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    data: bytes
    width: int
    height: int
    # What the upload was, judged from its bytes ("image/png"): a field's
    # policy may accept only some kinds of picture.
    source_type: str
    # (data, width, height) of each smaller copy, smallest first.
    renditions: tuple[tuple[bytes, int, int], ...] = ()
    content_type: str = "image/webp"
    extension: str = "webp"


def process(source: BinaryIO, preset: ImagePreset) -> ProcessedImage:
    """The whole pipeline: call it in a worker thread.

    Raises ImageRejected for anything that is not an image we accept."""
    image = _open(source, preset)
    try:
        # Shrunk as early as possible: only the decoded upload is ever held
        # at full size, never a copy of it (a 40-megapixel image takes 160 MB).
        source_type = SOURCE_TYPES.get(image.format or "", "application/octet-stream")
        image = _draft(image, preset)
        _check_decode_bytes(image)
        image = _resize(_resizable(image), preset)
        return _encode(_normalise(image), preset, source_type)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports truncated and corrupt data while decoding.
        raise ImageRejected(
            "The image could not be read; the file may be damaged or incomplete."
        ) from exc


def _open(source: BinaryIO, preset: ImagePreset) -> Image.Image:
    """Identify the format from the bytes (never the name or the declared type)
    and check the dimensions from the header, before decoding any pixels."""
    try:
        image = Image.open(source, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(preset.max_pixels) from None
    except (OSError, SyntaxError, ValueError):
        raise ImageRejected(
            "This file is not an image we accept. Upload a JPEG, PNG, WebP or GIF image."
        ) from None
    width, height = image.size
    if width * height > preset.max_pixels:
        raise _too_many_pixels(preset.max_pixels, f" ({width}x{height} pixels)")
    if width < preset.min_width or height < preset.min_height:
        raise ImageRejected(
            f"The image is too small ({width}x{height} pixels). "
            f"It must be at least {preset.min_width}x{preset.min_height} pixels."
        )
    return image


def _too_many_pixels(limit: int, dimensions: str = "") -> ImageRejected:
    millions = f"{limit / 1_000_000:g} million"
    return ImageRejected(f"The image is too large{dimensions}. The limit is {millions} pixels.")


def _decode_bytes(image: Image.Image) -> int:
    """Memory the image takes at its peak while it is decoded and made resizable.

    The pixel limit alone does not bound memory: Pillow keeps a pixel in 4
    bytes (1 for single-channel 8-bit modes), a palette image is converted to
    RGB(A) before resampling, and the WebP decoder hands over its own copy of
    the pixels, so a few-KB WebP of 40 megapixels would take over 300 MB.
    """
    per_pixel = 1 if image.mode in ("1", "L", "P") else 4
    if image.mode in ("1", "P", "PA"):
        per_pixel += 4  # converted to RGB(A)
    if image.mode.startswith("I;16"):
        per_pixel += 4 + 1  # scaled through 32 bits, then to 8
    if image.format == "WEBP":
        per_pixel += 4
    return image.width * image.height * per_pixel


def _check_decode_bytes(image: Image.Image) -> None:
    needed = _decode_bytes(image)
    if needed > MAX_DECODE_BYTES:
        per_pixel = needed / (image.width * image.height)
        limit = MAX_DECODE_BYTES / per_pixel / 1_000_000
        raise ImageRejected(
            f"The image is too large to process ({image.width}x{image.height} pixels). "
            f"The limit for this kind of image is {limit:.0f} million pixels."
        )


def _scale(image: Image.Image, preset: ImagePreset) -> float:
    """How much the preset shrinks this image: 1 when it needs no shrinking."""
    width, height = image.size
    # The side that must come down to `size`: the shorter one for a square
    # (the rest is cropped away), the longer one otherwise.
    side = min(width, height) if preset.crop else max(width, height)
    return min(1.0, preset.size / side)


def _draft(image: Image.Image, preset: ImagePreset) -> Image.Image:
    """Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 while decoding, never
    below the size we need: a 12-megapixel photo need not be decoded in full
    to make a 256-pixel square."""
    scale = _scale(image, preset)
    if image.format == "JPEG" and scale < 1:
        width, height = image.size
        image.draft("RGB", (int(width * scale) + 1, int(height * scale) + 1))
    return image


def _resize(image: Image.Image, preset: ImagePreset) -> Image.Image:
    if preset.crop:
        square = (preset.size, preset.size)
        return ImageOps.fit(image, square, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    image.thumbnail((preset.size, preset.size), Image.Resampling.LANCZOS)
    return image


def _resizable(image: Image.Image) -> Image.Image:
    """The first frame, in a mode Pillow resamples well: 16-bit greyscale and
    palettes (which only resample pixel by pixel) become 8-bit modes. Other
    modes stay as decoded, without a copy."""
    image.seek(0)  # an animation's first frame
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Scaled to 8 bits (a plain convert would clip to white).
        return image.point(lambda value: value / 256).convert("L")
    if image.mode in ("1", "P", "PA"):
        has_alpha = image.mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    return image


def _normalise(image: Image.Image) -> Image.Image:
    """Upright, sRGB, and 8-bit RGB or RGBA: done on the shrunk image (the
    presets fit a square, so turning it upright after shrinking gives the same)."""
    # exif_transpose reads the EXIF orientation (before we drop the metadata).
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA")
    image = _to_srgb(image)
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


def _encode(image: Image.Image, preset: ImagePreset, source_type: str) -> ProcessedImage:
    return ProcessedImage(
        data=_webp(image),
        width=image.width,
        height=image.height,
        source_type=source_type,
        renditions=_renditions(image, preset.renditions),
    )


def _renditions(image: Image.Image, widths: tuple[int, ...]) -> tuple[tuple[bytes, int, int], ...]:
    """(data, width, height) of a smaller copy for each width narrower than the image."""
    renditions = []
    for width in sorted(widths):
        if width < image.width:
            height = max(1, round(image.height * width / image.width))
            smaller = image.resize((width, height), Image.Resampling.LANCZOS)
            renditions.append((_webp(smaller), width, height))
    return tuple(renditions)


def renditions_of(data: bytes, widths: tuple[int, ...]) -> tuple[tuple[bytes, int, int], ...]:
    """(data, width, height) of smaller copies of a stored image, one per width
    narrower than it: for rebuilding the renditions of stored pictures."""
    with Image.open(io.BytesIO(data), formats=["WEBP", *ACCEPTED_FORMATS]) as image:
        image.load()
        return _renditions(image, widths)


def _webp(image: Image.Image) -> bytes:
    # A fresh image carries no metadata at all: no EXIF, GPS, XMP, comments.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    output = io.BytesIO()
    clean.save(output, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return output.getvalue()
