"""A screen file's bytes -> a Screen: each well's condition. Pure.

Two kinds of file are read, as they come:
- HWI's cocktail list: a title line, then `Well position in plate, Cocktail #, ..., Chemical Additive,
  Concentration, ..., pH, ...`, wells numbered 1 to 1536 on a 32 x 48 plate, one column per
  additive and concentration; the pH column gives the pH of the additive before it (the buffer).
- a table as people keep it: a well column (`A1`, `A01` or `1`) and the condition, in a column of its
  own (`Condition`, `Composition`, ...) or spread over the other columns, with or without a header,
  with or without more columns.

The encoding (UTF-8 or UTF-16 with a byte-order mark, UTF-8, else Windows-1252 or Mac Roman), the
delimiter (`,`, `;`, tab, `|`), the header row and the line ends (CRLF, CR, LF) are found from the
file itself. A file that is no screen raises ScreenError, whose message says why to the person who
sent it; nothing of it is kept.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Iterator

from bot.plates.wells import (LARGEST, LAYOUTS, Well, layout_holding, layout_numbered_to, numbered_well, on_plate,
                              parse_well, parse_well_number, row_name)
from bot.screens.chemistry import Condition, parse_component, parse_condition, parse_ph

HWI_KIND = "HWI cocktail list"
TABLE_KIND = "well and condition table"
DELIMITERS = "\t;|,"  # in the order preferred when the sniffer cannot tell
SAMPLE_LINES = 40
HEADER_SEARCH = 5  # rows at the top that may be titles or the header
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Characters a screen's text plausibly holds beyond ASCII: what decides between Windows-1252 and Mac
# Roman, which read any byte (each misreads the other's `®`, `°`, `µ`... as one of the characters
# left out here; measured: charset-normalizer and chardet misread such short files).
LAB_CHARACTERS = frozenset("®™©µμ°±·×–—‘’“”αβγδΔ²³½éüöä…")
_WELL_HEADER = re.compile(r"(?:well|well\s*(?:position|pos\.?|no\.?|#|id|number)(?:\s*in\s*plate)?|position|pos\.?)",
                          re.IGNORECASE)
_CONDITION_HEADER = re.compile(r"\b(?:conditions?|composition|cocktail|formulation|description|reagents?|solution|"
                               r"recipe|contents?)\b", re.IGNORECASE)
_IGNORED_HEADER = re.compile(r"notes?|comments?|remarks?|tube|id|index|code|cat(?:alog(?:ue)?)?\.?\s*(?:no\.?|#)?|"
                             r"supplier|source|name|screen", re.IGNORECASE)
_ADDITIVE_HEADER = re.compile(r"chemical\s+additive|additive", re.IGNORECASE)
_CONCENTRATION_HEADER = re.compile(r"conc(?:entration|\.)?", re.IGNORECASE)
_REFERENCE_HEADER = re.compile(r"cocktail\s*#|cocktail\s*(?:no\.?|number|id)", re.IGNORECASE)
_INDEX = re.compile(r"#?\d{1,4}")


class ScreenError(ValueError):
    """A file that is not a screen I can read; str() says why, for the person who sent it."""


@dataclass(frozen=True)
class Screen:
    layout: int  # wells of the plate it fills: 24, 96, 384 or 1536
    conditions: dict[str, Condition]  # by well name (`A1`, `AF48`), in plate order
    kind: str  # HWI_KIND or TABLE_KIND
    encoding: str
    skipped: tuple[str, ...] = ()  # rows not read, and why (`line 7: no condition`)

    def unread(self) -> list[tuple[str, str]]:
        """(well, part) of every part of a condition that was not understood, in plate order."""
        return [(well, part) for well, condition in self.conditions.items() for part in condition.unread]


@dataclass(frozen=True)
class _Row:
    line: int
    cells: list[str]


def read_screen(data: bytes, file_name: str, max_bytes: int) -> Screen:
    """The screen in a file's bytes; ScreenError if it is none (too large, no well column, duplicate
    wells, wells outside the largest plate, no condition I can read)."""
    if len(data) > max_bytes:
        raise ScreenError(f"{file_name} is {_kilobytes(len(data))}; the most I read as a screen is "
                          f"{_kilobytes(max_bytes)} (MAX_SCREEN_KB).")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ScreenError(f"{file_name} is a spreadsheet workbook, not a CSV file. Save it as CSV "
                          "(File → Save As → CSV UTF-8) and upload that.")
    text, encoding = decode(data)
    if "\x00" in text:
        raise ScreenError(f"{file_name} is not a text file. Save the screen as CSV and upload that.")
    try:
        rows = [row for row in _rows(text) if any(row.cells)]
    except csv.Error as error:  # a quoted field that never ends, or one over the csv module's size limit
        raise ScreenError(f"{file_name} is not a CSV file I can read: a quoted cell never ends, or is far too "
                          "long.") from error
    if not rows:
        raise ScreenError(f"{file_name} is empty.")
    header_at, well_column = _find_well_column(rows, file_name)
    header = [cell.casefold() for cell in rows[header_at].cells] if header_at is not None else []
    data_rows = rows[header_at + 1:] if header_at is not None else rows
    if header and any(_ADDITIVE_HEADER.fullmatch(cell) for cell in header):
        conditions, skipped, numbered_layout = _hwi_conditions(data_rows, header, well_column)
        kind = HWI_KIND
    else:
        conditions, skipped, numbered_layout = _table_conditions(data_rows, header, well_column)
        kind = TABLE_KIND
    layout, placed, not_wells = _place(conditions, numbered_layout, file_name)
    if not any(c.concentration for condition in placed.values() for c in condition.components):
        raise ScreenError(f"{file_name} has a well column, but no concentration I can read in any condition "
                          "(like `0.1 M HEPES pH 7.5, 20% w/v PEG 3350`): is it a screen?")
    return Screen(layout, placed, kind, encoding, tuple(skipped + not_wells))


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name): a byte-order mark says; else UTF-8 if it is; else Windows-1252 or Mac Roman,
    whichever reads into the characters a screen plausibly holds (Windows-1252 on a tie)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    readings = []
    for rank, encoding in enumerate(("cp1252", "mac_roman")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        odd = sum(1 for character in text if ord(character) > 127 and character not in LAB_CHARACTERS)
        readings.append((odd, rank, text, encoding))
    _, _, text, encoding = min(readings)  # mac_roman reads every byte: there is always one
    return text, encoding


def delimiter_of(text: str) -> str:
    """The delimiter: csv.Sniffer's answer, else the candidate found on the most lines (a condition's
    own commas confuse the sniffer when it is not quoted: `A1;0,1 M HEPES`)."""
    sample = "\n".join(text.splitlines()[:SAMPLE_LINES])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        lines = [line for line in sample.splitlines() if line.strip()]
        counts = [(sum(1 for line in lines if candidate in line), -rank, candidate)
                  for rank, candidate in enumerate(DELIMITERS)]
        return max(counts)[2] if max(counts)[0] else ","


def _rows(text: str) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(text))
    for cells in reader:
        yield _Row(reader.line_num, [cell.strip() for cell in cells])


def _find_well_column(rows: list[_Row], file_name: str) -> tuple[int | None, int]:
    """(index of the header row or None, index of the well column)."""
    for index, row in enumerate(rows[:HEADER_SEARCH]):
        named = [column for column, cell in enumerate(row.cells) if _WELL_HEADER.fullmatch(cell)]
        if named:
            return index, named[0]
    width = max(len(row.cells) for row in rows)
    scores = []
    for column in range(width):
        cells = [row.cells[column] if column < len(row.cells) else "" for row in rows]
        named = sum(1 for cell in cells if parse_well(cell))
        numbered = sum(1 for cell in cells if parse_well_number(cell) is not None)
        scores.append((named, numbered, -column))
    named, numbered, column = max(scores)
    column = -column
    first = rows[0].cells[column] if column < len(rows[0].cells) else ""
    header_at = 0 if not (parse_well(first) or parse_well_number(first) is not None) else None
    data_rows = len(rows) - (header_at is not None)
    if data_rows == 0 or max(named, numbered) < max(1, data_rows * 0.8):
        raise ScreenError(f"{file_name} has no well column: I look for a column named `Well` or one whose "
                          "every row is a well (`A1`, `A01` or `1`).")
    return header_at, column


def _hwi_conditions(rows: list[_Row], header: list[str],
                    well_column: int) -> tuple[list[tuple[_Row, str, Condition]], list[str], int | None]:
    """HWI's columns: each additive with the concentration column after it; a pH column gives the pH of
    the additive before it. Wells are numbered on a 1536-well plate."""
    additives = [column for column, name in enumerate(header) if _ADDITIVE_HEADER.fullmatch(name)]
    ph_columns = [column for column, name in enumerate(header) if name == "ph"]
    reference = next((column for column, name in enumerate(header) if _REFERENCE_HEADER.fullmatch(name)), None)
    read: list[tuple[_Row, str, Condition]] = []
    skipped: list[str] = []
    for row in rows:
        cell = _cell(row, well_column)
        components, unread, texts = [], [], []
        condition_ph = None
        for additive in additives:
            name = _cell(row, additive)
            amount = _cell(row, _next_matching(header, additive, _CONCENTRATION_HEADER) or -1)
            ph_column = next((c for c in ph_columns if c > additive and not any(additive < a < c for a in additives)),
                             None)
            ph = parse_ph(_cell(row, ph_column)) if ph_column is not None and _cell(row, ph_column) else None
            if ph is not None:
                condition_ph = ph
            formula = _cell(row, additive + 1) if header[additive + 1:additive + 2] == ["chemical formula"] else ""
            if not name:
                if amount:
                    unread.append(f"{amount} (no chemical)")
                continue
            component = parse_component(name, amount, ph, formula)
            components.append(component)
            texts.append(" ".join(p for p in (amount, name, f"pH {_cell(row, ph_column)}" if ph is not None else "") if p))
            if component.concentration is None:
                unread.append(" ".join(p for p in (amount, name) if p))
        if not components:
            skipped.append(f"line {row.line}: no condition")
            continue
        ph = next((c.ph for c in components if c.ph is not None), condition_ph)
        if condition_ph is not None and all(c.ph is None for c in components):
            texts.append(f"pH {condition_ph:g}")  # an unbuffered condition's own pH
        condition = Condition(", ".join(texts), tuple(components), ph,
                              _cell(row, reference) if reference is not None else "", tuple(unread))
        read.append((row, cell, condition))
    return read, skipped, 1536


def _table_conditions(rows: list[_Row], header: list[str],
                      well_column: int) -> tuple[list[tuple[_Row, str, Condition]], list[str], int | None]:
    """A well column and the condition: the column named like one (with the cells after it, when it is the
    last column and the condition's commas were not quoted), else every other cell that is not a number."""
    named = next((column for column, name in enumerate(header) if column != well_column and _CONDITION_HEADER.search(name)
                  and not _REFERENCE_HEADER.fullmatch(name) and not _IGNORED_HEADER.fullmatch(name)), None)
    ignored = {column for column, name in enumerate(header)
               if _IGNORED_HEADER.fullmatch(name) or _REFERENCE_HEADER.fullmatch(name)}
    read: list[tuple[_Row, str, Condition]] = []
    skipped: list[str] = []
    for row in rows:
        cell = _cell(row, well_column)
        if named is not None:
            last = named == len(header) - 1
            parts = row.cells[named:] if last else [_cell(row, named)]
        else:
            parts = [c for column, c in enumerate(row.cells)
                     if column != well_column and column not in ignored and not _INDEX.fullmatch(c)]
        text = ", ".join(part for part in parts if part)
        if not text:
            skipped.append(f"line {row.line}: no condition")
            continue
        read.append((row, cell, parse_condition(text)))
    return read, skipped, None


def _place(read: list[tuple[_Row, str, Condition]], numbered_layout: int | None,
           file_name: str) -> tuple[int, dict[str, Condition], list[str]]:
    """The layout, each condition by its well, and the rows whose well cell is no well. Wells outside
    the largest plate and wells named twice are refused."""
    numbers = [number for _, cell, _ in read if (number := parse_well_number(cell)) is not None]
    layout = numbered_layout or (layout_numbered_to(max(numbers)) if numbers else None) or LARGEST
    if numbers and (min(numbers) < 1 or max(numbers) > layout):
        wrong = next(n for n in numbers if n < 1 or n > layout)
        raise ScreenError(f"{file_name}: well {wrong} is outside the plate (wells are numbered 1 to "
                          f"{layout:,} on a {layout:,}-well plate).")
    wells: list[tuple[Well, _Row, Condition]] = []
    named: list[Well] = []  # wells given by name (`B4`), which may need a larger plate than the numbers
    skipped: list[str] = []
    for row, cell, condition in read:
        number = parse_well_number(cell)
        well = numbered_well(number, LAYOUTS[layout][1]) if number is not None else parse_well(cell)
        named += [well] if number is None and well else []
        if well is None:
            skipped.append(f"line {row.line}: `{cell[:20]}` is not a well" if cell else f"line {row.line}: no well")
        else:
            wells.append((well, row, condition))
    if not wells:
        raise ScreenError(f"{file_name} has no condition in a well I can read.")
    rows, columns = LAYOUTS[LARGEST]
    for well, row, _ in wells:
        if not on_plate(well):
            raise ScreenError(f"{file_name}, line {row.line}: well {well} is outside the largest plate "
                              f"I know ({LARGEST:,} wells, A1 to {row_name(rows - 1)}{columns}).")
    seen: dict[Well, _Row] = {}
    for well, row, _ in wells:
        if well in seen:
            raise ScreenError(f"{file_name}: well {well} appears twice (lines {seen[well].line} and "
                              f"{row.line}); a screen has one condition per well.")
        seen[well] = row
    if named:
        holding = layout_holding(max(w.row for w in named) + 1, max(w.column for w in named)) or LARGEST
        layout = max(holding, layout if numbers else 0)
    placed = {str(well): condition for well, _, condition in sorted(wells, key=lambda item: item[0])}
    return layout, placed, skipped


def _next_matching(header: list[str], after: int, pattern: re.Pattern[str]) -> int | None:
    return next((column for column in range(after + 1, len(header)) if pattern.fullmatch(header[column])), None)


def _cell(row: _Row, column: int | None) -> str:
    return row.cells[column] if column is not None and 0 <= column < len(row.cells) else ""


def _kilobytes(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size} bytes"
