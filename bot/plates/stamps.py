"""Date and time stamps in file names (`2026-11-26`, `20261126_093000`, `26Nov2026`, `09:30`).

Plate imagers and people put them in zip, folder and image names; they are never a well, a drop or
part of a plate's name, so both the well parser and the plate namer take them out first.
"""
from __future__ import annotations

import re

_EDGE_BEFORE = r"(?<![A-Za-z0-9])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"
_SEP = r"[-_.]"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_NAME = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
_DATE = (
    rf"(?:(?:19|20)\d\d{_SEP}{_MONTH}{_SEP}{_DAY}"  # 2026-11-26, 2026_11_26, 2026.11.26
    rf"|{_DAY}{_SEP}{_MONTH}{_SEP}(?:19|20)\d\d"  # 26-11-2026, 26.11.2026
    rf"|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # 20261126
    rf"|{_DAY}[-_ ]?{_MONTH_NAME}[-_ ]?(?:19|20)?\d\d"  # 26Nov2026, 26-nov-26
    rf"|{_MONTH_NAME}[-_ ]?{_DAY}[-_ ,]*(?:19|20)\d\d)"  # Nov-26-2026
)
_CLOCK = r"(?:[01]\d|2[0-3])[-_.:h]?[0-5]\d(?:[-_.:m]?[0-5]\d(?:\.\d+)?s?)?"  # 0930, 09-30, 093000, 09:30:00.5
_SEPARATED_CLOCK = r"(?:[01]?\d|2[0-3])[:h][0-5]\d(?:[:m][0-5]\d)?|(?:[01]\d|2[0-3])-[0-5]\d-[0-5]\d"
STAMP = re.compile(
    rf"{_EDGE_BEFORE}(?:{_DATE}(?:[-_ T.]?{_CLOCK}(?:Z|[+-]\d\d:?\d\d)?)?|{_SEPARATED_CLOCK}){_EDGE_AFTER}",
    re.IGNORECASE,
)


def remove_stamps(text: str, replacement: str = "_") -> str:
    """`text` with every date, date-and-time and clock time replaced by `replacement`.

    A bare 4- or 6-digit number counts as a time only right after a date (`2026-12-01_0930`): alone it
    may be a barcode.
    """
    return STAMP.sub(replacement, text)
