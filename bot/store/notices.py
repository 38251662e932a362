"""What the service notices and `/crystals status` ask the store (bot/slack/service_notices.py,
bot/slack/status.py): a mixin of Store.

- `check_again(job_id, delay, note)`: a job that looks again later (a notice while its upload waits) goes back
  to the queue without spending an attempt; `note` (kept in jobs.error) is what it last showed.
- `settle_service_notice(channel, message_ts)`: the upload's (or question's) calls are all answered: its notice
  job ends now if it was never posted (and is not at work), else it is due now (to delete its post).
- `rearm_service_notice(channel, message_ts)`: Retry was pressed: the upload's next wait gets a new notice.
- `upload_inspections(channel, message_ts)`: the plate inspections of an upload.
- `model_queue(now)`: the open images (loose and a plate's) and questions by state: waiting for the service
  (its reason), being worked on, due, or due later (bot/status.py's QUEUE_STATES).
"""
from __future__ import annotations

import time
from typing import Any

from bot.status import IMAGES, LATER, QUESTIONS, QUEUED, RUNNING

NOTICE_KIND = "service_notice"
NOTICE_KEY = "service-notice"  # its jobs.file_id: one per upload (or question) message


class NoticeQueries:
    _transaction: Any
    _rows: Any

    def check_again(self, job_id: int, delay: float, note: str) -> None:
        now = time.time()
        with self._transaction() as db:
            db.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL, run_after = ?, error = ?, updated_at = ?,"
                   " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = ?",
                   now + delay, note, now, job_id)

    def settle_service_notice(self, channel: str, message_ts: str) -> bool:
        """True if a posted notice is due now."""
        now = time.time()
        mine = ("kind = ? AND channel = ? AND message_ts = ? AND file_id = ? AND state NOT IN ('done', 'failed')")
        with self._transaction() as db:
            db.run(f"UPDATE jobs SET state = 'done', updated_at = ? WHERE {mine} AND reply_ts IS NULL"
                   " AND (claimed_by IS NULL OR lease_until < ?)", now, NOTICE_KIND, channel, message_ts, NOTICE_KEY, now)
            return db.run(f"UPDATE jobs SET run_after = ? WHERE {mine} AND run_after > ?",
                          now, NOTICE_KIND, channel, message_ts, NOTICE_KEY, now) > 0

    def rearm_service_notice(self, channel: str, message_ts: str) -> None:
        """Retry was pressed on the upload: a notice of it that has ended is set aside (kept, under a key of its
        own), so the upload's next wait for the service gets a new one."""
        with self._transaction() as db:
            db.run("UPDATE jobs SET file_id = file_id || ':' || CAST(id AS TEXT), updated_at = ?"
                   " WHERE kind = ? AND channel = ? AND message_ts = ? AND file_id = ? AND state IN ('done', 'failed')",
                   time.time(), NOTICE_KIND, channel, message_ts, NOTICE_KEY)

    def upload_inspections(self, channel: str, message_ts: str) -> list[int]:
        rows = self._rows("SELECT id FROM inspections WHERE channel = ? AND message_ts = ? ORDER BY id",
                          channel, message_ts)
        return [row["id"] for row in rows]

    def model_queue(self, now: float | None = None) -> dict[tuple[str, str], int]:
        now = time.time() if now is None else now
        rows = self._rows(
            f"SELECT CASE WHEN kind = 'question' THEN '{QUESTIONS}' ELSE '{IMAGES}' END AS what,"
            " CASE WHEN waiting IS NOT NULL AND call_id IS NULL THEN waiting"
            f" WHEN claimed_by IS NOT NULL AND lease_until > ? THEN '{RUNNING}'"
            f" WHEN run_after > ? THEN '{LATER}' ELSE '{QUEUED}' END AS status, COUNT(*) AS jobs"
            " FROM jobs WHERE kind IN ('image', 'plate_image', 'question') AND state NOT IN ('done', 'failed')"
            " GROUP BY 1, 2", now, now)
        return {(row["what"], row["status"]): row["jobs"] for row in rows}
