"""Test images, made with Pillow: real files of every kind users upload."""

import io
import struct
import zlib
from functools import cache

from PIL import Image

RED = (220, 30, 30)
BLUE = (30, 30, 220)
GREEN = (30, 200, 30)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    output = io.BytesIO()
    image.save(output, fmt, **options)
    return output.getvalue()


def two_colour(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: shows which way up an image was stored."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image.convert(mode) if mode != "RGB" else image


def jpeg(width: int = 64, height: int = 48, **options: object) -> bytes:
    return encode(two_colour(width, height), "JPEG", quality=90, **options)


def jpeg_rotated_with_gps() -> bytes:
    """Stored sideways with EXIF orientation 6 ("rotate 90° clockwise to view") and
    a GPS position. Viewed upright, the top half is red and the bottom half blue."""
    image = two_colour(600, 400)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    return encode(image, "JPEG", quality=90, exif=exif)


def cmyk_jpeg() -> bytes:
    image = Image.new("CMYK", (80, 60), (0, 255, 255, 0))  # pure red in CMYK
    return encode(image, "JPEG", quality=90)


def progressive_jpeg() -> bytes:
    return encode(two_colour(300, 200), "JPEG", quality=85, progressive=True)


def png_with_alpha() -> bytes:
    image = Image.new("RGBA", (40, 40), (*GREEN, 255))
    image.paste((0, 0, 0, 0), (0, 0, 40, 20))  # top half fully transparent
    return encode(image, "PNG")


def png_16_bit() -> bytes:
    """A 16-bit greyscale PNG at mid-grey (32768 of 65535)."""
    image = Image.frombytes("I;16", (50, 50), struct.pack("<H", 32768) * 2500)
    return encode(image, "PNG")


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (30, 30), 1)
    image.putpalette([0, 0, 0, *GREEN] + [0] * (254 * 3))
    image.paste(0, (0, 0, 30, 15))  # top half is colour 0, declared transparent
    return encode(image, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), colour) for colour in (RED, GREEN, BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp() -> bytes:
    return encode(two_colour(120, 80), "WEBP", quality=90)


def one_pixel() -> bytes:
    return encode(Image.new("RGB", (1, 1), GREEN), "PNG")


def photo_6000x4000() -> bytes:
    return encode(two_colour(6000, 4000), "JPEG", quality=80)


def tiff() -> bytes:
    return encode(two_colour(20, 20), "TIFF")


def bmp() -> bytes:
    return encode(two_colour(20, 20), "BMP")


def svg() -> bytes:
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script></svg>"
    )


def truncated_jpeg() -> bytes:
    data = jpeg(400, 300)
    return data[: len(data) // 2]


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header declaring width x height pixels, in a few hundred bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


@cache
def wide_webp() -> bytes:
    """A few tens of KB that decode to 40 million pixels: within the pixel
    limit, but WebP's decoder would need over 300 MB for it."""
    return encode(Image.new("RGB", (16383, 2441), (200, 30, 30)), "WEBP", quality=50)
