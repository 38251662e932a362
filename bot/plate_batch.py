"""A plate that can wait, sent through OpenAI's Batch API (half the price, results within 24 h). Pure.

Whether an upload asks for it (PLATE_BATCH, or the word `batch` in its message), how the plate's
requests are cut into batches (one line per image, its custom_id the image job's id; a batch's input
file stays well under OpenAI's 200 MB), the progress line while they are queued, and what a batch
answered for each image: a call (priced at the batch rate), or why there is none. An image without a
call is "not classified" in the summary, and Retry failed wells classifies it directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence

from bot.batch import BatchOutput, read_batch_output
from bot.models import Call
from bot.pricing import PriceTable
from bot.render import escape

BATCH_WORD = re.compile(r"(?<![\w-])batch(?![\w-])", re.IGNORECASE)
MAX_BATCH_BYTES = 50 * 1024 * 1024  # of one batch's input file (OpenAI takes up to 200 MB)
HOLD_SECONDS = 7 * 24 * 3600.0  # a batch plate's images wait at most this long; the batch job frees them sooner
RUNNING = "queued at OpenAI (Batch API, half price)"

_MISSING = {
    "expired": "OpenAI's batch expired (24 h) before this image was answered.",
    "cancelled": "OpenAI's batch was cancelled before this image was answered.",
    "completed": "OpenAI's batch returned no answer for this image.",
}


def batch_requested(text: str) -> bool:
    """Whether an upload's message asks for the Batch API: the word `batch` (`plate42 batch`)."""
    return bool(BATCH_WORD.search(text))


def without_batch_word(text: str) -> str:
    """The message without the word `batch`, for naming the plate (`plate42 batch` -> `plate42`)."""
    return " ".join(BATCH_WORD.sub(" ", text).split())


def chunks(lines: Iterable[tuple[int, str]], max_bytes: int = MAX_BATCH_BYTES) -> Iterator[list[tuple[int, str]]]:
    """(image job id, request line) cut into batches of at most `max_bytes` (one line each at least), in
    order; read lazily, so only one batch's lines are in memory at a time."""
    batch: list[tuple[int, str]] = []
    size = 0
    for job_id, line in lines:
        length = len(line.encode()) + 1
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append((job_id, line))
        size += length
    if batch:
        yield batch


def queued_text(plate: str, classified: int, total: int, queued: int, sent_at: float) -> str:
    """The progress line while a plate's images are at OpenAI: when they were sent (in each reader's
    time zone) and when to expect them."""
    when = f"<!date^{int(sent_at)}^{{date_short_pretty}} at {{time}}|{_utc(sent_at)}>"
    done = f"{classified} of {total} classified · " if classified else ""
    images = f"{queued} image{'' if queued == 1 else 's'}"
    return (f"Plate {escape(plate)}: {done}{images} {RUNNING} since {when}. The results come within 24 h; "
            "I post them here.")


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class BatchAnswer:
    """What a batch gave for one image: a call, or why there is none (for the summary)."""

    call: Call | None
    error: str | None


def batch_answers(output: BatchOutput, job_ids: Sequence[int], model: str, labels: Sequence[str],
                  prices: PriceTable, schema: dict[str, Any] | None) -> dict[int, BatchAnswer]:
    """Each image job's answer in an ended batch (its output and error files). A call is named after
    `model` (the answer names a dated snapshot), so later uploads find it in the cache."""
    text = "\n".join(part for part in (output.text, output.errors) if part)
    results = {result.custom_id: result for result in read_batch_output(text, labels, prices, schema)}
    answers = {}
    for job_id in job_ids:
        result = results.get(str(job_id))
        if result is not None and result.call is not None:
            answers[job_id] = BatchAnswer(replace(result.call, model=model), None)
        elif result is not None:
            answers[job_id] = BatchAnswer(None, f"OpenAI's batch could not answer it: {result.error}")
        else:
            answers[job_id] = BatchAnswer(None, _missing(output))
    return answers


def _missing(output: BatchOutput) -> str:
    if output.status == "failed":
        return f"OpenAI refused the batch: {(output.failure or 'no reason given').rstrip('.')}."
    return _MISSING.get(output.status, f"OpenAI's batch ended {output.status} without answering this image.")
