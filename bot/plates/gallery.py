"""A plate inspection's gallery: its crystal hits' images on one contact sheet (two for many hits), each
labelled with its well, the bot's confidence and, when the plate's screen is known, its condition in
short; new hits framed in blue and marked NEW. Pure.

At most MAX_SHEETS sheets of PER_SHEET hits: with more hits, the new ones and then the most confident
are shown (in plate order), and the last sheet lists the wells left out (all are in the summary and
the CSV).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

from bot.categories import Category, find_category, is_hit, several_hits
from bot.plates.platemap import NEW_RING, Style, style_of
from bot.plates.report import PlateImage
from bot.plates.sheets import INK, Caption, Loader, Sheet, Tile, sheet_png
from bot.plates.wells import Position, Well
from bot.render import percent

PER_SHEET = 24  # 6 x 4 tiles of 240 px: about 1,500 x 1,300 px, read on a laptop without zooming
MAX_SHEETS = 2
TILE_SIZES = ((3, 3, 400), (8, 4, 300), (PER_SHEET, 6, 240))  # (up to this many hits, columns, tile width)
CONDITION_LINES = 2
LISTED_LEFT_OUT = 30  # wells named in the note on what the sheets leave out


@dataclass(frozen=True)
class GalleryHit:
    call_id: int  # its image is the call's
    where: str  # `D7`, `D7 drop 2`, or the file's name for an image without a well
    position: Position | None
    confidence: float | None
    new: bool
    condition: str | None  # the well's screen condition in short, when known
    style: Style  # its category's colour and mark, as on the plate map
    category: str = ""  # its category, named when there are several hit categories


def gallery_hits(images: Sequence[PlateImage], new_hits: Collection[Position], categories: Sequence[Category],
                 conditions: Mapping[Well, str] | None = None) -> list[GalleryHit]:
    """The inspection's crystal hits (of every hit category), in plate order."""
    one_drop = all(i.position is None or i.position.drop == 1 for i in images)
    hits = [GalleryHit(image.call.id, _where(image, one_drop), image.position, image.call.confidence,
                       image.position in new_hits,
                       (conditions or {}).get(image.position.well) if image.position else None,
                       style_of(find_category(categories, image.call.label)),
                       image.call.label if several_hits(categories) else "")
            for image in images
            if image.call and is_hit(image.call.label, categories) and image.call.id is not None]
    return sorted(hits, key=lambda hit: (hit.position is None, hit.position or Position(Well(0, 0)), hit.where))


def gallery_sheets(plate: str, taken: str, hits: Sequence[GalleryHit]) -> list[Sheet]:
    """The sheets to draw (none without hits)."""
    if not hits:
        return []
    room = PER_SHEET * MAX_SHEETS
    chosen = set(sorted(range(len(hits)), key=lambda n: (not hits[n].new, -(hits[n].confidence or 0)))[:room])
    shown = [hit for n, hit in enumerate(hits) if n in chosen]
    left_out = [hit for n, hit in enumerate(hits) if n not in chosen]
    pages = [shown[start:start + PER_SHEET] for start in range(0, len(shown), PER_SHEET)]
    new = sum(hit.new for hit in hits)
    sheets = []
    for number, page in enumerate(pages, start=1):
        part = f" · sheet {number} of {len(pages)}" if len(pages) > 1 else ""
        subtitle = (f"{len(hits)} crystal hit{'s' if len(hits) != 1 else ''}"
                    f"{f', {new} new (framed in blue)' if new else ''}{part}")
        columns, width = next((columns, width) for most, columns, width in TILE_SIZES if len(page) <= most)
        rows = [[_tile(hit) for hit in page[start:start + columns]] for start in range(0, len(page), columns)]
        footer = _left_out_note(left_out) if number == len(pages) and left_out else []
        sheets.append(Sheet(f"Plate {plate} · crystal hits · {taken}", subtitle, rows, width, footer=footer))
    return sheets


def gallery_pngs(plate: str, taken: str, hits: Sequence[GalleryHit], load: Loader) -> list[bytes]:
    """The gallery as PNGs; `load` gives a hit's image by its call id (as text)."""
    return [sheet_png(sheet, load) for sheet in gallery_sheets(plate, taken, hits)]


def _tile(hit: GalleryHit) -> Tile:
    named = f" · {hit.category}" if hit.category else ""
    captions = [Caption(f"{hit.where}{named} · {percent(hit.confidence)}", bold=True, colour=INK, style=hit.style)]
    if hit.condition:
        captions.append(Caption(hit.condition, colour=INK, lines=CONDITION_LINES))
    return Tile(str(hit.call_id), "image no longer kept", captions, ring=NEW_RING if hit.new else None,
                badge="NEW" if hit.new else None)


def _left_out_note(left_out: Sequence[GalleryHit]) -> list[str]:
    named = ", ".join(hit.where for hit in left_out[:LISTED_LEFT_OUT])
    more = f" and {len(left_out) - LISTED_LEFT_OUT} more" if len(left_out) > LISTED_LEFT_OUT else ""
    return [f"Not shown here ({len(left_out)}, see the summary and the CSV): {named}{more}"]


def _where(image: PlateImage, one_drop: bool) -> str:
    if image.position is None:
        return image.file.rsplit("/", 1)[-1]
    return str(image.position.well) if one_drop else str(image.position)
