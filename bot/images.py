"""Turn uploaded bytes into an `Image` the model can read: 8-bit RGB, upright, scaled, JPEG.

Pure: bytes in, value out. Anything we cannot or should not decode raises `ImageError`, whose
message names the file and is meant for the lab member who uploaded it.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from bot.models import Image

JPEG_QUALITY = 90
RESAMPLING = {  # name (the IMAGE_RESAMPLING setting) -> Pillow filter used when scaling down
    "bilinear": PILImage.Resampling.BILINEAR,  # antialiased when shrinking, about 2x faster than lanczos
    "bicubic": PILImage.Resampling.BICUBIC,
    "lanczos": PILImage.Resampling.LANCZOS,
}
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


@dataclass(frozen=True)
class Normalisation:
    """How every image is prepared for the model; all but max_pixels shape what the model sees."""

    max_side: int
    max_pixels: int
    resampling: str = "bilinear"
    jpeg_quality: int = JPEG_QUALITY

    def shaping(self) -> dict[str, object]:
        """The settings that change the bytes sent (for the cache fingerprint)."""
        return {"max_side": self.max_side, "resampling": self.resampling, "jpeg_quality": self.jpeg_quality}

    def apply(self, data: bytes, name: str) -> Image:
        """normalise() with these settings."""
        return normalise(data, name, max_side=self.max_side, max_pixels=self.max_pixels,
                         resampling=self.resampling, jpeg_quality=self.jpeg_quality)


class ImageError(ValueError):
    """An upload we cannot use; str() is a short message for the person who sent it."""


def sniff_format(data: bytes) -> str | None:
    """The image format the magic bytes announce (a Pillow format name), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def normalise(data: bytes, name: str, *, max_side: int, max_pixels: int, resampling: str = "bilinear",
              jpeg_quality: int = JPEG_QUALITY) -> Image:
    """Decode `data`, check it, and re-encode it as a deterministic JPEG no larger than `max_side`."""
    fmt = _check_is_image(data, name)
    im, source_format = _decode(data, name, fmt, max_side=max_side, max_pixels=max_pixels)
    im.thumbnail((max_side, max_side), RESAMPLING[resampling])  # only shrinks
    return Image(
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        jpeg=_encode(im, jpeg_quality),
        width=im.width,
        height=im.height,
        source_format=source_format,
    )


def _check_is_image(data: bytes, name: str) -> str:
    """The sniffed format, or an ImageError saying what the bytes look like instead."""
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is not None:
        return fmt
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
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


def _decode(data: bytes, name: str, fmt: str, *, max_side: int, max_pixels: int) -> tuple[PILImage.Image, str]:
    """Fully decode the first frame, upright and in RGB; return it with Pillow's format name."""
    try:
        im = PILImage.open(io.BytesIO(data), formats=[fmt])  # reads the header only
        _check_size(name, im.width * im.height, max_pixels)
        im.draft(None, (2 * max_side, 2 * max_side))  # JPEG: let the decoder shrink huge photos
        im.load()  # decodes everything, so truncated files fail here (LOAD_TRUNCATED_IMAGES stays off)
        source_format = im.format or fmt
        ImageOps.exif_transpose(im, in_place=True)
        return _to_rgb(im), source_format
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


def _check_size(name: str, pixels: int, max_pixels: int) -> None:
    """Refuse images with more than `max_pixels` pixels, before their pixels are decoded."""
    if pixels > max_pixels:
        raise _too_large(name, pixels, max_pixels)


def _too_large(name: str, pixels: int | None, limit: int) -> ImageError:
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    advice = "scale it down or crop it, then upload it again"
    return ImageError(f"{name} is too large: {size} (the limit is {limit:,}); {advice}")


def _to_rgb(im: PILImage.Image) -> PILImage.Image:
    """8-bit RGB: high bit depths stretched to 0-255, transparency composited onto white."""
    if im.mode in _HIGH_BIT_DEPTH:
        return _stretch(im)
    if im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        return PILImage.alpha_composite(PILImage.new("RGBA", im.size, "white"), rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _stretch(im: PILImage.Image) -> PILImage.Image:
    """Map a 16/32-bit or float grayscale image's min..max onto 0..255 (a flat image becomes black)."""
    pixels = np.asarray(im).astype(np.float32)  # float32: half the memory of float64, ample for 8-bit output
    low, high = float(pixels.min()), float(pixels.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    grey = np.rint((pixels - low) * scale).astype(np.uint8)
    return PILImage.fromarray(grey).convert("RGB")


def _encode(im: PILImage.Image, quality: int) -> bytes:
    """JPEG at a fixed quality with no metadata, so the same input always gives the same bytes."""
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
