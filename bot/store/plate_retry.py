"""The store's queries for plates tried again (bot/slack/plate_retry.py): the retry rounds of an inspection,
its summary job, its map and CSV in the thread, whether an upload still has failures, and hits answered
in an earlier inspection of the plate. A mixin of `Store` (it uses `_rows`, `_transaction`, `job` and
`inspection`); SQL for both databases.
"""
from __future__ import annotations

from typing import Any

from bot.models import Inspection, Job
from bot.plates.retry import same_drop

_ENDED = "('done', 'failed')"


class PlateRetryQueries:
    _rows: Any
    _transaction: Any
    job: Any
    inspection: Any

    def retry_rounds(self, inspection_id: int) -> int:
        """How many times Retry failed wells was taken up for this inspection."""
        return self._rows("SELECT COUNT(*) AS n FROM jobs WHERE inspection_id = ? AND kind = 'plate_retry'",
                          inspection_id)[0]["n"]

    def summary_job(self, inspection_id: int) -> Job | None:
        """The job that posted (and updates) the inspection's summary, once there is one."""
        rows = self._rows("SELECT id FROM jobs WHERE inspection_id = ? AND kind = 'plate_summary'", inspection_id)
        return self.job(rows[0]["id"]) if rows else None

    def upload_has_failures(self, channel: str, message_ts: str) -> bool:
        """Whether any image, plate or plate image of an upload ended failed (its :warning: stays)."""
        return bool(self._rows("SELECT 1 AS x FROM jobs WHERE channel = ? AND message_ts = ? AND state = 'failed'"
                               " AND kind IN ('image', 'plate', 'plate_image') LIMIT 1", channel, message_ts))

    # --- the plate map and the CSV in the thread ---------------------------------------------------

    def save_plate_files(self, inspection_id: int, map_file_id: str, csv_file_id: str) -> None:
        """The map and the CSV now in the thread (they show the plate as it is)."""
        with self._transaction() as db:
            db.run("UPDATE inspections SET uploaded = ?, csv_file_id = ?, files_stale = 0 WHERE id = ?",
                   map_file_id, csv_file_id, inspection_id)

    def mark_plate_files_stale(self, inspection_id: int) -> None:
        """Wells are tried again: the next summary replaces the map and the CSV."""
        with self._transaction() as db:
            db.run("UPDATE inspections SET files_stale = 1 WHERE id = ?", inspection_id)

    def stale_plate_files(self, inspection_id: int) -> list[str] | None:
        """The ids of the map, CSV and gallery a retry made out of date (those known; maybe none), or None
        when the files in the thread are up to date."""
        rows = self._rows("SELECT uploaded, csv_file_id, gallery_file_ids, files_stale FROM inspections WHERE id = ?",
                          inspection_id)
        if not rows or not rows[0]["files_stale"]:
            return None
        return [file_id for file_id in (rows[0]["uploaded"], rows[0]["csv_file_id"], *rows[0]["gallery_file_ids"].split())
                if file_id and file_id != "1"]

    # --- hits answered in an earlier inspection of the plate ---------------------------------------

    def earlier_replies(self, inspection_id: int, job_id: int | None = None) -> dict[int, Job]:
        """The inspection's classified images (or only `job_id`) whose call was already posted for the same
        drop in an earlier inspection of the plate in the channel: image job id -> the job with that reply
        (the first one posted)."""
        only = " AND later.id = ?" if job_id is not None else ""
        rows = self._rows(
            "SELECT later.id AS later_id, earlier.id AS earlier_id FROM jobs later"
            " JOIN inspections ins ON ins.id = later.inspection_id"
            " JOIN jobs earlier ON earlier.call_id = later.call_id AND earlier.kind = 'plate_image'"
            " AND earlier.reply_ts IS NOT NULL"
            " JOIN inspections prev ON prev.id = earlier.inspection_id AND prev.channel = ins.channel"
            " AND prev.plate = ins.plate AND prev.id < ins.id"
            f" WHERE later.inspection_id = ? AND later.kind = 'plate_image' AND later.reply_ts IS NULL{only}"
            " ORDER BY earlier.id", inspection_id, *(() if job_id is None else (job_id,)))
        found: dict[int, Job] = {}
        for row in rows:
            later, earlier = self.job(row["later_id"]), self.job(row["earlier_id"])
            if row["later_id"] not in found and later and earlier and same_drop(later, earlier):
                found[row["later_id"]] = earlier
        return found

    def inspections_reusing(self, image_job: Job) -> list[Inspection]:
        """The later inspections of the plate that link to this image job's reply instead of posting their
        own (their hits channel message shows the team's verdict on it too)."""
        rows = self._rows(
            "SELECT later.id AS later_id, later.inspection_id FROM jobs later"
            " JOIN inspections ins ON ins.id = later.inspection_id"
            " JOIN inspections prev ON prev.id = ? AND prev.channel = ins.channel AND prev.plate = ins.plate"
            " AND prev.id < ins.id"
            " WHERE later.call_id = ? AND later.kind = 'plate_image' AND later.reply_ts IS NULL"
            f" AND later.state IN {_ENDED} ORDER BY later.inspection_id",
            image_job.inspection_id, image_job.call_id)
        reusing = {row["inspection_id"] for row in rows
                   if (earlier := self.earlier_replies(row["inspection_id"], row["later_id"]).get(row["later_id"]))
                   and earlier.id == image_job.id}
        return [inspection for inspection_id in sorted(reusing) if (inspection := self.inspection(inspection_id))]
