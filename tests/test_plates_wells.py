"""bot.plates.wells: wells and drops from the names plate imagers and people write, and from questions."""
from __future__ import annotations

from datetime import date

import pytest

from bot.plates.wells import (HwiName, Position, Well, parse_hwi_name, parse_position, parse_well, plate_size,
                              well_from_number, wells_in_text)


def at(well: str, drop: int = 1) -> Position:
    found = parse_well(well)
    assert found is not None
    return Position(found, drop)


NAME_TABLE = [
    # plain well names, any case and padding
    ("A1.jpg", at("A1")),
    ("A01.jpg", at("A1")),
    ("a1.png", at("A1")),
    ("A001.tif", at("A1")),
    ("H12.jpg", at("H12")),
    ("P24.jpg", at("P24")),
    ("Well_B4.png", at("B4")),
    ("WellB4.png", at("B4")),
    ("well b4.jpg", at("B4")),
    # drops
    ("B12_2.jpg", at("B12", 2)),
    ("B12-d2.jpg", at("B12", 2)),
    ("B12.2.jpg", at("B12", 2)),
    ("B12d2.jpg", at("B12", 2)),
    ("B12_drop3.jpg", at("B12", 3)),
    ("B12_s2.jpg", at("B12", 2)),
    ("plate42_H11_drop1.jpg", at("H11", 1)),
    ("plate42_C05_3_20261126.jpg", at("C5", 3)),
    # dates, times and barcodes around the well are never wells or drops
    ("2026-11-26/B4.jpg", at("B4")),
    ("plate42/2026-11-26_0930/H11.jpg", at("H11")),
    ("B4_2026-11-26.jpg", at("B4")),
    ("B4_01-12-2026.jpg", at("B4")),  # day 01 is not drop 1
    ("B4_26Nov2026.jpg", at("B4")),
    ("12345_A01_1_Vis_20261126_093000.jpg", at("A1", 1)),  # Rock Maker-like
    ("12345_A01_2_UV_20261126_093000.jpg", at("A1", 2)),
    ("RI1000-0042_E07_2_2026-11-26_09-30-00.jpg", at("E7", 2)),  # Minstrel-like
    ("P1234_D07_2.jpg", at("D7", 2)),
    ("plate_42_G3_10:30.jpg", at("G3")),
    ("plate42_A01_Subwell_2_UV.png", at("A1", 2)),
    # screen conditions and microscope words are no wells
    ("NaCl_0.2M_C3.jpg", at("C3")),
    ("H2O2_A1.jpg", at("A1")),
    ("A1_10x.jpg", at("A1")),
    ("Barcode 998877 - H01 - drop 2.png", at("H1", 2)),
    ("H01_drop_3.png", at("H1", 3)),
    # column first, only zero-padded with an upper-case row
    ("01A.jpg", at("A1")),
    ("12H_2.jpg", at("H12", 2)),
    # the well in a folder, the drop in the file name
    ("A01/drop2.jpg", at("A1", 2)),
    ("plate42/C05/1.jpg", at("C5", 1)),
    ("C05/image.jpg", at("C5", 1)),
    # no well: listed apart, classified all the same
    ("IMG_0042.jpg", None),
    ("20261126_0930.jpg", None),
    ("plate42_2026-11-26_0930.jpg", None),
    ("P1234.jpg", None),
    ("plate42.jpg", None),
    ("scan 3.jpg", None),
    ("3d.jpg", None),  # "3 days", not column 3 row D
    ("1A.jpg", None),
    ("Q1.jpg", None),  # beyond row P
    ("A25.jpg", None),  # beyond column 24
    ("A0.jpg", None),
    ("drop_3.jpg", None),
    ("notes.txt", None),
    # two different wells: ambiguous
    ("A1_B2.jpg", None),
    ("P12_A01.jpg", None),  # P12 may be a plate id or a well
    ("01A_02B.jpg", None),
    # a row-first well wins over a column-first look-alike
    ("PEG_20K_A1.jpg", at("A1")),
    ("01A_B02.jpg", at("B2")),
]


@pytest.mark.parametrize(("name", "expected"), NAME_TABLE)
def test_name_table(name: str, expected: Position | None) -> None:
    assert parse_position(name) == expected


def test_a_plate_id_is_never_a_well() -> None:
    assert parse_position("P12_A01.jpg", plate_ids=["P12"]) == at("A1")
    assert parse_position("p12/A01.jpg", plate_ids=["plate42", "P12"]) == at("A1")
    assert parse_position("P12_A01.jpg", plate_ids=["P13"]) is None


def test_windows_paths_and_the_same_well_named_twice() -> None:
    assert parse_position("inspection\\2026-11-26\\D7_2.jpg") == at("D7", 2)
    assert parse_position("A01/A01_2.jpg") == at("A1", 2)
    assert parse_position("A01_A1.jpg") == at("A1")


def test_wells_sort_and_print_in_plate_order() -> None:
    names = ["B1.jpg", "A12.jpg", "A2_2.jpg", "A2.jpg", "A1.jpg"]
    positions = sorted(p for p in map(parse_position, names) if p)
    assert [str(p) for p in positions] == ["A1 drop 1", "A2 drop 1", "A2 drop 2", "A12 drop 1", "B1 drop 1"]
    assert str(Well(15, 24)) == "P24"


@pytest.mark.parametrize(("names", "size"), [
    (["A1.jpg", "H12.jpg"], 96),
    (["A1.jpg", "I1.jpg"], 384),
    (["A1.jpg", "A13.jpg"], 384),
    ([], 96),
])
def test_plate_size(names: list[str], size: int) -> None:
    assert plate_size(p for p in map(parse_position, names) if p) == size


@pytest.mark.parametrize(("question", "wells"), [
    ("why is D7 precipitate?", ["D7"]),
    ("compare B3 and B4", ["B3", "B4"]),
    ("compare B03, b4 and well c5; B3 again", ["B3", "C5"]),
    ("is well h12 clear?", ["H12"]),
    ("what about P24 and A25?", ["P24"]),
    ("a1 sauce, drop d2, at 10:30 on 2026-11-26", []),
    ("which wells have crystals?", []),
])
def test_wells_in_text(question: str, wells: list[str]) -> None:
    assert [str(w) for w in wells_in_text(question)] == wells


# --- 1536-well plates and HWI's names ---------------------------------------------------------------

@pytest.mark.parametrize(("number", "well"), [
    (1, "A1"), (48, "A48"), (49, "B1"), (361, "H25"), (1248, "Z48"), (1249, "AA1"), (1440, "AD48"), (1536, "AF48"),
])
def test_hwi_numbers_wells_row_by_row_on_the_1536_grid(number: int, well: str) -> None:
    assert str(well_from_number(number)) == well
    assert well_from_number(number) == parse_well(well)


@pytest.mark.parametrize("number", [0, 1537, -1])
def test_a_number_off_the_plate_is_no_well(number: int) -> None:
    assert well_from_number(number) is None


def test_an_hwi_name_gives_its_plate_well_and_date() -> None:
    name = parse_hwi_name("X000015862-Visible/X0000158620361202008111512.jpg")
    assert name == HwiName("X000015862", Well(7, 25), date(2020, 8, 11))
    assert parse_position("X0000158620361202008111512.jpg") == Position(Well(7, 25))


@pytest.mark.parametrize(("name", "well"), [
    ("X0000158620001202008111512.jpg", "A1"),  # the first well
    ("X0000158621536202008111512.jpg", "AF48"),  # the last
    ("B120000A010361202008111512.jpg", "H25"),  # an id with well-like letters is still the id
    ("X0000158621208201912251512.jpg", "Z8"),  # a well number that looks like a year-month is a well
    ("X0000158620361202008111512", "H25"),  # no extension
])
def test_hwi_ids_and_dates_are_never_wells_and_wells_never_dates(name: str, well: str) -> None:
    assert str(parse_position(name).well) == well


@pytest.mark.parametrize("name", [
    "X0000158620000202008111512.jpg",  # well 0
    "X0000158621537202008111512.jpg",  # beyond the plate
    "X0000158620361202013111512.jpg",  # month 13: not HWI's date, so not HWI's name
    "X0000158620361202002301512.jpg",  # 30 February
    "X000015862_0361_20200811.jpg",  # separated: not HWI's shape, and no row letter
])
def test_names_that_only_look_like_hwi_names_have_no_well(name: str) -> None:
    assert parse_hwi_name(name) is None and parse_position(name) is None


@pytest.mark.parametrize(("name", "expected"), [
    ("A1.jpg", at("A1")),
    ("AF48.jpg", Position(Well(31, 48))),
    ("AA01_2.jpg", Position(Well(26, 1), 2)),
    ("plate_Z24.jpg", Position(Well(25, 24))),
    ("Q1.jpg", Position(Well(16, 1))),
    ("A25.jpg", Position(Well(0, 25))),
    ("48AF.jpg", Position(Well(31, 48))),  # column first
    ("AG1.jpg", None),  # beyond row AF
    ("A49.jpg", None),  # beyond column 48
    ("12345_AB12_1_Vis_20261126_093000.jpg", Position(Well(27, 12))),  # the date is no well, nor a drop
])
def test_1536_well_layouts(name: str, expected: Position | None) -> None:
    assert parse_position(name, layout=1536) == expected


def test_1536_wells_print_and_sort_in_plate_order() -> None:
    wells = [Well(26, 1), Well(25, 48), Well(31, 48), Well(0, 1)]
    assert [str(w) for w in sorted(wells)] == ["A1", "Z48", "AA1", "AF48"]


@pytest.mark.parametrize(("names", "size"), [
    (["A1.jpg", "P24.jpg"], 384),
    (["A1.jpg", "AF48.jpg"], 1536),
    (["A25.jpg"], 1536),
])
def test_plate_size_up_to_1536(names: list[str], size: int) -> None:
    assert plate_size(p for p in (parse_position(n, layout=1536) for n in names) if p) == size


def test_wells_in_a_question_about_a_1536_well_plate() -> None:
    assert [str(w) for w in wells_in_text("show AF48 and well aa1 over time", 1536)] == ["AF48", "AA1"]
    assert wells_in_text("show AF48 over time") == []  # read as a 384-well plate's
