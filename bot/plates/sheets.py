"""Contact sheets: drop images as tiles in a grid, each with its captions, as one PNG. Pure (Pillow).

The gallery of a plate's hits and a drop's history strip are both drawn here. The sheet is built one
image at a time: each stored JPEG is decoded at a reduced size (JPEG draft mode: 1/2, 1/4 or 1/8 of
its pixels), shrunk to its tile and pasted, so only the canvas and one small picture are in memory.
Colours and category marks are the plate map's (bot/plates/platemap.py), so a hit looks the same
everywhere; a tile whose image is missing says why in its place.
"""
from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image, ImageDraw, ImageFont

from bot.categories import Category, find_category
from bot.plates.platemap import HIGHLIGHT, NEW_RING, Style, style_of

log = logging.getLogger(__name__)

Loader = Callable[[str], bytes | None]  # a tile's image key -> its JPEG bytes (None: no longer kept)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

INK = "#1a1a1a"
MUTED = "#5a5a5a"
PAPER = "#ffffff"
PICTURE_BACKGROUND = "#2b2b2b"  # drops are photographed on dark or light fields; dark frames both well
MISSING_BACKGROUND = "#ececec"
MARGIN = 24
GAP = 14
CAPTION_SIZE = 17
TITLE_SIZE = 26
HEAD_SIZE = 18
RING_WIDTH = 6
_DRAWING = threading.Lock()  # one sheet at a time: FreeType fonts are shared, and so memory stays one canvas


@dataclass(frozen=True)
class Caption:
    text: str
    bold: bool = False
    colour: str = INK
    style: Style | None = None  # a category's swatch and mark before the text, as on the plate map
    lines: int = 1  # the text wraps onto at most this many lines; the rest is cut with an ellipsis


@dataclass(frozen=True)
class Tile:
    image: str | None  # the key `load` takes; None: no picture
    note: str  # said in the picture's place when there is none
    captions: Sequence[Caption] = ()
    ring: str | None = None  # a frame of this colour around the picture
    badge: str | None = None  # a word on the picture's corner (`NEW`), in the new-hit blue


@dataclass(frozen=True)
class Sheet:
    title: str
    subtitle: str
    rows: Sequence[Sequence[Tile | None]]  # None: an empty place
    tile_width: int = 240
    column_heads: Sequence[Sequence[Caption]] = ()  # captions above each column
    row_heads: Sequence[str] = ()  # a name left of each row
    footer: Sequence[str] = field(default_factory=tuple)

    @property
    def picture_height(self) -> int:
        return self.tile_width * 3 // 4  # microscope images are mostly 4:3


def sheet_png(sheet: Sheet, load: Loader) -> bytes:
    """The sheet as PNG bytes; each tile's image is loaded, shrunk and pasted in turn."""
    with _DRAWING:
        return _draw(sheet, load)


def _draw(sheet: Sheet, load: Loader) -> bytes:
    layout = _Layout.of(sheet)
    canvas = Image.new("RGB", (layout.width, layout.height), PAPER)
    draw = ImageDraw.Draw(canvas)
    inside = layout.width - 2 * MARGIN
    title_font, small = _font(TITLE_SIZE, True), _font(CAPTION_SIZE)
    draw.text((MARGIN, MARGIN), _fit(draw, sheet.title, title_font, inside), font=title_font, fill=INK)
    draw.text((MARGIN, MARGIN + TITLE_SIZE + 8), _fit(draw, sheet.subtitle, small, inside), font=small, fill=MUTED)
    for column, head in enumerate(sheet.column_heads):
        _captions(draw, head, layout.left + column * layout.pitch, layout.heads_top, sheet.tile_width, HEAD_SIZE)
    for row, tiles in enumerate(sheet.rows):
        top = layout.grid_top + row * layout.row_pitch
        if row < len(sheet.row_heads):
            draw.text((MARGIN, top + sheet.picture_height // 2), sheet.row_heads[row], font=_font(HEAD_SIZE + 2, True),
                      fill=INK, anchor="lm")
        for column, tile in enumerate(tiles):
            if tile is not None:
                _tile(canvas, draw, tile, layout.left + column * layout.pitch, top, sheet, load)
    footer_top = layout.grid_top + len(sheet.rows) * layout.row_pitch
    for number, line in enumerate(sheet.footer):
        draw.text((MARGIN, footer_top + number * (CAPTION_SIZE + 6)), _fit(draw, line, small, inside), font=small,
                  fill=MUTED)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)  # photographs barely compress: level 6 is 6x slower
    return buffer.getvalue()


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    left: int  # x of the first column
    pitch: int  # from one column to the next
    heads_top: int
    grid_top: int
    row_pitch: int

    @classmethod
    def of(cls, sheet: Sheet) -> _Layout:
        columns = max((len(row) for row in sheet.rows), default=1)
        captions = max((sum(c.lines for c in t.captions) for row in sheet.rows for t in row if t), default=0)
        head_lines = max((len(head) for head in sheet.column_heads), default=0)
        left = MARGIN + (max(len(name) for name in sheet.row_heads) * 13 + GAP if sheet.row_heads else 0)
        pitch = sheet.tile_width + GAP
        heads_top = MARGIN + TITLE_SIZE + CAPTION_SIZE + 28
        grid_top = heads_top + head_lines * (HEAD_SIZE + 6) + (8 if head_lines else 0)
        row_pitch = sheet.picture_height + 10 + captions * (CAPTION_SIZE + 6) + GAP
        footer = len(sheet.footer) * (CAPTION_SIZE + 6)
        width = max(left + columns * pitch - GAP + MARGIN, 640)
        return cls(width, grid_top + len(sheet.rows) * row_pitch + footer + MARGIN, left, pitch, heads_top, grid_top,
                   row_pitch)


def _tile(canvas: Image.Image, draw: ImageDraw.ImageDraw, tile: Tile, left: int, top: int, sheet: Sheet,
          load: Loader) -> None:
    box = (left, top, left + sheet.tile_width, top + sheet.picture_height)
    picture = _thumbnail(tile.image, load, (sheet.tile_width, sheet.picture_height)) if tile.image else None
    if picture is None:
        draw.rectangle(box, fill=MISSING_BACKGROUND)
        _note(draw, tile.note, box)
    else:
        draw.rectangle(box, fill=PICTURE_BACKGROUND)
        canvas.paste(picture, (left + (sheet.tile_width - picture.width) // 2,
                               top + (sheet.picture_height - picture.height) // 2))
        picture.close()
    if tile.ring:
        draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), outline=tile.ring, width=RING_WIDTH)
    if tile.badge:
        font = _font(CAPTION_SIZE, True)
        width = int(draw.textlength(tile.badge, font=font)) + 14
        draw.rounded_rectangle((left + 6, top + 6, left + 6 + width, top + 6 + CAPTION_SIZE + 10), radius=5,
                               fill=NEW_RING)
        draw.text((left + 13, top + 11), tile.badge, font=font, fill="#ffffff")
    _captions(draw, tile.captions, left, top + sheet.picture_height + 10, sheet.tile_width, CAPTION_SIZE)


def _captions(draw: ImageDraw.ImageDraw, captions: Sequence[Caption], left: int, top: int, width: int,
              size: int) -> None:
    y = top
    for caption in captions:
        x = left
        if caption.style:
            draw.rounded_rectangle((x, y, x + size + 2, y + size + 2), radius=4, fill=caption.style.fill,
                                   outline="#555555", width=1)
            draw.text((x + (size + 2) / 2, y + (size + 2) / 2), caption.style.mark, font=_font(size - 4, True),
                      fill=caption.style.ink, anchor="mm")
            x += size + 8
        font = _font(size, caption.bold)
        for line in _wrap(draw, caption.text, font, left + width - x, caption.lines):
            draw.text((x, y), line, font=font, fill=caption.colour)
            y += size + 6


def _note(draw: ImageDraw.ImageDraw, note: str, box: tuple[int, int, int, int]) -> None:
    """The note, wrapped and centred in the picture's place."""
    font = _font(CAPTION_SIZE)
    lines = _wrap(draw, note, font, box[2] - box[0] - 20, 4)
    middle_x, middle_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for number, line in enumerate(lines):
        y = middle_y + (number - (len(lines) - 1) / 2) * (CAPTION_SIZE + 6)
        draw.text((middle_x, y), line, font=font, fill=MUTED, anchor="mm")


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float, most: int) -> list[str]:
    """`text` in lines of at most `width` pixels, at most `most` of them (the last cut with an ellipsis)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    if len(lines) > most:
        lines = [*lines[:most - 1], " ".join(lines[most - 1:])]
    return [_fit(draw, line, font, width) for line in lines] or [""]


def _thumbnail(key: str, load: Loader, size: tuple[int, int]) -> Image.Image | None:
    """The stored JPEG decoded at the smallest scale that still fills `size`, then shrunk to fit it;
    None when its bytes are gone or unreadable (logged)."""
    data = load(key)
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", size)
            picture = image.convert("RGB")
        picture.thumbnail(size, Image.Resampling.BILINEAR)
        return picture
    except (OSError, ValueError) as error:
        log.warning("could not draw stored image %s: %s", key, error)
        return None


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


@cache
def _font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans (shipped with matplotlib, found without importing it), else Pillow's own font."""
    spec = find_spec("matplotlib")
    if spec and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / \
            f"DejaVuSans{'-Bold' if bold else ''}.ttf"
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def category_caption(label: str, text: str, categories: Sequence[Category]) -> Caption:
    """A call's caption: its category's swatch and mark (none for a label no category has any more), the
    text in bold vermillion for a hit."""
    category = find_category(categories, label)
    return Caption(text, bold=category.hit, colour=HIGHLIGHT if category.hit else INK,
                   style=style_of(category) if category.colour else None)
