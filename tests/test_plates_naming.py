"""bot.plates.naming: the same plate imaged again gets the same name."""
from __future__ import annotations

import pytest

from bot.plates.naming import file_stem, plate_name, plate_positions, shared_plate_id
from tests.plate_helpers import at

WELLS = ["A01.jpg", "A02.jpg"]


@pytest.mark.parametrize(("zip_name", "name"), [
    ("plate42.zip", "plate42"),
    ("plate42_2026-11-26.zip", "plate42"),
    ("plate42_2026-12-01_0930.zip", "plate42"),
    ("plate42_20261126_093000.zip", "plate42"),
    ("plate42 2026-11-26 09.30.00.zip", "plate42"),
    ("plate42_2026-11-26T09:30:00Z.zip", "plate42"),
    ("2026-11-26_plate42.zip", "plate42"),
    ("plate42 (1).zip", "plate42"),
    ("plate42_2026-11-26 copy.zip", "plate42"),
    ("plate42_day3.zip", "plate42"),
    ("Lysozyme screen_26Nov2026.zip", "Lysozyme screen"),
    ("P1234-2026-11-26.ZIP", "P1234"),
    ("uploads/plate42_2026-11-26.zip", "plate42"),
    ("12345.zip", "12345"),  # a barcode is the name, not a time
])
def test_zip_names_lose_their_stamps(zip_name: str, name: str) -> None:
    assert plate_name(zip_name, WELLS) == name


def test_a_telling_zip_name_wins_over_the_images_names() -> None:
    assert plate_name("plate42.zip", ["P9_A01.jpg", "P9_A02.jpg"]) == "plate42"


@pytest.mark.parametrize(("zip_name", "images", "name"), [
    ("Archive.zip", ["plate42_H11_drop1.jpg", "plate42_H12_drop1.jpg"], "plate42"),
    ("2026-11-26.zip", ["12345_A01_1_Vis_20261126_093000.jpg", "12345_A02_1_Vis_20261126_093012.jpg"], "12345"),
    ("images.zip", ["P1234/2026-11-26/B4.jpg", "P1234/2026-11-26/B5.jpg"], "P1234"),
    ("Archive.zip", ["Well_B4.png", "Well_B5.png"], "Archive"),  # nothing shared: the zip's name as it is
    (None, ["plate42_H11_drop1.jpg", "plate42_H12_drop1.jpg"], "plate42"),  # loose images
    (None, ["A01.jpg", "A02.jpg"], None),
])
def test_otherwise_the_id_the_images_share(zip_name: str | None, images: list[str], name: str | None) -> None:
    assert plate_name(zip_name, images) == name


@pytest.mark.parametrize(("images", "plate_id"), [
    (["plate42_A01.jpg"], None),  # one image: cannot tell the id from the well
    (["A01_1.jpg", "A02_1.jpg"], None),  # a shared drop number is no id
    (["B4_plate7.jpg", "B4_2_plate7.jpg"], "plate7"),  # a shared well is no id
    (["Drop_P12_A01.jpg", "Drop_P12_A02.jpg"], "P12"),
    (["B4.jpg", "B4_2.jpg"], None),  # two drops of one well: B4 is their well, not an id
])
def test_shared_plate_id(images: list[str], plate_id: str | None) -> None:
    assert shared_plate_id(images) == plate_id


def test_positions_ignore_the_plate_name_and_the_shared_id() -> None:
    images = ["P12_A01.jpg", "P12_A02_2.jpg", "P12_notes.jpg"]
    assert plate_positions(images, "plate42") == {"P12_A01.jpg": at("A1"), "P12_A02_2.jpg": at("A2_2"),
                                                  "P12_notes.jpg": None}
    assert plate_positions(["plate42_A01.jpg"], "plate42") == {"plate42_A01.jpg": at("A1")}
    assert plate_positions(["A01.jpg"], None) == {"A01.jpg": at("A1")}


HWI_IMAGES = ["X000015862-Visible/X0000158620001202008111512.jpg", "X000015862-Visible/X0000158620361202008111512.jpg"]


def test_hwi_images_name_their_plate() -> None:
    assert shared_plate_id(HWI_IMAGES) == "X000015862"
    assert shared_plate_id(HWI_IMAGES[:1]) == "X000015862"  # one HWI name is enough: its id is where it says
    assert plate_name("Archive.zip", HWI_IMAGES) == "X000015862"
    assert plate_name("X000015862_20200811.zip", HWI_IMAGES) == "X000015862"
    assert [str(p) for p in plate_positions(HWI_IMAGES, "X000015862").values()] == ["A1 drop 1", "H25 drop 1"]


def test_a_plate_is_read_on_1536_wells_only_when_that_gives_more_images_a_well() -> None:
    large = ["A01.jpg", "P24.jpg", "Q01.jpg", "AF48.jpg"]
    assert [str(p.well) for p in plate_positions(large, None).values()] == ["A1", "P24", "Q1", "AF48"]
    small = ["T4_lysozyme_A01.jpg", "T4_lysozyme_B02.jpg"]  # T4 would be a well of a 1536-well plate
    assert [str(p.well) for p in plate_positions(small, None).values()] == ["A1", "B2"]


def test_file_stem() -> None:
    assert file_stem("plate 42/B") == "plate_42_B" and file_stem("///") == "plate"
