"""Well names on plates of up to 1536 wells, and screens' well numbers. Pure.

Rows run A ... Z, then AA ... AF (a 1536-well plate has 32 rows of 48 columns). A well numbered n
(HWI's "well position in plate", or a hand-kept file's `1`, `2`, ...) counts row by row from 1:
on a 1536-well plate 1 = A1, 48 = A48, 49 = B1, 1536 = AF48.
"""
from __future__ import annotations

import re
from string import ascii_uppercase

from bot.plates.wells import Well, numbered_well  # noqa: F401 - numbered_well: the one row-by-row numbering

LAYOUTS = {24: (4, 6), 96: (8, 12), 384: (16, 24), 1536: (32, 48)}  # wells -> (rows, columns)
LARGEST = max(LAYOUTS)
_NAMED = re.compile(r"(?:well\s*)?([A-Z]{1,2})\s*0*(\d{1,2})", re.IGNORECASE)
_NUMBERED = re.compile(r"(?:well\s*)?#?\s*0*(\d{1,4})", re.IGNORECASE)


def row_name(row: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 31 -> AF."""
    return ascii_uppercase[row] if row < 26 else "A" + ascii_uppercase[row - 26]


def row_index(name: str) -> int | None:
    """A -> 0, Z -> 25, AA -> 26, AF -> 31; None for anything else."""
    name = name.upper()
    if len(name) == 1:
        return ascii_uppercase.index(name)
    return 26 + ascii_uppercase.index(name[1]) if name[0] == "A" else None


def well_name(well: Well) -> str:
    """`A1`, `H12`, `AF48`: the name a well is stored and shown under (rows past P included)."""
    return f"{row_name(well.row)}{well.column}"


def layout_holding(rows: int, columns: int) -> int | None:
    """The smallest plate (in wells) with at least `rows` rows and `columns` columns; None if none does."""
    return next((wells for wells, (r, c) in sorted(LAYOUTS.items()) if rows <= r and columns <= c), None)


def layout_for_numbers(largest: int) -> int | None:
    """The plate a screen numbered 1 ... `largest` fills: the smallest with that many wells."""
    return next((wells for wells in sorted(LAYOUTS) if largest <= wells), None)


def parse_named_well(text: str) -> Well | None:
    """`A1`, `a01`, `AF48`, `Well B4` -> the well; None for anything else (a number included)."""
    found = _NAMED.fullmatch(text.strip())
    row = row_index(found[1]) if found else None
    if found is None or row is None or int(found[2]) < 1:
        return None
    return Well(row, int(found[2]))


def parse_well_number(text: str) -> int | None:
    """`1`, `0361`, `#12` -> the number; None for anything else."""
    found = _NUMBERED.fullmatch(text.strip())
    return int(found[1]) if found else None
