"""The store's queries for a plate's history: its inspections by date, one drop's image at each of
them, every drop's call per inspection. A mixin of `Store` (bot/store/base.py).

A plate image job keeps its well and drop in its JSON payload; `payload_field` reads one of them in
SQL (SQLite's json_extract here, PostgreSQL's ->> in PostgresStore), so a drop's history is found by
the database among the plate's jobs instead of reading every payload in Python.

An image whose upload was deleted in Slack is shared nowhere (bot/store/privacy.py): it is left out
here, as if that inspection had not imaged it, and an inspection with no image left is left out.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable

from bot.plates.history import Dating, DropRecord
from bot.plates.wells import Position, Well, parse_well

if TYPE_CHECKING:
    from bot.models import Inspection
    from bot.store.base import Store

_CALL_THAT_COUNTS = "COALESCE(feedback.label, calls.label)"  # the team's latest verdict, else the bot's call
_LATEST_VERDICT = "LEFT JOIN feedback ON feedback.id = (SELECT MAX(id) FROM feedback WHERE feedback.job_id = jobs.id)"
_LIVE_JOB = "jobs.id NOT IN (SELECT job_id FROM deleted_jobs)"  # its upload was not deleted
_LIVE_INSPECTION = (f"EXISTS (SELECT 1 FROM jobs WHERE jobs.inspection_id = inspections.id"
                    f" AND jobs.kind = 'plate_image' AND {_LIVE_JOB})")


class HistoryQueries:
    payload_field = "json_extract(jobs.payload, '$.{key}')"  # a plate image job's well or drop, as SQL

    def date_inspection(self: Store, inspection_id: int, dating: Dating) -> None:
        """Record when an inspection was imaged and what said so."""
        with self._transaction() as db:
            db.run("UPDATE inspections SET imaged_at = ?, dated_from = ? WHERE id = ?",
                   dating.at, dating.source, inspection_id)

    def save_gallery_files(self: Store, inspection_id: int, file_ids: Iterable[str]) -> None:
        """The gallery now in the thread (its sheets' Slack file ids), to delete when a retry replaces it."""
        with self._transaction() as db:
            db.run("UPDATE inspections SET gallery_file_ids = ? WHERE id = ?", " ".join(file_ids), inspection_id)

    def plate_inspections(self: Store, inspection: Inspection) -> list[Inspection]:
        """The finished inspections of `inspection`'s plate in its channel, and `inspection` itself
        (finished or not), in the order they came; `bot.plates.history.in_date_order` sorts them by date."""
        rows = self._rows("SELECT id FROM inspections WHERE channel = ? AND plate = ?"
                          f" AND (id = ? OR finished_at IS NOT NULL AND {_LIVE_INSPECTION}) ORDER BY id",
                          inspection.channel, inspection.plate, inspection.id)
        return [found for row in rows if (found := self.inspection(row["id"]))]

    def latest_plate_inspection(self: Store, channel: str, plate: str) -> Inspection | None:
        """The latest finished inspection of a plate in a channel, by the plate's name in any case."""
        rows = self._rows("SELECT id FROM inspections WHERE channel = ? AND plate = ? AND finished_at IS NOT NULL"
                          f" AND {_LIVE_INSPECTION} ORDER BY id DESC LIMIT 1", channel, plate.casefold())
        return self.inspection(rows[0]["id"]) if rows else None

    def channel_plate_names(self: Store, channel: str) -> list[str]:
        """The plates inspected in a channel, latest first, each by the name it was last given."""
        rows = self._rows("SELECT plate, plate_name FROM inspections WHERE channel = ? AND finished_at IS NOT NULL"
                          f" AND {_LIVE_INSPECTION} ORDER BY id DESC", channel)
        names: dict[str, str] = {}
        for row in rows:
            names.setdefault(row["plate"], row["plate_name"])
        return list(names.values())

    def well_records(self: Store, inspection_ids: Iterable[int], well: Well) -> list[DropRecord]:
        """What each of these inspections' images of a well's drops became: the call, the team's latest
        verdict, and whether the image's bytes are still kept."""
        ids = list(inspection_ids)
        well_field, drop_field = self.drop_fields()
        rows = self._rows(
            f"SELECT jobs.id, jobs.inspection_id, jobs.payload, {drop_field} AS drop_number, calls.label,"
            " calls.confidence, calls.image_sha256, feedback.label AS team_label,"
            " CASE WHEN length(images.jpeg) > 0 THEN 1 ELSE 0 END AS kept"
            " FROM jobs LEFT JOIN calls ON calls.id = jobs.call_id"
            f" LEFT JOIN images ON images.sha256 = calls.image_sha256 {_LATEST_VERDICT}"
            f" WHERE jobs.kind = 'plate_image' AND jobs.inspection_id IN ({_marks(ids)}) AND {well_field} = ?"
            f" AND {_LIVE_JOB} ORDER BY jobs.id", *ids, str(well)) if ids else []
        return [DropRecord(row["inspection_id"], row["id"], row["drop_number"], row["label"], row["confidence"],
                           row["team_label"], row["image_sha256"], bool(row["kept"]), _unreadable(row["payload"]))
                for row in rows]

    def plate_calls(self: Store, inspection_ids: Iterable[int]) -> list[tuple[int, Position, str]]:
        """(inspection id, drop, call) of every drop these inspections classified; the team's latest
        verdict counts where there is one."""
        ids = list(inspection_ids)
        well_field, drop_field = self.drop_fields()
        rows = self._rows(
            f"SELECT jobs.inspection_id, {well_field} AS well, {drop_field} AS drop_number,"
            f" {_CALL_THAT_COUNTS} AS label FROM jobs JOIN calls ON calls.id = jobs.call_id {_LATEST_VERDICT}"
            f" WHERE jobs.kind = 'plate_image' AND jobs.state = 'done' AND jobs.inspection_id IN ({_marks(ids)})"
            f" AND {well_field} IS NOT NULL AND {_LIVE_JOB}", *ids) if ids else []
        return [(row["inspection_id"], Position(well, row["drop_number"]), row["label"])
                for row in rows if (well := parse_well(row["well"]))]

    def drop_fields(self) -> tuple[str, str]:
        """SQL for a plate image job's well (text, `D7`) and drop (a number)."""
        return self.payload_field.format(key="well"), f"CAST({self.payload_field.format(key='drop')} AS INTEGER)"


def _marks(ids: list[int]) -> str:
    return ",".join("?" * len(ids))


def _unreadable(payload: str) -> bool:
    """The plate job notes in an image job's payload why an image could not be read (bot/plates/retry.py)."""
    return "error" in json.loads(payload)
