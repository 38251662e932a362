"""`/crystals export [from DATE] [to DATE]`: the period asked for, and a channel's calls as CSV rows. Pure.

Dates are days in UTC (YYYY-MM-DD); both ends are included. Rows come from the store a page at a
time and are written as they come, so a large channel is never held in memory at once.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, TextIO

from bot.render import permalink

USAGE = "`/crystals export [from YYYY-MM-DD] [to YYYY-MM-DD]`"
HEADER = ("time_utc", "uploader", "file", "category", "confidence", "explanation", "team_verdict", "team_label",
          "verdict_by", "thread_link", "plate", "well", "drop", "screen", "condition")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula
_ARGUMENTS = re.compile(r"export(?:\s+from\s+(\S+))?(?:\s+to\s+(\S+))?", re.IGNORECASE)


class ExportRequestError(ValueError):
    """The command's words are not a period; str() says how to write one."""


@dataclass(frozen=True)
class Period:
    """From `start` (inclusive) to `end` (exclusive), Unix times; either open."""

    start: float | None
    end: float | None
    first_day: str | None
    last_day: str | None

    def describe(self) -> str:
        if self.first_day and self.last_day:
            return f"from {self.first_day} to {self.last_day}"
        if self.first_day:
            return f"since {self.first_day}"
        return f"up to {self.last_day}" if self.last_day else "of all time"

    def file_name(self, channel: str) -> str:
        return f"crystals-{channel}-{self.first_day or 'start'}-to-{self.last_day or 'now'}.csv"


def parse_period(text: str) -> Period:
    """`export`, `export from 2026-11-01`, `export to 2026-11-30` or both -> the period; ExportRequestError."""
    match = _ARGUMENTS.fullmatch(text.strip())
    if not match:
        raise ExportRequestError(f"Write {USAGE}, for example `/crystals export from 2026-11-01 to 2026-11-30`.")
    first, last = (_day(word) if word else None for word in match.groups())
    if first and last and last < first:
        raise ExportRequestError(f"The end ({last}) is before the start ({first}). Write {USAGE}.")
    return Period(_midnight(first) if first else None, _midnight(last + timedelta(days=1)) if last else None,
                  first.isoformat() if first else None, last.isoformat() if last else None)


def _day(word: str) -> date:
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise ExportRequestError(f"`{word[:20]}` is not a date like 2026-11-30. Write {USAGE}.") from None


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def write_csv(pages: Iterable[list[Mapping[str, Any]]], team_url: str, channel: str, out: TextIO) -> int:
    """The CSV (column names, then a row per call) written page by page as the pages come; how many calls."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    rows = 0
    for page in pages:
        writer.writerows(csv_row(record, team_url, channel) for record in page)
        rows += len(page)
    return rows


def csv_row(record: Mapping[str, Any], team_url: str, channel: str) -> tuple[str, ...]:
    """One call of the store's export page -> the CSV's columns (see HEADER); a plate's image has its plate,
    well, drop and, when the plate has a screen, the screen and the well's condition (short form)."""
    uploaded = datetime.fromtimestamp(float(record["message_ts"]), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    confidence = "" if record["confidence"] is None else f"{record['confidence']:.3f}"
    link = permalink(team_url, channel, record["reply_ts"] or record["message_ts"], record["thread_ts"])
    plate = tuple(inert(str(record.get(name) or "")) for name in ("plate", "well", "drop", "screen", "condition"))
    return (uploaded, record["user_id"], inert(record["file_name"]), record["label"], confidence,
            inert(record["explanation"]), record["verdict"] or "", record["verdict_label"] or "",
            record["verdict_user"] or "", link, *plate)


def inert(text: str) -> str:
    """Text from people or the model that a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def summary(channel: str, period: Period, rows: int) -> str:
    """The comment that comes with the file in the direct message."""
    if not rows:
        return f"No images were classified in <#{channel}> {period.describe()}: the file has only the column names."
    return f"The {rows} classified images in <#{channel}> {period.describe()}, with the team's latest verdicts."
