"""Wells and drops from file names (`plate42_C05_3_20261126.jpg` -> C5, drop 3), and from questions.

Pure. A name is cut into tokens at `_`, `-`, `.`, spaces and folder separators after its date and time
stamps are taken out, so a number that belongs to a date, a time or a barcode never becomes a well:
a well token has a row letter. A name whose well is ambiguous (two different wells) gets none; the
caller lists it apart rather than put it in the wrong well.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Iterable

from bot.plates.stamps import remove_stamps

ROWS = "ABCDEFGHIJKLMNOP"
PLATE_SHAPES = {96: (8, 12), 384: (16, 24)}  # wells -> (rows, columns)

_COLUMN = r"0{0,2}([1-9]|1\d|2[0-4])"
_ROW_FIRST = re.compile(rf"(?:well)?([a-p]){_COLUMN}", re.IGNORECASE)
_ROW_FIRST_WITH_DROP = re.compile(rf"(?:well)?([a-p]){_COLUMN}(?:d|drop)([1-9])", re.IGNORECASE)
_COLUMN_FIRST = re.compile(r"(0[1-9]|1\d|2[0-4])([A-P])")  # zero-padded, upper case: `01A`, never `3d`
_DROP = re.compile(r"(?:d|drop|s|sub|subwell)?0?([1-9])", re.IGNORECASE)
_SEPARATORS = re.compile(r"[-_.\s]+")
_SPACED_DROP = re.compile(r"(?<![a-z])(drop|subwell)[-_\s]+(?=\d)", re.IGNORECASE)  # `drop 2` -> `drop2`
_IN_TEXT = re.compile(rf"(?<![A-Za-z0-9])(?:(?:well\s*)([A-Pa-p])|([A-P])){_COLUMN}(?![A-Za-z0-9])", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Well:
    """A well; sorts in plate order (A1, A2, ... A12, B1, ...)."""

    row: int  # 0 is A
    column: int  # from 1

    def __str__(self) -> str:
        return f"{ROWS[self.row]}{self.column}"


@dataclass(frozen=True, order=True)
class Position:
    """A drop in a well (drops count from 1)."""

    well: Well
    drop: int = 1

    def __str__(self) -> str:
        return f"{self.well} drop {self.drop}"


def parse_well(text: str) -> Well | None:
    """One token (`B4`, `b04`, `WellB4`) -> Well; anything else -> None."""
    found = _ROW_FIRST.fullmatch(text)
    return _well(found[1], found[2]) if found else None


def parse_position(path: str, plate_ids: Collection[str] = ()) -> Position | None:
    """The well and drop a file's path (inside a zip, or a loose file name) names, or None.

    The file name is read first, then its folders from the innermost (`A01/drop2.jpg`). `plate_ids`
    (the plate's name, the id its images share) are never read as wells: `P12_A01.jpg` of plate P12 is A1.
    """
    *folders, file_name = path.replace("\\", "/").split("/")
    ignored = {plate_id.casefold() for plate_id in plate_ids}
    stem_tokens = [t for t in _tokens(_without_extension(file_name)) if t.casefold() not in ignored]
    for tokens in [stem_tokens, *([t for t in _tokens(f) if t.casefold() not in ignored] for f in reversed(folders))]:
        found = _positions_in(tokens)
        if len({p.well for p in found}) > 1:
            return None  # two different wells: better listed apart than put in the wrong well
        if found:
            position = min(found)
            return position if tokens is stem_tokens else Position(position.well, _leading_drop(stem_tokens))
    return None


def plate_size(positions: Iterable[Position]) -> int:
    """96, or 384 when a well lies beyond row H or column 12."""
    rows, columns = PLATE_SHAPES[96]
    beyond = any(p.well.row >= rows or p.well.column > columns for p in positions)
    return 384 if beyond else 96


def wells_in_text(text: str) -> list[Well]:
    """Wells a person names in a question ("why is D7 precipitate?", "compare well b3 and B4"), in order.

    Lower case counts only after "well", so words like "a1" in prose or "d2" for a drop are not wells.
    """
    found: list[Well] = []
    for match in _IN_TEXT.finditer(text):
        letter = match[1] or match[2]
        if match[2] and not letter.isupper():
            continue
        well = _well(letter, match[3])
        if well not in found:
            found.append(well)
    return found


def _positions_in(tokens: list[str]) -> set[Position]:
    """Every position the tokens name; a drop token after a well (`B12`, `d2`) belongs to that well.
    Column-first wells (`01A`) count only where no row-first one is named: `PEG_20K_A1` is A1."""
    row_first: set[Position] = set()
    column_first: set[Position] = set()
    index = 0
    while index < len(tokens):
        token, rest = tokens[index], tokens[index + 1:]
        index += 1
        if found := _ROW_FIRST_WITH_DROP.fullmatch(token):
            row_first.add(Position(_well(found[1], found[2]), int(found[3])))
            continue
        well, bucket = parse_well(token), row_first
        if well is None:
            well, bucket = _column_first(token), column_first
        if well:
            bucket.add(Position(well, _leading_drop(rest)))
            index += 1 if rest and _DROP.fullmatch(rest[0]) else 0
    return row_first or column_first


def _column_first(token: str) -> Well | None:
    found = _COLUMN_FIRST.fullmatch(token)
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
