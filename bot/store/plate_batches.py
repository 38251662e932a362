"""The store's queries for plates sent through the Batch API (bot/slack/plate_batch.py): the plate's
batches, its images held back until their answers are in, and a poll that waits without using up an
attempt. A mixin of `Store` (it uses `_rows`, `_transaction` and `save_batch`); SQL for both databases.
"""
from __future__ import annotations

import json
import time
from typing import Any, Sequence

from bot.models import PlateBatch


class PlateBatchQueries:
    _rows: Any
    _transaction: Any
    save_batch: Any

    def save_plate_batch(self, inspection_id: int, batch_id: str, model: str, fingerprint: str,
                         entries: dict[str, Any]) -> float:
        """A batch of the plate's images, sent now; returns when."""
        self.save_batch(batch_id, model, fingerprint, entries)
        now = time.time()
        with self._transaction() as db:
            db.run("INSERT INTO plate_batches (inspection_id, batch_id, submitted_at) VALUES (?,?,?)",
                   inspection_id, batch_id, now)
        return now

    def plate_batches(self, inspection_id: int) -> list[PlateBatch]:
        """The inspection's batches, in the order they were sent."""
        rows = self._rows("SELECT plate_batches.batch_id, plate_batches.submitted_at, plate_batches.collected_at,"
                          " batches.model, batches.fingerprint, batches.entries FROM plate_batches"
                          " JOIN batches ON batches.id = plate_batches.batch_id"
                          " WHERE plate_batches.inspection_id = ? ORDER BY plate_batches.id", inspection_id)
        return [PlateBatch(row["batch_id"], row["model"], row["fingerprint"], json.loads(row["entries"]),
                           float(row["submitted_at"]), row["collected_at"] is not None) for row in rows]

    def collected_plate_batch(self, batch_id: str) -> None:
        """A batch's answers are stored."""
        with self._transaction() as db:
            db.run("UPDATE plate_batches SET collected_at = ? WHERE batch_id = ?", time.time(), batch_id)

    def release_jobs(self, job_ids: Sequence[int]) -> None:
        """Jobs held back (queued to run later) become due now."""
        if not job_ids:
            return
        marks = ",".join("?" * len(job_ids))
        with self._transaction() as db:
            db.run(f"UPDATE jobs SET run_after = 0, updated_at = ? WHERE id IN ({marks})"
                   " AND state NOT IN ('done', 'failed')", time.time(), *job_ids)

    def poll_later(self, job_id: int, delay: float) -> None:
        """Put a running job back, due after `delay` seconds, without using up an attempt: waiting for
        answers that are on their way is no failure."""
        with self._transaction() as db:
            db.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL, run_after = ?, attempts = 0, updated_at = ?"
                   " WHERE id = ?", time.time() + delay, time.time(), job_id)
