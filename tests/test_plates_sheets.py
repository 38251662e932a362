"""The pictures of hits and of drops over time: bot.plates.gallery, bot.plates.strip (and the sheets they
are drawn on)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.models import Call, Inspection
from bot.plates.gallery import MAX_SHEETS, PER_SHEET, gallery_hits, gallery_pngs, gallery_sheets
from bot.plates.history import DropRecord, sightings
from bot.plates.platemap import NEW_RING, style_of
from bot.plates.report import PlateImage
from bot.plates.strip import MAX_INSPECTIONS, DropHistory, history_png, history_sheet
from bot.plates.wells import PLATE_SHAPES, ROWS, Position, Well
from tests.plate_helpers import at
from tests.test_plates_platemap import LAB, MARCO


def jpeg(shade: int, size: tuple[int, int] = (1024, 768)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, 90, 255 - shade)).save(buffer, format="JPEG")
    return buffer.getvalue()


def hit(number: int, well: str, confidence: float = 0.9) -> PlateImage:
    return PlateImage(f"plate/{well}.jpg", at(well), Call("crystals", confidence, "logprobs", "", "", "m", id=number))


def wells(count: int) -> list[str]:
    rows, columns = PLATE_SHAPES[384]
    return [f"{ROWS[n // columns]}{n % columns + 1}" for n in range(count)]


def test_the_gallery_has_the_crystal_hits_in_plate_order_with_their_conditions() -> None:
    images = [hit(2, "D7", 0.8), hit(1, "B3"),
              PlateImage("plate/A1.jpg", at("A1"), Call("clear", 0.9, "", "", "", "m", id=3)),
              PlateImage("plate/C1.jpg", at("C1"), None, "could not be read")]
    hits = gallery_hits(images, {at("D7")}, MARCO, {Well(3, 7): "0.1 M HEPES pH 7.5, 20% PEG 3350"})
    assert [(h.where, h.new, h.condition) for h in hits] == [("B3", False, None),
                                                             ("D7", True, "0.1 M HEPES pH 7.5, 20% PEG 3350")]
    (sheet,) = gallery_sheets("plate42", "2026-12-01, day 7", hits)
    (b3, d7), = sheet.rows
    assert [c.text for c in b3.captions] == ["B3 · 90%"] and b3.ring is None and b3.badge is None
    assert [c.text for c in d7.captions] == ["D7 · 80%", "0.1 M HEPES pH 7.5, 20% PEG 3350"]
    assert (d7.ring, d7.badge) == (NEW_RING, "NEW") and d7.captions[0].style == style_of(MARCO[1])
    assert sheet.subtitle == "2 crystal hits, 1 new (framed in blue)"
    assert gallery_sheets("plate42", "today", gallery_hits(images[2:], set(), MARCO)) == []


def test_many_hits_fill_two_sheets_new_and_most_confident_first_and_the_rest_are_listed() -> None:
    names = wells(60)
    images = [hit(n + 1, well, confidence=0.5 + n / 200) for n, well in enumerate(names)]
    new = {at("A1"), at("A2")}  # the least confident, but new
    sheets = gallery_sheets("plate42", "today", gallery_hits(images, new, MARCO))
    assert len(sheets) == MAX_SHEETS
    shown = [tile.captions[0].text.split(" · ")[0] for sheet in sheets for row in sheet.rows for tile in row]
    assert len(shown) == PER_SHEET * MAX_SHEETS and shown[:2] == ["A1", "A2"]
    left_out = [w for w in names if w not in shown]
    assert left_out == names[2:14]  # the least confident of the others
    assert sheets[0].footer == []
    assert sheets[1].footer == [f"Not shown here (12, see the summary and the CSV): {', '.join(left_out)}"]
    assert shown == sorted(shown, key=lambda w: at(w))  # in plate order


def test_the_gallery_is_drawn_from_stored_images_and_says_when_one_is_gone() -> None:
    images = [hit(n + 1, well) for n, well in enumerate(wells(9))]
    loaded: list[str] = []

    def load(call_id: str) -> bytes | None:
        loaded.append(call_id)
        return None if call_id == "5" else jpeg(int(call_id) * 20)

    (png,) = gallery_pngs("plate42", "today", gallery_hits(images, set(), MARCO), load)
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and 1200 < picture.width < 1700 and picture.height < 1000
        second, fifth = (picture.getpixel((24 + n * 254 + 10, 100)) for n in (1, 4))  # tiles are 240 px + 14 apart
    assert loaded == [str(n) for n in range(1, 10)]  # each read once, in turn
    assert all(abs(a - b) < 8 for a, b in zip(second, (40, 90, 215)))  # the second hit's image (shade 40)
    assert fifth == (236, 236, 236)  # the fifth's is gone: its place is grey, with a note


DAY = 86_400.0


def inspections(count: int) -> list[Inspection]:
    return [Inspection(n, "C1", "plate42", "plate42", "1795000000.0", "1.0", "p.zip", "U1", 96, {}, None, True, None,
                       0.0, 1.0, imaged_at=1_795_000_000 + n * 3 * DAY, dated_from="zip") for n in range(1, count + 1)]


def test_the_strip_says_why_an_inspection_has_no_picture() -> None:
    days = inspections(5)
    records = [DropRecord(1, 11, 1, "clear", 0.9, None, "a", False, False),  # pruned
               DropRecord(2, 12, 1, None, None, None, None, False, False),  # the model call failed
               DropRecord(3, 13, 1, None, None, None, None, False, True),  # unreadable
               DropRecord(4, 14, 1, "crystals", 0.9, "precipitate", "c", True, False),  # corrected
               DropRecord(5, 15, 1, "crystals", 0.95, "crystals", "d", True, False)]  # confirmed
    sheet = history_sheet("plate42", [DropHistory("D7", sightings(days, records))], keep_days=90, categories=MARCO)
    (tiles,) = sheet.rows
    assert [(t.image, t.note) for t in tiles[:3]] == [
        (None, "image no longer kept (images are kept 90 days)"), (None, "not classified at this inspection"),
        (None, "could not be read at this inspection")]
    only_two = history_sheet("plate42", [DropHistory("D7", sightings(days, records[:1]))], keep_days=90, categories=MARCO)
    assert only_two.rows[0][1].note == "not imaged at this inspection"
    assert [c.text for c in tiles[0].captions] == ["clear 90%"]  # the call is still shown
    assert [c.text for c in tiles[3].captions] == ["crystals 90%", "team: precipitate"] and tiles[3].ring is None
    assert [c.text for c in tiles[4].captions] == ["crystals 95%", "team: confirmed"]
    assert tiles[4].ring == "#d55e00" and tiles[4].image == "d"
    assert [[c.text for c in head] for head in sheet.column_heads][:2] == [["2026-11-21", "day 0"],
                                                                            ["2026-11-24", "day 3"]]
    assert sheet.title == "Plate plate42 · D7 over time" and sheet.subtitle == "5 inspections, day 0 to day 12"
    assert sheet.row_heads == ()


def test_the_strip_shows_the_latest_inspections_and_one_row_per_drop() -> None:
    days = inspections(MAX_INSPECTIONS + 3)
    drops = [DropHistory(f"D7 drop {d}", sightings(days, [DropRecord(n, n, d, "clear", 0.9, None, f"{d}-{n}", True, False)
                                                          for n in range(1, len(days) + 1)])) for d in (1, 2)]
    sheet = history_sheet("plate42", drops, keep_days=90, categories=MARCO)
    assert [len(row) for row in sheet.rows] == [MAX_INSPECTIONS, MAX_INSPECTIONS]
    assert sheet.rows[0][0].image == "1-4" and sheet.row_heads == ["D7 drop 1", "D7 drop 2"]
    assert sheet.subtitle == f"the latest {MAX_INSPECTIONS} of {MAX_INSPECTIONS + 3} inspections, day 9 to day 42"


@pytest.mark.parametrize("count", [1, 8])
def test_the_strip_is_drawn(count: int) -> None:
    days = inspections(count)
    records = [DropRecord(n, n, 1, "crystals", 0.9, None, str(n), True, False) for n in range(1, count + 1)]
    png = history_png("plate42", [DropHistory("D7", sightings(days, records))], 90, lambda key: jpeg(int(key) * 25), MARCO)
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.width >= 640 and picture.height < 500
        if count == 8:
            assert picture.width > 8 * 240


def test_with_a_lab_s_categories_every_hit_category_is_in_the_gallery_and_framed_in_its_colour_over_time() -> None:
    colour = {c.name: c.colour for c in LAB}
    images = [PlateImage(f"plate/{well}.jpg", at(well), Call(label, 0.9, "logprobs", "", "", "m", id=n))
              for n, (well, label) in enumerate([("A1", "microcrystals"), ("B2", "crystals"), ("C3", "skin")], 1)]
    hits = gallery_hits(images, set(), LAB)
    assert [(h.where, h.style.fill) for h in hits] == [("A1", colour["microcrystals"]), ("B2", colour["crystals"])]
    (sheet,) = gallery_sheets("plate42", "today", hits)
    assert [tile.captions[0].text for tile in sheet.rows[0]] == ["A1 · microcrystals · 90%", "B2 · crystals · 90%"]
    days = inspections(3)
    records = [DropRecord(1, 1, 1, "skin", 0.9, None, "a", True, False),
               DropRecord(2, 2, 1, "microcrystals", 0.9, None, "b", True, False),
               DropRecord(3, 3, 1, "precipitate", 0.9, "crystals", "c", True, False)]  # the team saw crystals
    (tiles,) = history_sheet("plate42", [DropHistory("D7", sightings(days, records))], 90, LAB).rows
    assert [t.ring for t in tiles] == [None, colour["microcrystals"], colour["crystals"]]
    assert [(c.text, c.bold) for c in tiles[1].captions] == [("microcrystals 90%", True)]
