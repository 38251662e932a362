"""bot.screens.reading (and bot.plates.wells, which it reads wells with): screen files as labs have them, the real
HWI cocktail list and hand-made tables with every quirk, and the files that are no screen."""
from __future__ import annotations

import codecs

import pytest

from bot.plates.wells import Well, layout_holding, numbered_well, on_plate, parse_well, parse_well_number, row_name
from bot.screens.reading import HWI_KIND, TABLE_KIND, ScreenError, decode, delimiter_of, read_screen
from tests.helpers import DATA

HWI = DATA / "screens" / "hwi-22_C1536.csv"
LIMIT = 1024 * 1024


def read(data: bytes, name: str = "screen.csv", limit: int = LIMIT):
    return read_screen(data, name, limit)


@pytest.mark.parametrize(("number", "well"), [(1, "A1"), (48, "A48"), (49, "B1"), (361, "H25"), (1440, "AD48"),
                                              (1536, "AF48")])
def test_hwi_well_numbers_count_row_by_row_on_a_32_by_48_plate(number: int, well: str) -> None:
    assert str(numbered_well(number, 48)) == well


def test_row_names_go_past_z_and_back() -> None:
    assert [row_name(r) for r in (0, 15, 25, 26, 31)] == ["A", "P", "Z", "AA", "AF"]
    assert parse_well("AF48") == Well(31, 48) and parse_well("a01") == Well(0, 1)
    assert parse_well("Well B4") == Well(1, 4) == parse_well("WellB4")
    assert [parse_well(t) for t in ("PEG 3350", "pH7", "BA1", "A0", "12")] == [None] * 5
    assert [parse_well_number(t) for t in ("12", "#0361", "Well 7", "A1")] == [12, 361, 7, None]
    assert (str(parse_well("AG1")), on_plate(parse_well("AG1")), on_plate(parse_well("AF48")),
            on_plate(parse_well("E1"), 24)) == ("AG1", False, True, False)  # read, and known to be off the plate
    assert (layout_holding(4, 6), layout_holding(8, 7), layout_holding(9, 1), layout_holding(32, 48),
            layout_holding(33, 1)) == (24, 96, 384, 1536, None)


def test_the_real_hwi_cocktail_list_is_read_whole() -> None:
    screen = read(HWI.read_bytes(), HWI.name)
    assert (screen.kind, screen.layout, screen.encoding, len(screen.conditions)) == (HWI_KIND, 1536, "utf-8", 1536)
    assert list(screen.conditions)[:3] == ["A1", "A2", "A3"] and list(screen.conditions)[-1] == "AF48"  # plate order
    assert screen.unread() == [] and screen.skipped == ()
    first = screen.conditions["A1"]
    assert (first.reference, first.text, first.ph) == ("22_C0001", "0.5 M Citric acid pH 3.5, 15% (w/v) PEG 3350", 3.5)
    assert screen.conditions["A5"].reference == "22_C0002"  # rows are in cocktail order, wells place them
    well_361 = screen.conditions["H25"]  # the README's sample row: the pH column follows the buffer
    assert well_361.reference == "22_C0479"
    assert well_361.short() == "0.1 M (NH4)2HPO4, 0.1 M NaOAc pH 5.0, 20% PEG 8000"
    assert [(c.chemical, str(c.concentration), c.ph) for c in well_361.components] == [
        ("Ammonium phosphate-dibasic", "0.1 M", None), ("Sodium Acetate", "0.1 M", 5.0), ("PEG 8000", "20% w/v", None)]
    assert well_361.components[0].formula == "(NH4)2HPO4"


def test_hwi_names_with_marks_and_unbuffered_conditions() -> None:
    screen = read(HWI.read_bytes(), HWI.name)
    jeffamine = [c for c in screen.conditions.values() if any("®" in p.chemical for p in c.components)]
    assert jeffamine and all(c.components for c in jeffamine)
    assert all("®" not in c.short() for c in jeffamine)  # marks stay in the text, not in the short form
    unbuffered = screen.conditions[str(numbered_well(50, 48))]  # PEG/Ion: a salt, PEG and the solution's pH
    assert unbuffered.reference == "22_C1153"
    assert unbuffered.short() == "0.2 M NaF, 20% PEG 3350, pH 7.3" and unbuffered.ph == 7.3


QUIRKS = {
    "BOM, CRLF, header": ("\ufeffWell,Condition\r\nA1,0.1 M HEPES pH 7.5\r\nA2,0.2 M NaCl\r\n".encode("utf-8"), "utf-8-sig"),
    "cp1252 ® and µ": ("Well,Condition\nA1,30% Jeffamine® ED-2001\nA2,50 µM ZnCl2\n".encode("cp1252"), "cp1252"),
    "Mac Roman, CR line ends": ("Well,Condition\rA1,30% Jeffamine® ED-2001\rA2,0.2 M NaCl at 4°C\r".encode("mac_roman"),
                                "mac_roman"),
    "UTF-16 from Excel": ("Well\tCondition\r\nA1\t0.1 M HEPES pH 7.5\r\nA2\t0.2 M NaCl\r\n".encode("utf-16"), "utf-16"),
}


@pytest.mark.parametrize("case", list(QUIRKS))
def test_encodings_and_line_ends_are_found_from_the_file(case: str) -> None:
    data, encoding = QUIRKS[case]
    screen = read(data)
    assert screen.encoding == encoding and list(screen.conditions) == ["A1", "A2"]
    first = screen.conditions["A1"]
    assert first.text in {"0.1 M HEPES pH 7.5", "30% Jeffamine® ED-2001"}
    if "®" in first.text:
        assert first.short() == "30% Jeffamine ED-2001"


def test_windows_1252_and_mac_roman_are_told_apart_by_what_a_screen_holds() -> None:
    text = "A1,10% PEG® 400 at 20 °C, 5 µM ZnCl2 – ±\n"
    assert decode(text.encode("cp1252")) == (text, "cp1252")
    assert decode(text.replace("–", "-").encode("mac_roman")) == (text.replace("–", "-"), "mac_roman")
    assert decode("A1,Ÿ".encode("utf-8")) == ("A1,Ÿ", "utf-8")
    assert decode(codecs.BOM_UTF8 + b"A1") == ("A1", "utf-8-sig")


def test_semicolons_and_decimal_commas_as_european_spreadsheets_write_them() -> None:
    data = 'Well;Condition;Notes\nA01;"0,1 M HEPES pH 7,5; 20 % (w/v) PEG 3350";ok\nA02;1,5 M LiCl;\n'.encode("cp1252")
    assert delimiter_of(data.decode("cp1252")) == ";"
    screen = read(data)
    assert screen.conditions["A1"].short() == "0.1 M HEPES pH 7.5, 20% PEG 3350"
    assert [str(c.concentration) for c in screen.conditions["A1"].components] == ["0.1 M", "20% w/v"]
    assert screen.conditions["A2"].short() == "1.5 M LiCl"
    unquoted = read("Well;Condition\r\nA1;0,1 M HEPES pH 7,5; 20 % PEG 3350\r\n".encode("cp1252"))  # the last column
    assert unquoted.conditions["A1"].short() == "0.1 M HEPES pH 7.5, 20% PEG 3350"


def test_no_header_numbered_wells_and_a_condition_whose_commas_were_not_quoted() -> None:
    rows = [f"{n},0.1 M Tris pH 8.5, {n}% PEG 4000" for n in range(1, 97)]
    screen = read("\n".join(rows).encode())
    assert screen.layout == 96 and len(screen.conditions) == 96
    assert screen.conditions["B1"].short() == "0.1 M Tris pH 8.5, 13% PEG 4000"  # 13 is B1 on 12 columns
    assert screen.conditions["H12"].text == "0.1 M Tris pH 8.5, 96% PEG 4000"


def test_a_well_column_among_more_columns_with_the_condition_spread_over_them() -> None:
    data = (b"Tube,Well,Salt,Buffer,Precipitant,Notes\n1,A1,0.2 M NaCl,0.1 M Tris pH 8.5,25% w/v PEG 3350,nice drops\n"
            b"2,A2,,0.1 M HEPES pH 7.5,2 M Ammonium sulfate,\n")
    screen = read(data)
    assert screen.conditions["A1"].text == "0.2 M NaCl, 0.1 M Tris pH 8.5, 25% w/v PEG 3350"
    assert screen.conditions["A2"].short() == "0.1 M HEPES pH 7.5, 2 M (NH4)2SO4"
    assert screen.kind == TABLE_KIND and screen.layout == 24


def test_a_quoted_condition_column_and_rows_that_are_no_wells() -> None:
    data = (b'Plate: Index,,\nWell,Condition,Comment\nA1,"0.1 M HEPES pH 7.5, 20% PEG 3350",good\n'
            b"Total,,\nB12,Tacsimate pH 7.0,\n,,\nC1,,\n")
    screen = read(data)
    assert list(screen.conditions) == ["A1", "B12"] and screen.layout == 96
    assert screen.conditions["A1"].short() == "0.1 M HEPES pH 7.5, 20% PEG 3350"
    assert screen.unread() == [("B12", "Tacsimate pH 7.0")]  # no concentration: named, kept as written
    assert screen.skipped == ("line 4: no condition", "line 7: no condition")


def test_wells_past_p_make_a_1536_well_plate() -> None:
    screen = read(b"A1,0.1 M NaCl\nAF48,0.2 M NaCl\n")
    assert screen.layout == 1536 and list(screen.conditions) == ["A1", "AF48"]


@pytest.mark.parametrize(("data", "name", "limit", "says"), [
    (b"Name,Condition\nfoo,0.1 M NaCl\nbar,0.2 M NaCl\n", "names.csv", LIMIT, "names.csv has no well column"),
    (b"A1,0.1 M NaCl\nA01,0.2 M NaCl\n", "dup.csv", LIMIT, "well A1 appears twice (lines 1 and 2)"),
    (b"A1,0.1 M NaCl\nAG1,0.2 M NaCl\n", "big.csv", LIMIT, "line 2: well AG1 is outside the largest plate"),
    (b"1,0.1 M NaCl\n1537,0.2 M NaCl\n", "num.csv", LIMIT, "well 1537 is outside the plate"),
    (b"Well,Category\nA1,crystals\nA2,clear\n", "calls.csv", LIMIT, "no concentration I can read in any condition"),
    (b"A1,0.1 M NaCl\n" * 200, "huge.csv", 1024, "huge.csv is 3 KB; the most I read as a screen is 1 KB"),
    (b"PK\x03\x04\x14\x00", "screen.xlsx", LIMIT, "spreadsheet workbook, not a CSV file"),
    (b"\x00\x01\x02binary\x00", "blob.csv", LIMIT, "not a text file"),
    (b"\r\n\r\n", "empty.csv", LIMIT, "empty.csv is empty"),
    (b'A1,"' + b"x" * 140_000, "open.csv", LIMIT, "open.csv is not a CSV file I can read: a quoted cell never ends"),
])
def test_files_that_are_no_screen_are_refused_with_the_reason(data: bytes, name: str, limit: int, says: str) -> None:
    with pytest.raises(ScreenError) as refused:
        read(data, name, limit)
    assert says in str(refused.value)
