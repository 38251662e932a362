"""A drop's history as one picture: its image at each inspection of the plate, left to right in date
order, with the date and day above each column and the call under each image (crystals framed in
vermillion). Several drops (`show B3 and D7 over time`, or a well's drops) are rows of one picture.
Pure; drawn by bot/plates/sheets.py.

An inspection that has no image of the drop, could not read it, or whose image bytes were pruned
(KEEP_IMAGES_DAYS) says so in the picture's place, with the call when there was one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bot.categories import Category, find_category
from bot.plates.history import Sighting, date_text, no_call_text
from bot.plates.sheets import MUTED, Caption, Loader, Sheet, Tile, category_caption, sheet_png
from bot.render import percent

MAX_INSPECTIONS = 12  # the latest, when a plate has more
MAX_DROPS = 6
TILE_WIDTHS = ((4, 320), (8, 240), (MAX_INSPECTIONS, 200))  # (up to this many inspections, tile width)


@dataclass(frozen=True)
class DropHistory:
    name: str  # `D7`, `D7 drop 2`
    sightings: Sequence[Sighting]  # one per inspection of the plate, in date order


def history_sheet(plate: str, drops: Sequence[DropHistory], keep_days: float,
                  categories: Sequence[Category]) -> Sheet:
    """The picture of one or more drops over the plate's inspections (the latest MAX_INSPECTIONS);
    `keep_days` (KEEP_IMAGES_DAYS) is how long image bytes are kept; hits framed in their category's
    colour."""
    drops = drops[:MAX_DROPS]
    everything = len(drops[0].sightings) if drops else 0
    shown = [drop.sightings[-MAX_INSPECTIONS:] for drop in drops]
    columns = shown[0] if shown else []
    width = next(width for most, width in TILE_WIDTHS if len(columns) <= most)
    names = " and ".join(drop.name for drop in drops) if len(drops) <= 3 else f"{len(drops)} drops"
    days = f"day {columns[0].day} to day {columns[-1].day}" if len(columns) > 1 else f"day {columns[0].day}" \
        if columns else ""
    latest = f"the latest {len(columns)} of {everything} inspections" if everything > len(columns) else \
        f"{everything} inspection{'s' if everything != 1 else ''}"
    return Sheet(
        title=f"Plate {plate} · {names} over time", subtitle=f"{latest}, {days}", tile_width=width,
        rows=[[_tile(sighting, keep_days, categories) for sighting in row] for row in shown],
        column_heads=[[Caption(date_text(s.inspection.taken_at), bold=True), Caption(f"day {s.day}", colour=MUTED)]
                      for s in columns],
        row_heads=[drop.name for drop in drops] if len(drops) > 1 else ())


def history_png(plate: str, drops: Sequence[DropHistory], keep_days: float, load: Loader,
                categories: Sequence[Category]) -> bytes:
    """The picture as PNG; `load` gives an image by its sha256."""
    return sheet_png(history_sheet(plate, drops, keep_days, categories), load)


def _tile(sighting: Sighting, keep_days: float, categories: Sequence[Category]) -> Tile:
    record = sighting.record
    if record is None or record.label is None:
        return Tile(None, f"{no_call_text(sighting)} at this inspection")
    captions = [category_caption(record.label, f"{record.label} {percent(record.confidence)}", categories)]
    if record.team_label:
        verdict = "confirmed" if record.team_label == record.label else record.team_label
        captions.append(Caption(f"team: {verdict}", colour=MUTED))
    kept = record.image_sha256 if record.image_kept else None
    seen_as = find_category(categories, record.team_label or record.label)  # the team's verdict first
    return Tile(kept, f"image no longer kept (images are kept {keep_days:g} days)", captions,
                ring=seen_as.colour if seen_as.hit else None)
