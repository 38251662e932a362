"""A plate tried again. Pure.

- *Retry failed wells*: which wells a click classifies again (those whose model call failed; an image
  that could not be read stays as it is, trying again cannot mend a broken file), the button and its
  value (checked as input), and the summary while they are tried again.
- A plate uploaded again: a hit whose call was already posted for the same drop in an earlier
  inspection of the plate is not posted a second time; the summary links to the earlier reply.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.models import Job
from bot.render import Message

RETRY_WELLS_ACTION = "plate_retry_wells"
RETRY_WELLS_LABEL = "Retry failed wells"
MAX_ID_DIGITS = 18  # a database id fits in 63 bits; a longer "id" in a button's value is no id


@dataclass(frozen=True)
class WellsRetry:
    """What a Retry failed wells button names: the inspection, and how many retries it had when the
    button was drawn. A click naming an older round (the second click of a double click, a button of a
    summary since updated) is one already taken."""

    inspection_id: int
    round: int

    @property
    def value(self) -> str:
        return f"{self.inspection_id}:{self.round}"

    def button(self) -> dict[str, Any]:
        return {"type": "actions", "block_id": f"plate-retry-{self.inspection_id}", "elements": [
            {"type": "button", "action_id": RETRY_WELLS_ACTION, "value": self.value,
             "text": {"type": "plain_text", "text": RETRY_WELLS_LABEL}}]}


def parse_wells_retry(value: str) -> WellsRetry | None:
    """A button's value `"<inspection id>:<round>"` -> WellsRetry; None for anything else."""
    parts = value.split(":")
    if len(parts) != 2 or not all(part.isascii() and part.isdecimal() and len(part) <= MAX_ID_DIGITS
                                  for part in parts):
        return None
    return WellsRetry(int(parts[0]), int(parts[1]))


def is_unreadable(image_job: Job) -> bool:
    """A plate image that could not be read or normalised (the plate job noted why in its payload)."""
    return "error" in image_job.payload


def wells_to_retry(image_jobs: list[Job]) -> list[Job]:
    """The inspection's images whose model call failed: ended failed with their image stored."""
    return [job for job in image_jobs if job.kind == "plate_image" and job.state == "failed" and not is_unreadable(job)]


def retrying(summary: Message, wells: int, user_id: str) -> Message:
    """The summary while `wells` wells are tried again: the button gives way to a note (the summary is
    drawn again when they are done)."""
    note = (f":arrows_counterclockwise: Retrying {wells} well{'' if wells == 1 else 's'} (asked by <@{user_id}>): "
            "this summary, the plate map and the CSV are updated when they are done.")
    blocks = [block for block in summary.blocks or [] if not _is_retry_button(block)]
    return Message(summary.text, [*blocks, {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}])


def _is_retry_button(block: dict[str, Any]) -> bool:
    return block.get("type") == "actions" and any(element.get("action_id") == RETRY_WELLS_ACTION
                                                  for element in block.get("elements", []))


def same_drop(one: Job, other: Job) -> bool:
    """Two plate image jobs of the same well and drop (images without a well are never the same drop)."""
    return bool(one.payload.get("well")) and all(one.payload.get(key) == other.payload.get(key)
                                                 for key in ("well", "drop"))
