"""bot.plates.platemap: the plate map PNG (the pictures themselves were checked by eye)."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bot.plates.platemap import NEW_RING, NO_IMAGE, NOT_CLASSIFIED, REMOVED_FILL, UNREADABLE, PlateView, plate_map_png
from bot.prompt import load_categories
from tests.plate_helpers import at

ROOT = Path(__file__).resolve().parent.parent
MARCO = load_categories(ROOT / "prompts")
LAB = load_categories(ROOT / "prompts-labscores")
FILL = {c.name: c.colour for c in MARCO}


def decode(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def pixels_of(picture: np.ndarray, colour: str) -> int:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.all(picture == rgb, axis=-1).sum())


def view(labels: dict[str, str], categories=MARCO, **options) -> PlateView:
    return PlateView("plate42", "2026-11-26 09:30 UTC", {at(n): label for n, label in labels.items()},
                     categories=categories, **options)


def test_each_category_and_the_empty_wells_are_drawn_in_their_colours() -> None:
    picture = decode(plate_map_png(view({"A1": "crystals", "B2": "clear", "H12": "precipitate", "C3": "other"})))
    for name in ("crystals", "clear", "precipitate", "other"):
        assert pixels_of(picture, FILL[name]) > 1000, name
    assert pixels_of(picture, NO_IMAGE) > 20 * pixels_of(picture, FILL["clear"])  # 92 wells without images
    assert pixels_of(picture, NEW_RING) == 0


def test_hits_take_more_room_as_there_are_more_of_them_and_new_hits_get_a_ring() -> None:
    one = decode(plate_map_png(view({"A1": "crystals", "A2": "clear"})))
    two = decode(plate_map_png(view({"A1": "crystals", "A2": "crystals"}, new_hits=frozenset({at("A2")}))))
    hit = FILL["crystals"]
    assert pixels_of(two, hit) > 1.5 * pixels_of(one, hit)
    assert pixels_of(two, NEW_RING) > 200


def test_a_well_beyond_h12_makes_a_384_well_map_and_drops_split_their_well() -> None:
    small = decode(plate_map_png(view({"A1": "clear"})))
    large = decode(plate_map_png(view({"P24": "clear"})))
    assert large.shape[1] > 1.3 * small.shape[1] and large.shape[0] > 1.3 * small.shape[0]
    one_drop = pixels_of(small, FILL["clear"])
    two_drops = pixels_of(decode(plate_map_png(view({"A1_1": "clear", "A1_2": "precipitate"}))), FILL["clear"])
    assert 0.3 * one_drop < two_drops < 0.7 * one_drop


def test_removed_categories_and_unreadable_drops_are_drawn_too() -> None:
    plain = decode(plate_map_png(view({"A1": "clear"})))
    picture = decode(plate_map_png(view({"A1": "skin"}, unreadable=frozenset({at("A2")}))))  # skin: no category
    assert pixels_of(picture, REMOVED_FILL) > 1000
    assert pixels_of(picture, UNREADABLE.ink) > pixels_of(plain, UNREADABLE.ink) + 20


def test_a_lab_s_own_categories_are_drawn_in_their_own_colours_with_both_hit_categories_ringed_when_new() -> None:
    labels = {"A1": "clear", "B2": "precipitate", "C3": "phase separation", "D4": "skin", "E5": "microcrystals",
              "F6": "crystals"}
    picture = decode(plate_map_png(view(labels, LAB)))
    for category in LAB:
        assert pixels_of(picture, category.colour) > 1000, category.name
    plain_rings = pixels_of(picture, NEW_RING)
    ringed = decode(plate_map_png(view(labels, LAB, new_hits=frozenset({at("E5"), at("F6")}))))
    assert pixels_of(ringed, NEW_RING) > plain_rings + 400


def test_drops_not_classified_are_drawn_apart_from_unreadable_ones() -> None:
    plain = decode(plate_map_png(view({"A1": "clear"})))
    picture = decode(plate_map_png(view({"A1": "clear"}, not_classified=frozenset({at("A2"), at("A3"), at("P24")}))))
    assert pixels_of(picture, NOT_CLASSIFIED.ink) > pixels_of(plain, NOT_CLASSIFIED.ink) + 20
    assert pixels_of(picture, UNREADABLE.ink) == pixels_of(plain, UNREADABLE.ink)
    assert picture.shape[1] > 1.3 * plain.shape[1]  # a not classified drop in P24 makes it a 384-well plate


def test_the_map_is_small_enough_for_a_phone() -> None:
    labels = {f"{row}{column}_{drop}": "clear" if (column + drop) % 3 else "precipitate"
              for row in "ABCDEFGHIJKLMNOP" for column in range(1, 25) for drop in (1, 2, 3)}
    png = plate_map_png(view(labels))
    assert len(png) < 400_000
    assert decode(png).shape[1] <= 1600


def test_the_bot_starts_without_loading_matplotlib() -> None:
    """matplotlib (about 40 MB) is loaded when a map or a chart is first drawn, not when the bot starts."""
    loaded = subprocess.run([sys.executable, "-c", "import sys, bot.slack.app; print('matplotlib' in sys.modules)"],
                            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert loaded.stdout.strip() == "False"
