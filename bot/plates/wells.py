"""Wells and drops from file names (`plate42_C05_3_20261126.jpg` -> C5, drop 3), and from questions.

Pure. A name is cut into tokens at `_`, `-`, `.`, spaces and folder separators after its date and time
stamps are taken out, so a number that belongs to a date, a time or a barcode never becomes a well:
a well token has a row letter. A name whose well is ambiguous (two different wells) gets none; the
caller lists it apart rather than put it in the wrong well.

Wells are read on a 384-well layout (rows A-P, columns 1-24) unless the caller asks for 1536 wells
(rows A-Z then AA-AF, columns 1-48): beyond P24 more tokens look like wells (`T4`, `AB12`), so a
plate's names are read that way only when that gives more of them a well (`plate_positions` in
naming.py). HWI's names (`X0000158620361202008111512.jpg`: a 10-character plate id, a 4-digit well
number counted row by row on the 1536-well grid, the date, the rest) are read as such, on their own
terms: their id and date are never read as a well, nor their well number as a date.

This module is the one home of the plate's geometry: row names (A ... Z, then AA ... AF), the layouts
(24-well trays to 1536-well plates), wells numbered row by row, and a well as people write it
(`B4`, `A01`, `Well B4`, `12`), for file names and screens (bot/screens/reading.py) alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from string import ascii_uppercase
from typing import Collection, Iterable

from bot.plates.stamps import remove_stamps

LAYOUTS = {24: (4, 6), 96: (8, 12), 384: (16, 24), 1536: (32, 48)}  # every plate the bot knows: wells -> (rows, cols)
LARGEST = max(LAYOUTS)
PLATE_SHAPES = {wells: LAYOUTS[wells] for wells in (96, 384, 1536)}  # plates whose images are read and mapped
DEFAULT_LAYOUT = 384  # names and questions are read on this layout unless the plate is larger


def row_name(row: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 31 -> AF (and AG ... AZ past the largest plate, to name a well that is off it)."""
    return ascii_uppercase[row] if row < 26 else "A" + ascii_uppercase[row - 26]


def row_index(name: str) -> int | None:
    """A -> 0, Z -> 25, AA -> 26, AF -> 31; None for anything else."""
    name = name.upper()
    if len(name) == 1 and name in ascii_uppercase:
        return ascii_uppercase.index(name)
    return 26 + ascii_uppercase.index(name[1]) if len(name) == 2 and name[0] == "A" and name[1] in ascii_uppercase \
        else None


ROWS = tuple(row_name(row) for row in range(LAYOUTS[LARGEST][0]))  # row names of the largest plate, in order

_DROP = re.compile(r"(?:d|drop|s|sub|subwell)?0?([1-9])", re.IGNORECASE)
_SEPARATORS = re.compile(r"[-_.\s]+")
_SPACED_DROP = re.compile(r"(?<![a-z])(drop|subwell)[-_\s]+(?=\d)", re.IGNORECASE)  # `drop 2` -> `drop2`
_WRITTEN_WELL = re.compile(r"(?:well\s*)?([A-Z]{1,2})\s*0*(\d{1,2})", re.IGNORECASE)
_WRITTEN_NUMBER = re.compile(r"(?:well\s*)?#?\s*0*(\d{1,4})", re.IGNORECASE)
_HWI_NAME = re.compile(r"(?P<plate>[A-Za-z0-9]{10})(?P<number>\d{4})"
                       r"(?P<year>(?:19|20)\d\d)(?P<month>0[1-9]|1[0-2])(?P<day>0[1-9]|[12]\d|3[01])"
                       r"(?P<rest>[-_A-Za-z0-9]*)")


@dataclass(frozen=True)
class _Grammar:
    """The well tokens of one layout: row first (`B4`, `AB12`, `b04_d2`), column first (`04B`), in text."""

    row_first: re.Pattern[str]
    row_first_with_drop: re.Pattern[str]
    column_first: re.Pattern[str]
    in_text: re.Pattern[str]


@cache
def _grammar(layout: int) -> _Grammar:
    rows, columns = PLATE_SHAPES[layout]
    letters = sorted(ROWS[:rows], key=len, reverse=True)  # `AB` before `A`
    row = "|".join(letters)
    tens, last = divmod(columns, 10)
    two_digits = rf"[1-{tens - 1}]\d|{tens}[0-{last}]" if tens > 1 else rf"1[0-{last}]"
    column = rf"0{{0,2}}([1-9]|{two_digits})"
    return _Grammar(
        row_first=re.compile(rf"(?:well)?({row}){column}", re.IGNORECASE),
        row_first_with_drop=re.compile(rf"(?:well)?({row}){column}(?:d|drop)([1-9])", re.IGNORECASE),
        column_first=re.compile(rf"(0[1-9]|{two_digits})({row})"),  # zero-padded, upper case: `01A`, never `3d`
        in_text=re.compile(rf"(?<![A-Za-z0-9])(?:(?:well\s*)({row})|({row})){column}(?![A-Za-z0-9])",
                           re.IGNORECASE),
    )


@dataclass(frozen=True, order=True)
class Well:
    """A well; sorts in plate order (A1, A2, ... A12, B1, ...)."""

    row: int  # 0 is A
    column: int  # from 1

    def __str__(self) -> str:
        """`A1`, `H12`, `AF48`: the name a well is stored and shown under."""
        return f"{row_name(self.row)}{self.column}"


@dataclass(frozen=True, order=True)
class Position:
    """A drop in a well (drops count from 1)."""

    well: Well
    drop: int = 1

    def __str__(self) -> str:
        return f"{self.well} drop {self.drop}"


@dataclass(frozen=True)
class HwiName:
    """What an HWI image's name says: `X0000158620361202008111512.jpg` is plate X000015862, well 361
    (H25), imaged on 2020-08-11."""

    plate_id: str
    well: Well
    imaged: date


def parse_well(text: str) -> Well | None:
    """A well as written (`B4`, `b04`, `A001`, `WellB4`, `Well B4`, `AF48`) -> Well; anything else (a number, `BA1`,
    `A0`) -> None. Rows go to AZ and columns to 99, so a well off the largest plate (`AG1`, `A49`) is read, for
    the caller to say so (`on_plate`)."""
    found = _WRITTEN_WELL.fullmatch(text.strip())
    row = row_index(found[1]) if found else None
    if found is None or row is None or int(found[2]) < 1:
        return None
    return Well(row, int(found[2]))


def parse_well_number(text: str) -> int | None:
    """A well written as a number (`1`, `0361`, `#12`, `Well 12`) -> the number; anything else -> None."""
    found = _WRITTEN_NUMBER.fullmatch(text.strip())
    return int(found[1]) if found else None


def on_plate(well: Well, layout: int = LARGEST) -> bool:
    """Whether a plate of `layout` wells has this well."""
    rows, columns = LAYOUTS[layout]
    return well.row < rows and 1 <= well.column <= columns


def layout_holding(rows: int, columns: int, layouts: Collection[int] = tuple(LAYOUTS)) -> int | None:
    """The smallest of `layouts` (in wells) with at least `rows` rows and `columns` columns; None if none has."""
    return next((wells for wells in sorted(layouts) if rows <= LAYOUTS[wells][0] and columns <= LAYOUTS[wells][1]),
                None)


def layout_numbered_to(largest: int) -> int | None:
    """The plate wells numbered 1 ... `largest` fill: the smallest with that many wells; None if none has."""
    return next((wells for wells in sorted(LAYOUTS) if largest <= wells), None)


def numbered_well(number: int, columns: int) -> Well:
    """Well `number` (from 1) of a plate numbered row by row with `columns` columns, as HWI numbers its
    images' wells and its screens' "well position in plate" (bot/screens/reading.py): on 48 columns 1 is
    A1, 48 is A48, 49 is B1, 361 is H25, 1536 is AF48."""
    return Well((number - 1) // columns, (number - 1) % columns + 1)


def well_from_number(number: int, layout: int = 1536) -> Well | None:
    """Well `number` of a plate of `layout` wells, numbered row by row; None off the plate."""
    rows, columns = PLATE_SHAPES[layout]
    return numbered_well(number, columns) if 1 <= number <= rows * columns else None


def parse_hwi_name(path: str) -> HwiName | None:
    """An HWI image name's plate id, well and date (`<plate id, 10 characters><well number, 4 digits>
    <YYYYMMDD><rest>`), or None for any other name (or a well number or date that does not exist)."""
    file_name = path.replace("\\", "/").rsplit("/", 1)[-1]
    found = _HWI_NAME.fullmatch(_without_extension(file_name))
    if not found:
        return None
    well = well_from_number(int(found["number"]))
    try:
        imaged = date(int(found["year"]), int(found["month"]), int(found["day"]))
    except ValueError:  # 30 February
        return None
    return HwiName(found["plate"], well, imaged) if well else None


def parse_position(path: str, plate_ids: Collection[str] = (), layout: int = DEFAULT_LAYOUT) -> Position | None:
    """The well and drop a file's path (inside a zip, or a loose file name) names, or None.

    An HWI name gives its well. Otherwise the file name is read first, then its folders from the
    innermost (`A01/drop2.jpg`), for wells of a plate of `layout` wells. `plate_ids` (the plate's name,
    the id its images share) are never read as wells: `P12_A01.jpg` of plate P12 is A1.
    """
    hwi = parse_hwi_name(path)
    if hwi:
        return Position(hwi.well)
    grammar = _grammar(layout)
    *folders, file_name = path.replace("\\", "/").split("/")
    ignored = {plate_id.casefold() for plate_id in plate_ids}
    stem_tokens = [t for t in _tokens(_without_extension(file_name)) if t.casefold() not in ignored]
    for tokens in [stem_tokens, *([t for t in _tokens(f) if t.casefold() not in ignored] for f in reversed(folders))]:
        found = _positions_in(tokens, grammar)
        if len({p.well for p in found}) > 1:
            return None  # two different wells: better listed apart than put in the wrong well
        if found:
            position = min(found)
            return position if tokens is stem_tokens else Position(position.well, _leading_drop(stem_tokens))
    return None


def plate_size(positions: Iterable[Position]) -> int:
    """The smallest plate that holds every well: 96, 384 beyond row H or column 12, 1536 beyond P or 24."""
    wells = {p.well for p in positions}
    return layout_holding(max((w.row + 1 for w in wells), default=0), max((w.column for w in wells), default=0),
                          PLATE_SHAPES) or max(PLATE_SHAPES)


def wells_in_text(text: str, layout: int = DEFAULT_LAYOUT) -> list[Well]:
    """Wells a person names in a question ("why is D7 precipitate?", "compare well b3 and B4"), in order,
    among the wells of a plate of `layout` wells.

    Lower case counts only after "well", so words like "a1" in prose or "d2" for a drop are not wells.
    """
    found: list[Well] = []
    for match in _grammar(layout).in_text.finditer(text):
        letter = match[1] or match[2]
        if match[2] and not letter.isupper():
            continue
        well = _well(letter, match[3])
        if well not in found:
            found.append(well)
    return found


def _positions_in(tokens: list[str], grammar: _Grammar) -> set[Position]:
    """Every position the tokens name; a drop token after a well (`B12`, `d2`) belongs to that well.
    Column-first wells (`01A`) count only where no row-first one is named: `PEG_20K_A1` is A1."""
    row_first: set[Position] = set()
    column_first: set[Position] = set()
    index = 0
    while index < len(tokens):
        token, rest = tokens[index], tokens[index + 1:]
        index += 1
        if found := grammar.row_first_with_drop.fullmatch(token):
            row_first.add(Position(_well(found[1], found[2]), int(found[3])))
            continue
        bucket = row_first
        if found := grammar.row_first.fullmatch(token):
            well: Well | None = _well(found[1], found[2])
        else:
            well, bucket = _column_first(token, grammar), column_first
        if well:
            bucket.add(Position(well, _leading_drop(rest)))
            index += 1 if rest and _DROP.fullmatch(rest[0]) else 0
    return row_first or column_first


def _column_first(token: str, grammar: _Grammar) -> Well | None:
    found = grammar.column_first.fullmatch(token)
    return Well(ROWS.index(found[2]), int(found[1])) if found else None


def _leading_drop(tokens: list[str]) -> int:
    """The drop number the next token gives (`2`, `d2`, `drop2`), else 1."""
    found = _DROP.fullmatch(tokens[0]) if tokens else None
    return int(found[1]) if found else 1


def _well(letter: str, column: str) -> Well:
    return Well(ROWS.index(letter.upper()), int(column))


def _tokens(text: str) -> list[str]:
    return [t for t in _SEPARATORS.split(_SPACED_DROP.sub(r"\1", remove_stamps(text, " "))) if t]


def _without_extension(file_name: str) -> str:
    stem, dot, extension = file_name.rpartition(".")
    return stem if dot and stem and extension.isalnum() and not extension.isdigit() else file_name
