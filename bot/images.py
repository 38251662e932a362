"""Turn uploaded bytes into an `Image` the model can read: 8-bit RGB, upright, scaled, JPEG.

Bytes in, value out. Anything we cannot or should not decode raises `ImageError`, whose message
names the file and is meant for the lab member who uploaded it. Memory is bounded by three means: the
pixel count is checked from the header before decoding, decoding waits for room in a PixelBudget
shared by the process's threads, and a large image is converted and shrunk in bands of rows, never
copied whole (a JPEG is even decoded at reduced size). Two things are process-wide: the budgets
(`pixel_budget`) and, on glibc, how freed image buffers go back to the OS.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import io
import math
import re
import threading
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from PIL import Image as PILImage

from bot.models import Image

JPEG_QUALITY = 90
_MAGIC = [
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
]
_HIGH_BIT_DEPTH = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_SUPPORTED = "JPEG, PNG, TIFF, BMP, WebP or GIF"
RESAMPLING = {  # name (the IMAGE_RESAMPLING setting) -> Pillow filter used when scaling down
    "bilinear": PILImage.Resampling.BILINEAR,  # antialiased when shrinking, about 2x faster than lanczos
    "bicubic": PILImage.Resampling.BICUBIC,
    "lanczos": PILImage.Resampling.LANCZOS,
}
_REDUCING_GAP = 2.0  # Pillow's thumbnail default
_BAND_PIXELS = 250_000  # pixels converted to RGB at a time
_ORIENTATION = 0x0112
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
_M_ARENA_MAX = -8
_TRANSPOSES = {2: PILImage.Transpose.FLIP_LEFT_RIGHT, 3: PILImage.Transpose.ROTATE_180,
               4: PILImage.Transpose.FLIP_TOP_BOTTOM, 5: PILImage.Transpose.TRANSPOSE,
               6: PILImage.Transpose.ROTATE_270, 7: PILImage.Transpose.TRANSVERSE, 8: PILImage.Transpose.ROTATE_90}
_SWAPS_SIDES = {5, 6, 7, 8}


def _return_large_frees_to_the_os() -> None:
    """Process-wide: make glibc hand freed image buffers straight back to the OS.

    By default glibc raises its mmap threshold after the first large free, so later image buffers come
    from per-thread heaps that keep their freed memory: 10 large images on 10 job threads then held
    2.5 GB although only one was decoded at a time. A fixed threshold turns that off, and two heaps
    instead of one per thread keep the many job threads' small leftovers together (Linux/glibc only).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_return_large_frees_to_the_os()


class ImageError(ValueError):
    """An upload we cannot use; str() is a short message for the person who sent it."""


def sniff_format(data: bytes) -> str | None:
    """The image format the magic bytes announce (a Pillow format name), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


@dataclass(frozen=True)
class Normalisation:
    """How every image is prepared for the model; all but the pixel limits shape what the model sees."""

    max_side: int
    max_pixels: int
    resampling: str = "bilinear"
    jpeg_quality: int = JPEG_QUALITY
    decode_pixels: int | None = None  # the process-wide budget of pixels decoded at once (None: unbounded)

    def shaping(self) -> dict[str, object]:
        """The settings that change the bytes sent (for the cache fingerprint)."""
        return {"max_side": self.max_side, "resampling": self.resampling, "jpeg_quality": self.jpeg_quality}

    def apply(self, data: bytes, name: str) -> Image:
        """normalise() with these settings."""
        return normalise(data, name, max_side=self.max_side, max_pixels=self.max_pixels,
                         resampling=self.resampling, jpeg_quality=self.jpeg_quality,
                         budget=pixel_budget(self.decode_pixels) if self.decode_pixels else None)


def normalise(data: bytes, name: str, *, max_side: int, max_pixels: int, resampling: str = "bilinear",
              jpeg_quality: int = JPEG_QUALITY, budget: PixelBudget | None = None) -> Image:
    """Decode `data`, check it, and re-encode it as a deterministic JPEG no larger than `max_side`.

    Pixels are decoded only within `budget` (the bot passes its process-wide one; None: no shared
    bound), and a large image is converted and shrunk a band at a time, so no full-size copy is made.
    """
    fmt = _check_is_image(data, name)
    im = _opened(data, name, fmt, max_side=max_side, max_pixels=max_pixels)
    with budget.hold(im.width * im.height) if budget else nullcontext():
        small, source_format = _decode_small(im, name, fmt, max_side, RESAMPLING[resampling])
        del im  # the full-size pixels go before the budget lets another thread decode
    return Image(
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        jpeg=_encode(small, jpeg_quality),
        width=small.width,
        height=small.height,
        source_format=source_format,
    )


class PixelBudget:
    """How many pixels may be decoded at once across all threads, handed out first come, first served.

    An image larger than the whole budget waits until it can run alone.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need, ticket = min(pixels, self.capacity), object()
        with self._changed:
            self._queue.append(ticket)
            self._changed.wait_for(lambda: self._queue[0] is ticket and self._free >= need)
            self._queue.popleft()
            self._free -= need
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._free += need
                self._changed.notify_all()


@functools.cache
def pixel_budget(capacity: int) -> PixelBudget:
    """The process-wide budget of this capacity (one per setting value, shared by every caller)."""
    return PixelBudget(capacity)


def _check_is_image(data: bytes, name: str) -> str:
    """The sniffed format, or an ImageError saying what the bytes look like instead."""
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is not None:
        return fmt
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        raise ImageError(f"{name} is an SVG drawing, which is not supported; export it as PNG")
    if head.startswith((b"<!doctype html", b"<html")) or (head.startswith(b"<") and b"<html" in head):
        raise ImageError(
            f"{name} is not an image (it looks like a web page, e.g. a sign-in page); "
            "download the image itself and upload that file"
        )
    if head.startswith(b"%pdf"):
        raise ImageError(f"{name} is not an image (it looks like a PDF document); export it as PNG or JPEG")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        raise ImageError(f"{name} is a HEIC photo, which is not supported; export it as JPEG or PNG")
    raise ImageError(f"{name} is not an image in a supported format ({_SUPPORTED})")


def _opened(data: bytes, name: str, fmt: str, *, max_side: int, max_pixels: int) -> PILImage.Image:
    """The image with only its header read, checked against `max_pixels`, at JPEG draft size."""
    with _readable(name, fmt, max_pixels):
        im = PILImage.open(io.BytesIO(data), formats=[fmt])  # reads the header only
        _check_size(name, im.width * im.height, max_pixels)
        target = _target(im, max_side) if fmt == "JPEG" else None  # a PNG's getexif() would decode it here
        if target:  # the JPEG decoder shrinks by up to 8, keeping twice the target size, as thumbnail() would
            im.draft(None, (int(target[0] * _REDUCING_GAP), int(target[1] * _REDUCING_GAP)))
    return im


def _decode_small(im: PILImage.Image, name: str, fmt: str, max_side: int,
                  resampling: PILImage.Resampling) -> tuple[PILImage.Image, str]:
    """Decode the first frame and return it as upright 8-bit RGB no larger than `max_side`, with its format."""
    with _readable(name, fmt, max_pixels=im.width * im.height):
        im.load()  # decodes everything, so truncated files fail here (LOAD_TRUNCATED_IMAGES stays off)
        target = _target(im, max_side)
        factor = _reduction(im.size, target)
        rgb = _rgb_reduced(im, factor)
        if target:  # what Pillow's thumbnail does after its own reduce, on bands instead of the whole image
            box = (0, 0, im.width / factor[0], im.height / factor[1])
            rgb = rgb.resize(target, resampling, box=box)
        transpose = _TRANSPOSES.get(im.getexif().get(_ORIENTATION))
        return (rgb.transpose(transpose) if transpose is not None else rgb), im.format or fmt


@contextmanager
def _readable(name: str, fmt: str, max_pixels: int) -> Iterator[None]:
    """Turn whatever Pillow raises on a malformed or oversized file into an ImageError for its sender."""
    try:
        yield
    except ImageError:
        raise
    except PILImage.UnidentifiedImageError as exc:  # its message shows a BytesIO address, not the file
        raise ImageError(f"{name} is truncated or corrupt: it starts like a {fmt} but cannot be read") from exc
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        # Pillow's own (global, larger) limit fired inside open(); report it like ours.
        found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
        pixels, limit = (int(found[1]), min(max_pixels, int(found[2]))) if found else (None, max_pixels)
        raise _too_large(name, pixels, limit) from exc
    except Exception as exc:  # Pillow's parsers raise many exception types on malformed input
        detail = str(exc) or type(exc).__name__
        raise ImageError(f"{name} is truncated or corrupt: {detail}; try exporting or uploading it again") from exc


def _target(im: PILImage.Image, max_side: int) -> tuple[int, int] | None:
    """The size, as stored, that fits `max_side` once the image is turned upright (None: it fits already)."""
    turned = im.getexif().get(_ORIENTATION) in _SWAPS_SIDES
    target = _fitted(im.size[::-1] if turned else im.size, max_side)
    return target[::-1] if target and turned else target


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int] | None:
    """The size Pillow's thumbnail((max_side, max_side)) gives `size`, or None when it already fits."""
    width, height = size
    if width <= max_side and height <= max_side:
        return None
    aspect = width / height

    def nearest(number: float, error: Callable[[int], float]) -> int:
        return max(min(math.floor(number), math.ceil(number), key=error), 1)

    if aspect <= 1:
        return nearest(max_side * aspect, lambda n: abs(aspect - n / max_side)), max_side
    return max_side, nearest(max_side / aspect, lambda n: 0 if n == 0 else abs(aspect - max_side / n))


def _reduction(size: tuple[int, int], target: tuple[int, int] | None) -> tuple[int, int]:
    """The box-average factors Pillow's resize(reducing_gap=2) applies before resampling."""
    if target is None:
        return 1, 1
    return (int(size[0] / target[0] / _REDUCING_GAP) or 1, int(size[1] / target[1] / _REDUCING_GAP) or 1)


def _rgb_reduced(im: PILImage.Image, factor: tuple[int, int]) -> PILImage.Image:
    """8-bit RGB reduced by `factor`, converted a band of rows at a time so no full-size copy is made."""
    if im.mode == "RGB" and factor == (1, 1):
        return im
    to_rgb = _converter(im)
    fx, fy = factor
    out = PILImage.new("RGB", (-(-im.width // fx), -(-im.height // fy)))
    for top, band in _bands(im, fy):
        rgb = to_rgb(band)
        out.paste(rgb.reduce(factor) if factor != (1, 1) else rgb, (0, top // fy))
    return out


def _bands(im: PILImage.Image, multiple: int = 1) -> Iterator[tuple[int, PILImage.Image]]:
    """(top row, copy of the rows from there) for bands of about _BAND_PIXELS, each a multiple of `multiple` rows."""
    rows = multiple * max(1, _BAND_PIXELS // (im.width * multiple))
    for top in range(0, im.height, rows):
        yield top, im.crop((0, top, im.width, min(im.height, top + rows)))


def _converter(im: PILImage.Image) -> Callable[[PILImage.Image], PILImage.Image]:
    """A function turning a band of `im` into 8-bit RGB: high bit depths stretched over the whole image's
    range, transparency composited onto white."""
    if im.mode in _HIGH_BIT_DEPTH:
        ranges = [(float(a.min()), float(a.max())) for a in (np.asarray(band) for _, band in _bands(im))]
        low, high = min(low for low, _ in ranges), max(high for _, high in ranges)
        return functools.partial(_stretch, low=low, high=high)
    if im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info:
        return _on_white
    return lambda band: band.convert("RGB")


def _on_white(band: PILImage.Image) -> PILImage.Image:
    rgba = band.convert("RGBA")
    return PILImage.alpha_composite(PILImage.new("RGBA", band.size, "white"), rgba).convert("RGB")


def _stretch(band: PILImage.Image, *, low: float, high: float) -> PILImage.Image:
    """Map a 16/32-bit or float grayscale low..high onto 0..255 (a flat image becomes black)."""
    pixels = np.asarray(band).astype(np.float32)  # float32: half the memory of float64, ample for 8-bit output
    scale = 255.0 / (high - low) if high > low else 0.0
    grey = np.rint((pixels - low) * scale).astype(np.uint8)
    return PILImage.fromarray(grey).convert("RGB")


def _check_size(name: str, pixels: int, max_pixels: int) -> None:
    """Refuse images with more than `max_pixels` pixels, before their pixels are decoded."""
    if pixels > max_pixels:
        raise _too_large(name, pixels, max_pixels)


def _too_large(name: str, pixels: int | None, limit: int) -> ImageError:
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    advice = "scale it down or crop it, then upload it again"
    return ImageError(f"{name} is too large: {size} (the limit is {limit:,}); {advice}")


def _encode(im: PILImage.Image, quality: int) -> bytes:
    """JPEG at a fixed quality with no metadata, so the same input always gives the same bytes."""
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
