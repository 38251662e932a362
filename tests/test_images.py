"""bot.images: every accepted format ends up as an upright, scaled, deterministic 8-bit RGB JPEG;
everything else is refused with a message that names the file."""
from __future__ import annotations

import hashlib
import io
import random
import struct
import threading
import time
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageFile

from bot.images import ImageError, PixelBudget, normalise, pixel_budget, sniff_format
from bot.models import Image

DATA = Path(__file__).parent / "data" / "marco-gsk"
REAL_JPEG = DATA / "crystals" / "10.jpeg"
RED, BLUE, COLOUR = (255, 0, 0), (0, 0, 255), (200, 40, 60)


def encode(im: PILImage.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def norm(data: bytes, name: str = "drop.png", max_side: int = 1024, max_pixels: int = 60_000_000) -> Image:
    return normalise(data, name, max_side=max_side, max_pixels=max_pixels)


def pixels(image: Image) -> np.ndarray:
    """The output JPEG decoded, as an RGB array (also checks that it is an RGB JPEG of the stated size)."""
    with PILImage.open(io.BytesIO(image.jpeg)) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (image.width, image.height))
        return np.asarray(im, dtype=np.int16)


def mean_colour(image: Image) -> np.ndarray:
    return pixels(image).reshape(-1, 3).mean(axis=0)


def solid(colour=COLOUR, size=(64, 48), mode="RGB") -> PILImage.Image:
    return PILImage.new(mode, size, colour)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels (its pixel data is a stub)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b""))


def tiff_rgb16(rgb: np.ndarray) -> bytes:
    """A minimal uncompressed little-endian 16-bit-per-channel RGB TIFF (Pillow cannot write one)."""
    height, width, _ = rgb.shape
    body = rgb.astype("<u2").tobytes()
    bits_at = 8 + 2 + 12 * 10 + 4  # the bits-per-sample values follow the 10-entry directory
    short, long = "<HHIHH", "<HHII"  # (tag, type, count, value[, padding])
    entries = [
        struct.pack(short, 256, 3, 1, width, 0),  # ImageWidth
        struct.pack(short, 257, 3, 1, height, 0),  # ImageLength
        struct.pack(long, 258, 3, 3, bits_at),  # BitsPerSample: 16, 16, 16 (stored at bits_at)
        struct.pack(short, 259, 3, 1, 1, 0),  # Compression: none
        struct.pack(short, 262, 3, 1, 2, 0),  # Photometric: RGB
        struct.pack(long, 273, 4, 1, bits_at + 6),  # StripOffsets
        struct.pack(short, 277, 3, 1, 3, 0),  # SamplesPerPixel
        struct.pack(short, 278, 3, 1, height, 0),  # RowsPerStrip
        struct.pack(long, 279, 4, 1, len(body)),  # StripByteCounts
        struct.pack(short, 284, 3, 1, 1, 0),  # PlanarConfiguration: chunky
    ]
    directory = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + directory + struct.pack("<HHH", 16, 16, 16) + body


# --- accepted formats -------------------------------------------------------------------------


def test_real_microscope_jpeg_is_scaled_to_max_side():
    data = REAL_JPEG.read_bytes()
    with PILImage.open(REAL_JPEG) as original:
        assert original.size == (1280, 960)
    image = norm(data, "10.jpeg", max_side=1024)
    assert (image.name, image.source_format, image.width, image.height) == ("10.jpeg", "JPEG", 1024, 768)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.jpeg != data
    pixels(image)
    assert image.data_url().startswith("data:image/jpeg;base64,/9j/")


@pytest.mark.parametrize("fmt, options, tolerance", [
    ("JPEG", {"quality": 95}, 6),
    ("PNG", {}, 3),
    ("TIFF", {}, 3),
    ("BMP", {}, 3),
    ("WEBP", {"lossless": True}, 3),
    ("GIF", {}, 3),
])
def test_each_format_becomes_an_rgb_jpeg_of_the_same_colour(fmt, options, tolerance):
    image = norm(encode(solid(), fmt, **options), f"drop.{fmt.lower()}")
    assert image.source_format == fmt
    assert (image.width, image.height) == (64, 48)
    assert np.abs(mean_colour(image) - COLOUR).max() <= tolerance


def i16(a: np.ndarray) -> PILImage.Image:
    return PILImage.fromarray(a)


def i16b(a: np.ndarray) -> PILImage.Image:
    return PILImage.frombytes("I;16B", a.shape[::-1], a.astype(">u2").tobytes())


def i32(a: np.ndarray) -> PILImage.Image:
    return PILImage.fromarray(a.astype(np.int32))


@pytest.mark.parametrize("fmt, make", [
    ("TIFF", i16), ("TIFF", i16b), ("TIFF", i32), ("PNG", i16), ("PNG", i16b),  # PNG cannot hold 32-bit
])
def test_16_bit_grayscale_is_stretched_to_the_full_range_not_clipped(fmt, make):
    ramp = np.tile(np.linspace(1000, 3000, 256), (32, 1)).astype(np.uint16)  # left 1000 .. right 3000
    source = make(ramp)
    data = encode(source, fmt)
    with PILImage.open(io.BytesIO(data)) as reopened:
        assert reopened.mode in ("I;16", "I;16B", "I")  # really a >8-bit image on disk
    grey = pixels(norm(data, f"plate.{fmt.lower()}"))
    assert grey.min() <= 3 and grey.max() >= 252  # uses the whole 0..255 range
    row = grey[16, :, 0]
    assert row[0] <= 5 and row[-1] >= 250 and 118 <= row[128] <= 138  # linear, not clipped to white
    assert np.all(np.diff(row.astype(int)) >= -3)  # still a left-to-right ramp


def test_constant_16_bit_image_does_not_divide_by_zero():
    flat = PILImage.fromarray(np.full((20, 30), 2000, np.uint16))
    grey = pixels(norm(encode(flat, "TIFF"), "flat.tif"))
    assert grey.shape == (20, 30, 3) and grey.max() - grey.min() <= 2


def test_8_bit_grayscale_is_not_stretched():
    grey = pixels(norm(encode(solid(100, mode="L"), "TIFF"), "grey.tif"))
    assert abs(grey.mean() - 100) <= 2


def test_16_bit_rgb_tiff_is_read():
    rgb = np.zeros((8, 12, 3), np.uint16)
    rgb[...] = (65535, 32768, 0)
    image = norm(tiff_rgb16(rgb), "colour16.tif")
    assert image.source_format == "TIFF"
    assert np.abs(mean_colour(image) - (255, 128, 0)).max() <= 4


def test_gif_uses_the_first_frame():
    frames = [solid(RED, mode="RGB").convert("P"), solid(BLUE, mode="RGB").convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    with PILImage.open(io.BytesIO(data)) as gif:
        assert gif.n_frames == 2
    colour = mean_colour(norm(data, "anim.gif"))
    assert colour[0] > 240 and colour[2] < 15


@pytest.mark.parametrize("im", [
    pytest.param(solid((0, 0, 0, 0), mode="RGBA"), id="RGBA"),
    pytest.param(solid((0, 0), mode="LA"), id="LA"),
    pytest.param(solid((0, 0, 0, 0), mode="RGBA").convert("P"), id="palette-with-transparency"),
])
def test_transparency_is_composited_onto_white(im):
    assert mean_colour(norm(encode(im, "PNG"), "clear.png")).min() >= 250


def test_half_transparent_colour_is_blended_with_white():
    colour = mean_colour(norm(encode(solid((0, 0, 255, 128), mode="RGBA"), "PNG"), "half.png"))
    assert np.abs(colour - (127, 127, 255)).max() <= 6


def test_palette_image_keeps_its_colours():
    im = solid(COLOUR).convert("P")
    assert np.abs(mean_colour(norm(encode(im, "PNG"), "pal.png")) - COLOUR).max() <= 3


def test_cmyk_jpeg_is_converted_to_rgb():
    colour = mean_colour(norm(encode(solid((0, 255, 255, 0), mode="CMYK"), "JPEG", quality=95), "cmyk.jpg"))
    assert colour[0] > 240 and colour[1] < 15 and colour[2] < 15


# --- orientation, scaling, determinism --------------------------------------------------------


def test_exif_orientation_is_applied():
    im = solid(RED, size=(60, 40))
    im.paste(BLUE, (30, 0, 60, 40))  # left half red, right half blue
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image = norm(encode(im, "JPEG", exif=exif, quality=95), "rotated.jpg")
    assert (image.width, image.height) == (40, 60)
    rgb = pixels(image)
    top, bottom = rgb[:25].reshape(-1, 3).mean(axis=0), rgb[35:].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and top[2] < 50  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50
    with PILImage.open(io.BytesIO(image.jpeg)) as out:
        assert out.getexif().get(0x0112) is None  # not rotated twice by a viewer


@pytest.mark.parametrize("size, max_side, expected", [
    ((600, 2000), 1000, (300, 1000)),  # portrait: the long side is the height
    ((4000, 3000), 1000, (1000, 750)),  # big JPEG: decoder draft + LANCZOS still gives the exact size
    ((64, 48), 1024, (64, 48)),  # small images are never scaled up
    ((1024, 10), 1024, (1024, 10)),  # exactly max_side is left alone
])
def test_scales_down_keeping_aspect_ratio(size, max_side, expected):
    image = norm(encode(solid(size=size), "JPEG"), "scan.jpg", max_side=max_side)
    assert (image.width, image.height) == expected
    assert np.abs(mean_colour(image) - COLOUR).max() <= 6


def test_output_is_deterministic_and_sha256_is_of_the_original_bytes():
    data = REAL_JPEG.read_bytes()
    first, second = norm(data, "a.jpeg"), norm(data, "b.jpeg")
    assert first.jpeg == second.jpeg
    assert first.sha256 == second.sha256 == hashlib.sha256(data).hexdigest()
    assert first.sha256 != hashlib.sha256(first.jpeg).hexdigest()
    tiff = encode(PILImage.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)), "TIFF")
    assert norm(tiff, "a.tif").jpeg == norm(tiff, "a.tif").jpeg


def test_global_pillow_settings_are_left_alone():
    before = (PILImage.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    norm(REAL_JPEG.read_bytes(), "10.jpeg")
    with pytest.raises(ImageError):
        norm(png_declaring(20_000, 20_000), "bomb.png", max_pixels=1_000_000)
    assert (PILImage.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


# --- refusals ---------------------------------------------------------------------------------


def refusal(data: bytes, name: str, **limits) -> str:
    with pytest.raises(ImageError) as caught:
        norm(data, name, **limits)
    message = str(caught.value)
    assert message.startswith(name + " ")
    assert "BytesIO" not in message and "Traceback" not in message
    return message


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_refuses_empty_file():
    assert refusal(b"", "drop.png") == "drop.png is empty (0 bytes)"


@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>",
    b"\n\n   <!doctype HTML>\n<html lang=en>",
    b"<html><body>Please log in</body></html>",
    b"\xef\xbb\xbf<!-- login --><html>",
])
def test_refuses_html_page_as_a_web_page(page):
    assert "looks like a web page" in refusal(page, "image.png")


def test_refuses_pdf():
    message = refusal(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "scan.pdf")
    assert message.startswith("scan.pdf is not an image (it looks like a PDF document)")


def test_refuses_heic_photo_with_advice():
    message = refusal(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(100), "IMG_0042.HEIC")
    assert "HEIC" in message and "JPEG" in message


def test_refuses_random_bytes():
    noise = random.Random(7).randbytes(5000)
    assert sniff_format(noise) is None
    assert "not an image" in refusal(noise, "noise.dat")


def test_refuses_truncated_jpeg():
    data = REAL_JPEG.read_bytes()
    message = refusal(data[: len(data) // 2], "half.jpg")
    assert message.startswith("half.jpg is truncated or corrupt: ")


def test_refuses_truncated_png():
    data = encode(PILImage.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)), "PNG")
    assert "truncated or corrupt" in refusal(data[: len(data) // 2], "half.png")


def test_refuses_file_that_only_starts_like_an_image():
    assert "truncated or corrupt" in refusal(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "fake.png")


@pytest.mark.parametrize("width, height, pixels", [
    (8_000, 8_000, "64,000,000"),  # under Pillow's own limit: only our check can catch it
    (20_000, 20_000, "400,000,000"),  # over it: Pillow's check fires first, reported the same way
])
def test_refuses_decompression_bomb_before_decoding(width, height, pixels):
    bomb = png_declaring(width, height)  # its pixel data is a stub, so decoding would say "corrupt"
    assert len(bomb) < 200
    started = time.perf_counter()
    message = refusal(bomb, "bomb.png", max_pixels=10_000_000)
    assert time.perf_counter() - started < 0.5  # nothing was allocated or decoded
    assert message.startswith(f"bomb.png is too large: {pixels} pixels (the limit is 10,000,000)")


def test_refuses_image_beyond_pillows_own_limit_with_the_same_message():
    # 40000 x 40000 trips Pillow's global bomb check inside open(), even with a generous max_pixels.
    message = refusal(png_declaring(40_000, 40_000), "huge.png", max_pixels=10**10)
    assert message.startswith("huge.png is too large: 1,600,000,000 pixels (the limit is ")


def test_image_just_within_max_pixels_is_accepted():
    image = norm(encode(solid(size=(100, 100)), "PNG"), "ok.png", max_pixels=10_000)
    assert (image.width, image.height) == (100, 100)
    refusal(encode(solid(size=(100, 101)), "PNG"), "over.png", max_pixels=10_000)


# --- sniff_format -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, options", [
    ("JPEG", {}), ("PNG", {}), ("TIFF", {}), ("BMP", {}), ("WEBP", {}), ("GIF", {}),
])
def test_sniff_format_recognises_each_format(fmt, options):
    assert sniff_format(encode(solid(), fmt, **options)) == fmt


def test_sniff_format_recognises_big_endian_tiff_and_real_jpeg():
    big_endian = encode(PILImage.frombytes("I;16B", (4, 4), bytes(32)), "TIFF")
    assert big_endian[:4] == b"MM\x00*"
    assert sniff_format(big_endian) == "TIFF"
    assert sniff_format(REAL_JPEG.read_bytes()) == "JPEG"


@pytest.mark.parametrize("data", [
    b"", b"<!doctype html><html></html>", b"%PDF-1.4", b"GIF", b"RIFF\0\0\0\0WAVEfmt ", b"hello",
])
def test_sniff_format_returns_none_for_non_images(data):
    assert sniff_format(data) is None


# --- bounded memory ---------------------------------------------------------------------------


def reference(im: PILImage.Image, max_side: int) -> bytes:
    """What normalise gave before it worked in bands: whole-image conversion, then Pillow's thumbnail."""
    rgb = PILImage.alpha_composite(PILImage.new("RGBA", im.size, "white"), im.convert("RGBA")).convert("RGB") \
        if im.mode == "RGBA" else im.convert("RGB")
    rgb.thumbnail((max_side, max_side), PILImage.Resampling.BILINEAR)
    return encode(rgb, "JPEG", quality=90)


@pytest.mark.parametrize("mode, size, max_side", [
    ("RGB", (4100, 2300), 512),  # reduced 4x in bands, then resampled
    ("RGBA", (2600, 3100), 600),  # transparency composited band by band
    ("RGBA", (1500, 900), 1024),  # not reduced: resampled only
])
def test_large_images_worked_in_bands_give_the_same_bytes_as_whole_image_processing(mode, size, max_side):
    noise = np.random.default_rng(3).integers(0, 255, (size[1], size[0], len(mode)), np.uint8)
    im = PILImage.fromarray(noise, mode)
    assert norm(encode(im, "PNG"), "big.png", max_side=max_side).jpeg == reference(im, max_side)


def test_16_bit_range_is_taken_from_the_whole_image_not_from_each_band():
    ramp = np.tile(np.linspace(100, 60_000, 3000), (2000, 1)).T.astype(np.uint16)  # top 100 .. bottom 60000
    rgb = pixels(norm(encode(PILImage.fromarray(ramp), "TIFF"), "tall.tif", max_side=256))
    assert rgb[0].mean() < 3 and rgb[-1].mean() > 252  # one stretch over the whole image, not per band
    assert np.all(np.diff(rgb[:, :, 0].mean(axis=1)) >= -1)  # and no steps at band edges


def test_exif_rotated_large_image_fits_the_box_upright():
    im = solid(size=(3000, 1000))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    image = norm(encode(im, "JPEG", exif=exif), "turned.jpg", max_side=600)
    assert (image.width, image.height) == (200, 600)


class RecordingBudget(PixelBudget):
    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.held: list[int] = []

    def hold(self, pixels: int):
        self.held.append(pixels)
        return super().hold(pixels)


def test_normalise_holds_the_pixels_it_decodes_from_the_budget_at_jpeg_draft_size():
    budget = RecordingBudget(10**9)
    normalise(encode(solid(size=(4000, 3000)), "JPEG"), "big.jpg", max_side=1000, max_pixels=10**8, budget=budget)
    normalise(encode(solid(size=(300, 200)), "PNG"), "small.png", max_side=1000, max_pixels=10**8, budget=budget)
    assert budget.held == [2000 * 1500, 300 * 200]  # the JPEG decoder shrank the photo by 2 first


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "GIF", "WEBP"])
@pytest.mark.parametrize("orientation", [None, 6])
def test_no_pixel_is_decoded_before_the_budget_is_held(fmt, orientation, monkeypatch):
    events: list[str] = []
    real_load = ImageFile.ImageFile.load

    def load(im):
        events.append("decode")
        return real_load(im)

    class Watching(PixelBudget):
        def hold(self, pixels: int):
            events.append("hold")
            return super().hold(pixels)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    exif = PILImage.Exif()
    if orientation:
        exif[0x0112] = orientation
    normalise(encode(solid(size=(3000, 2000)), fmt, exif=exif), "big", max_side=500, max_pixels=10**8,
              budget=Watching(10**9))
    assert events[0] == "hold" and "decode" in events


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_the_full_size_image_is_freed_before_the_budget_lets_another_decode(fmt, monkeypatch):
    opened, alive_at_release = [], []
    real_open = PILImage.open

    def open_and_watch(*args, **kwargs):
        im = real_open(*args, **kwargs)
        opened.append(weakref.ref(im))
        return im

    monkeypatch.setattr(PILImage, "open", open_and_watch)

    class Watching(PixelBudget):
        @contextmanager
        def hold(self, pixels: int):
            with super().hold(pixels):
                yield
                alive_at_release.append(opened[0]() is not None)

    normalise(encode(solid(size=(3000, 2000), mode="RGBA" if fmt == "PNG" else "RGB"), fmt), "big", max_side=500,
              max_pixels=10**8, budget=Watching(10**9))
    assert alive_at_release == [False]


def test_pixel_budget_never_lets_more_than_its_capacity_decode_at_once():
    budget, lock = PixelBudget(10), threading.Lock()
    in_use, peak, alone = [0], [0], []

    def work(pixels: int) -> None:
        with budget.hold(pixels):
            with lock:
                in_use[0] += min(pixels, 10)
                peak[0] = max(peak[0], in_use[0])
                if pixels > 10:
                    alone.append(in_use[0] == 10)
            time.sleep(0.01)
            with lock:
                in_use[0] -= min(pixels, 10)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, [4, 6, 3, 100, 5, 5, 2, 9, 1, 50, 7, 3] * 3))
    assert peak[0] == 10 and alone == [True] * 6 and in_use[0] == 0


def test_pixel_budget_is_one_per_process_and_capacity():
    assert pixel_budget(1234) is pixel_budget(1234) is not pixel_budget(4321)


def test_refuses_svg_with_advice():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    assert refusal(svg, "plate.svg") == "plate.svg is an SVG drawing, which is not supported; export it as PNG"
