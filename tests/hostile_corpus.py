"""Hostile and broken uploads, generated: each with how Slack hosts it and what the thread must say.

`corpus(slack)` hosts every input on the fake Slack and returns it with its expectation: `CALL` for
formats the bot reads (it must answer with a call), otherwise a phrase the reply must contain.
Meant for a bot started with MAX_DOWNLOAD_MB=1 (`OVER_LIMIT` is just over it).
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image as PILImage

from bot.slack.files import OUTSIDE_SLACK, SIGN_IN_HELP
from tests.fakes.slack_server import FakeSlack
from tests.helpers import image_bytes

CALL = "a call"
MAX_DOWNLOAD_MB = "1"


@dataclass(frozen=True)
class Hostile:
    """One upload: what it is, the file object its event carries, and what the thread must say."""

    what: str
    file: dict[str, Any]
    expect: str


def encode(im: PILImage.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(mode: str, size: tuple[int, int], seed: int = 5) -> PILImage.Image:
    values = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)
    return PILImage.fromarray(values, "RGB").convert(mode)


def png_declaring(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header claims width x height pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [PILImage.new("P", (80, 60), colour) for colour in (10, 120, 240)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def high_bit_depth_tiff(mode: str) -> bytes:
    ramp = np.tile(np.linspace(0, 1, 160), (120, 1))
    values = (ramp * 50_000).astype(np.uint16) if mode == "I;16" else (ramp * 3.5 - 1).astype(np.float32)
    return encode(PILImage.fromarray(values), "TIFF")


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle r="9"/></svg>'
HEIC = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(300)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def corpus(slack: FakeSlack) -> list[Hostile]:
    """Host every hostile input on `slack` and return them, in upload order."""
    jpeg = image_bytes("crystals", 10)
    files: list[tuple[str, str, bytes, str, str, str, Callable[[FakeSlack, dict[str, Any]], None] | None]] = [
        # what, file name, bytes, mimetype, filetype, expected reply, how Slack hosts it (None: normally)
        ("an empty file", "empty.png", b"", "image/png", "png", "empty.png is empty (0 bytes)", None),
        ("a truncated JPEG", "half.jpg", jpeg[: len(jpeg) // 2], "image/jpeg", "jpg", "truncated or corrupt", None),
        ("a PNG declaring 50,000 x 50,000 pixels", "bomb.png", png_declaring(50_000, 50_000), "image/png", "png",
         "bomb.png is too large: 2,500,000,000 pixels", None),
        ("a 16-bit TIFF", "plate16.tif", high_bit_depth_tiff("I;16"), "image/tiff", "tiff", CALL, None),
        ("a 32-bit float TIFF", "plate32f.tif", high_bit_depth_tiff("F"), "image/tiff", "tiff", CALL, None),
        ("a CMYK JPEG", "cmyk.jpg", encode(noise("CMYK", (120, 90)), "JPEG"), "image/jpeg", "jpg", CALL, None),
        ("an animated GIF", "moving.gif", animated_gif(), "image/gif", "gif", CALL, None),
        ("a WebP", "drop.webp", encode(noise("RGB", (120, 90)), "WEBP"), "image/webp", "webp", CALL, None),
        ("an SVG", "plate.svg", SVG, "image/svg+xml", "svg", "plate.svg is an SVG drawing", None),
        ("a HEIC", "IMG_0042.heic", HEIC, "image/heic", "heic", "IMG_0042.heic is a HEIC photo", None),
        ("a file over the size limit", "huge.bmp", encode(noise("RGB", (700, 600)), "BMP"), "image/bmp", "bmp",
         "too large (1.26 MB; the limit is 1 MB)", None),
        ("Slack's HTML sign-in page", "signin.png", jpeg, "image/png", "png", SIGN_IN_HELP, sign_in_instead),
        ("a PDF named .jpg", "scan.jpg", PDF, "image/jpeg", "jpg", "scan.jpg is not an image (it looks like a PDF",
         None),
        ("random bytes named .png", "noise.png", bytes(np.random.default_rng(9).integers(0, 255, 3000, np.uint8)),
         "image/png", "png", "noise.png is not an image in a supported format", None),
        ("a url_private on a foreign host", "foreign.jpg", jpeg, "image/jpeg", "jpg", OUTSIDE_SLACK, foreign_url),
        ("a redirect to a foreign host", "redirected.jpg", jpeg, "image/jpeg", "jpg", OUTSIDE_SLACK, foreign_redirect),
        ("a url_private whose host parsers disagree on", "backslash.jpg", jpeg, "image/jpeg", "jpg", OUTSIDE_SLACK,
         backslash_url),
        ("a redirect whose host parsers disagree on", "backslash-redirect.jpg", jpeg, "image/jpeg", "jpg",
         OUTSIDE_SLACK, backslash_redirect),
    ]
    hostile = []
    for what, name, data, mimetype, filetype, expect, host in files:
        file = slack.add_file(name, data, mimetype=mimetype, filetype=filetype)
        if host:
            host(slack, file)
        hostile.append(Hostile(what, file, expect))
    return hostile


def sign_in_instead(slack: FakeSlack, file: dict[str, Any]) -> None:
    slack.redirect_file_to(file["id"], f"{slack.base_url}/signin?redir=%2Ffiles-pri")


def foreign_url(slack: FakeSlack, file: dict[str, Any]) -> None:
    file["url_private_download"] = f"{slack.elsewhere_url}{file['name']}"


def foreign_redirect(slack: FakeSlack, file: dict[str, Any]) -> None:
    slack.redirect_file_to(file["id"], f"{slack.elsewhere_url}steal")


def disagreeing_url(slack: FakeSlack, path: str) -> str:
    """urllib.parse puts this on the fake's own host (127.0.0.1); requests would connect to localhost."""
    return f"http://localhost:{slack.port}\\@127.0.0.1:{slack.port}{path}"


def backslash_url(slack: FakeSlack, file: dict[str, Any]) -> None:
    file["url_private_download"] = disagreeing_url(slack, f"/files-pri/T1-{file['id']}/download/{file['name']}")


def backslash_redirect(slack: FakeSlack, file: dict[str, Any]) -> None:
    slack.redirect_file_to(file["id"], disagreeing_url(slack, "/elsewhere/steal"))
