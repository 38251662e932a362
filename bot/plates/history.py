"""A plate's inspections over time, linked by well and drop: when each was imaged, its day, each drop's
calls from one inspection to the next and since when a drop has been crystals. Pure.

An inspection is dated by when it was imaged, as imagers write it into names: the zip's name (or the
message's text), else the date most of its images' names carry (HWI names carry theirs), else the
upload time. A date in a name is read as it is written, without a time zone (shown as such, and kept
as if it were UTC); a date in the future is not believed. Day numbers count calendar days from the
plate's first inspection, day 0.

A drop's call is the team's latest verdict on it when there is one, else the bot's: a crystal the
team corrected away is no crystal here. An inspection that did not see a drop (no image, unreadable)
says nothing about it: a run of crystals goes on across it.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Collection, Iterable, Mapping, Sequence

from bot.models import Inspection
from bot.plates.stamps import stamp_times
from bot.plates.wells import PLATE_SHAPES, Position, parse_hwi_name, wells_in_text

DAY_SECONDS = 86_400.0
_ASKS_FOR_HISTORY = re.compile(
    r"\b(?:over time|history|histories|time ?line|time[- ]course|time[- ]lapse|progress(?:ion)?|evolution"
    r"|(?:across|over|through|in) (?:the |all |every |each )?(?:inspections|days|weeks)"
    r"|(?:every|each|all) inspections?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Dating:
    """When an inspection was imaged and what said so."""

    at: float  # seconds since the epoch; a date in a name read as UTC
    source: str  # "zip" or "message" (its name or text), "images" (their names), "upload" (the upload time)


@dataclass(frozen=True)
class DropRecord:
    """What one inspection's image of a drop became (from the store)."""

    inspection_id: int
    job_id: int
    drop: int
    label: str | None  # the bot's call; None: the image could not be read or classified
    confidence: float | None
    team_label: str | None  # the label of the team's latest verdict, if any
    image_sha256: str | None
    image_kept: bool  # False once its bytes were pruned (KEEP_IMAGES_DAYS)
    unreadable: bool  # the image could not be read (no call for that reason, not for a failed model call)


@dataclass(frozen=True)
class Sighting:
    """One inspection's look at one drop (`record` None: that inspection has no image of it)."""

    inspection: Inspection
    day: int
    record: DropRecord | None

    @property
    def label(self) -> str | None:
        """The call that counts: the team's verdict, else the bot's; None when there is none."""
        return (self.record.team_label or self.record.label) if self.record else None


def no_call_text(sighting: Sighting) -> str:
    """Why an inspection has no call for a drop: no image of it, an image it could not read, or a model
    call that failed."""
    if sighting.record is None:
        return "not imaged"
    return "could not be read" if sighting.record.unreadable else "not classified"


@dataclass(frozen=True)
class HitSince:
    """Since when a drop has been crystals, up to an inspection."""

    since: Sighting  # the first inspection of the run of crystals
    inspections: int  # inspections in a row (that saw the drop) with crystals
    before: Sighting | None  # the last inspection before the run that saw the drop, if any


@dataclass(frozen=True)
class InspectionRow:
    """One inspection in a plate's timeline."""

    inspection: Inspection
    day: int
    counts: Mapping[str, int]  # calls per category
    hits: frozenset[Position]
    new_hits: frozenset[Position]  # crystals now, not at the inspection before (none for the first)


def inspection_dating(name: str, image_paths: Sequence[str], uploaded_at: float, now: float,
                      name_source: str = "zip") -> Dating:
    """When an inspection was imaged: the first date in `name` (the zip's name, or the message's text:
    `name_source`); else the date most of the images' names carry, at the earliest time of day they
    give it; else `uploaded_at`. A date in the future (beyond a day's slack for time zones) is a
    misreading, not believed."""
    latest = now + DAY_SECONDS
    named = [moment for moment in map(_as_utc, stamp_times(name)) if moment <= latest]
    if named:
        return Dating(named[0], name_source)
    taken = [moment for moment in map(_image_time, image_paths) if moment is not None and moment <= latest]
    if taken:
        common_day = Counter(_day(moment) for moment in taken).most_common(1)[0][0]
        return Dating(min(moment for moment in taken if _day(moment) == common_day), "images")
    return Dating(uploaded_at, "upload")


def day_number(first: float, moment: float) -> int:
    """Calendar days from the plate's first inspection (day 0) to `moment`."""
    return (_day(moment) - _day(first)).days


def date_text(moment: float) -> str:
    return _day(moment).isoformat()


def when_text(inspection: Inspection) -> str:
    """`2026-12-01 09:30` as its names say (the time of day only when they give one), or the upload
    time in UTC."""
    moment = datetime.fromtimestamp(inspection.taken_at, timezone.utc)
    if inspection.dated_from in ("", "upload"):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M" if (moment.hour, moment.minute) != (0, 0) else "%Y-%m-%d")


def in_date_order(inspections: Iterable[Inspection]) -> list[Inspection]:
    """By when they were imaged (uploaded, for old ones), then in the order they came."""
    return sorted(inspections, key=lambda inspection: (inspection.taken_at, inspection.id))


def sightings(inspections: Sequence[Inspection], records: Iterable[DropRecord]) -> list[Sighting]:
    """One drop's sighting at each of a plate's inspections (in date order), with its day."""
    by_inspection = {record.inspection_id: record for record in records}
    first = inspections[0].taken_at if inspections else 0.0
    return [Sighting(inspection, day_number(first, inspection.taken_at), by_inspection.get(inspection.id))
            for inspection in inspections]


def hit_since(drop_sightings: Sequence[Sighting], inspection_id: int, *, hits: Collection[str]) -> HitSince | None:
    """Since when the drop has been a hit (a label of `hits`: crystals, or with a lab's own categories
    any of its hit categories) at inspection `inspection_id`, or None if it is no hit there, or if that is
    the plate's first inspection (nothing to tell yet)."""
    upto = next((n for n, s in enumerate(drop_sightings) if s.inspection.id == inspection_id), None)
    if not upto or drop_sightings[upto].label not in hits:
        return None
    run = [drop_sightings[upto]]
    before = None
    for sighting in reversed(drop_sightings[:upto]):
        if sighting.label in hits:
            run.append(sighting)
        elif sighting.label is not None:
            before = sighting
            break
    return HitSince(run[-1], len(run), before)


def since_text(since: HitSince) -> str:
    """`Crystals since *2026-11-28, day 4*: 3 inspections in a row (before: clear on day 0).`"""
    start = f"Crystals since *{date_text(since.since.inspection.taken_at)}, day {since.since.day}*"
    run = "new at this inspection" if since.inspections == 1 else f"{since.inspections} inspections in a row"
    if since.before is None and since.inspections == 1:
        return f"{start}: {run} (the first time this drop was imaged)."
    if since.before is None:
        return f"{start}: {run}."
    return f"{start}: {run} (before: {since.before.label} on day {since.before.day})."


def timeline(inspections: Sequence[Inspection], counts: Mapping[int, Mapping[str, int]],
             hits: Mapping[int, Iterable[Position]]) -> list[InspectionRow]:
    """A plate's inspections in date order, each with its counts, its hits and its new hits."""
    rows: list[InspectionRow] = []
    ordered = in_date_order(inspections)
    first = ordered[0].taken_at if ordered else 0.0
    previous: frozenset[Position] | None = None
    for inspection in ordered:
        now = frozenset(hits.get(inspection.id, ()))
        rows.append(InspectionRow(inspection, day_number(first, inspection.taken_at), counts.get(inspection.id, {}),
                                  now, now - previous if previous is not None else frozenset()))
        previous = now
    return rows


def asks_for_history(text: str) -> bool:
    """Does a message ask to see wells over time ("show D7 over time", "D7's history", "B3 across
    inspections")? It must name a well (of any plate up to 1536 wells): "what is the plate's progress?"
    is a question for the model."""
    return bool(_ASKS_FOR_HISTORY.search(text)) and bool(wells_in_text(text, max(PLATE_SHAPES)))


def _image_time(path: str) -> float | None:
    """When an image's name says it was taken: an HWI name's date, else the first date in its path."""
    hwi = parse_hwi_name(path)
    if hwi:
        return _as_utc(datetime(hwi.imaged.year, hwi.imaged.month, hwi.imaged.day))
    times = stamp_times(path)
    return _as_utc(times[0]) if times else None


def _as_utc(moment: datetime) -> float:
    return moment.replace(tzinfo=timezone.utc).timestamp()


def _day(moment: float) -> date:
    return datetime.fromtimestamp(moment, timezone.utc).date()
