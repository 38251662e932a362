"""Date and time stamps in file names (`2026-11-26`, `20261126_093000`, `26Nov2026`, `09:30`).

Plate imagers and people put them in zip, folder and image names; they are never a well, a drop or
part of a plate's name, so both the well parser and the plate namer take them out first. What a
stamp says (the date, and the time of day when it has one) dates a plate's inspection.
"""
from __future__ import annotations

import re
from datetime import datetime

_EDGE_BEFORE = r"(?<![A-Za-z0-9])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"
_SEP = r"[-_.]"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_NAME = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE = (  # each form names its parts: year y, month m (or month name n), day d, numbered by form
    rf"(?:(?P<y1>(?:19|20)\d\d){_SEP}(?P<m1>{_MONTH}){_SEP}(?P<d1>{_DAY})"  # 2026-11-26, 2026_11_26, 2026.11.26
    rf"|(?P<d2>{_DAY}){_SEP}(?P<m2>{_MONTH}){_SEP}(?P<y2>(?:19|20)\d\d)"  # 26-11-2026, 26.11.2026
    rf"|(?P<y3>(?:19|20)\d\d)(?P<m3>0[1-9]|1[0-2])(?P<d3>0[1-9]|[12]\d|3[01])"  # 20261126
    rf"|(?P<d4>{_DAY})[-_ ]?(?P<n4>{_MONTH_NAME})[-_ ]?(?P<y4>(?:19|20)?\d\d)"  # 26Nov2026, 26-nov-26
    rf"|(?P<n5>{_MONTH_NAME})[-_ ]?(?P<d5>{_DAY})[-_ ,]*(?P<y5>(?:19|20)\d\d))"  # Nov-26-2026
)
_CLOCK = (r"(?P<hour>[01]\d|2[0-3])[-_.:h]?(?P<minute>[0-5]\d)"  # 0930, 09-30, 093000, 09:30:00.5
          r"(?:[-_.:m]?(?P<second>[0-5]\d)(?:\.\d+)?s?)?")
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


def stamp_times(text: str) -> list[datetime]:
    """When each dated stamp in `text` says, in order: the date, and the time of day if it has one
    (midnight otherwise), as written (no time zone). Clock times without a date, and dates that do
    not exist (`2026-02-30`), say nothing."""
    times = []
    for found in STAMP.finditer(text):
        form = next((n for n in "12345" if found[f"d{n}"]), None)
        if form is None:
            continue
        month = found[f"m{form}"] if form in "123" else str(_MONTH_NAMES.index(found[f"n{form}"][:3].lower()) + 1)
        year = found[f"y{form}"]
        try:
            times.append(datetime(int(year) + (2000 if len(year) == 2 else 0), int(month), int(found[f"d{form}"]),
                                  int(found["hour"] or 0), int(found["minute"] or 0), int(found["second"] or 0)))
        except ValueError:
            continue
    return times
