"""The values that travel through the bot: a normalised image, a call (the bot's verdict on it), a Slack
job, the team's feedback. Plain records: the store makes them, the renderers read them."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Image:
    """An image ready for the model: 8-bit RGB, upright, scaled, re-encoded as JPEG."""

    name: str
    sha256: str  # of the original bytes, so the same upload always finds its cached call
    jpeg: bytes
    width: int
    height: int
    source_format: str  # what the original was, e.g. "TIFF"

    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Call:
    """One classification of one image."""

    label: str
    confidence: float | None  # None when the answer carried none (e.g. an old batch file)
    confidence_source: str  # "logprobs" (the label's token probability), "model" (its own estimate) or "none"
    observations: str
    explanation: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None  # None when the model is not in the price table
    id: int | None = None  # row id once stored
    from_cache: bool = False


@dataclass(frozen=True)
class Job:
    """One unit of work in the durable queue: an image to classify, a question, a click, an outcome."""

    id: int
    kind: str  # "image", "question", "feedback", "outcome", "plate", "plate_image", "plate_summary", "history", ...
    channel: str
    message_ts: str
    thread_ts: str  # where the bot answers: the message itself, or the thread it was posted in
    file_id: str  # the file's id for an image; a key that makes the job unique in its message otherwise
    file_name: str
    user_id: str
    state: str  # received, downloaded, classified, replied, then done or failed
    error: str | None
    call_id: int | None
    reply_ts: str | None
    attempts: int  # how often a worker has taken it
    payload: dict[str, Any] = field(default_factory=dict)  # what the job needs to run (the file record, ...)
    inspection_id: int | None = None  # the plate inspection a plate job, or a plate's image, belongs to
    run_after: float = 0.0  # not taken before this time
    waiting: str | None = None  # what it waits for ("rate_limit", "outage"), until it ends
    waiting_since: float | None = None  # since when it waits for that


@dataclass(frozen=True)
class Waiting:
    """Jobs of an upload or a plate that wait for the model service, for one reason."""

    reason: str  # "rate_limit" or "outage"
    jobs: int
    since: float  # the earliest of them started waiting then
    until: float  # the last of them is due then (the rate limit's estimate; the next probe in an outage)


@dataclass(frozen=True)
class Inspection:
    """One look at a plate: a zip, or a message of images named by well, posted in a channel."""

    id: int
    channel: str
    plate: str  # the plate's name casefolded: the same plate imaged again has the same one
    plate_name: str  # as the lab wrote it
    message_ts: str
    thread_ts: str
    source: str  # the zip's name, or "" for images posted in a message
    user_id: str
    images: int  # how many images it has to classify
    skipped: dict[str, int]  # members of the zip not classified, by why
    progress_ts: str | None  # the progress message
    uploaded: bool  # the plate map and the CSV are in the thread
    map_file_id: str | None  # the plate map's Slack file id (None before it is uploaded, or if uploaded before ids were kept)
    created_at: float
    finished_at: float | None
    imaged_at: float | None = None  # when it was imaged (bot/plates/history.py); None before that was kept
    dated_from: str = ""  # what told when: "zip", "message", "images" (their names) or "upload" (the upload time)

    @property
    def taken_at(self) -> float:
        """When it was imaged, or, for an inspection recorded before that was kept, when it was uploaded."""
        return self.imaged_at if self.imaged_at is not None else float(self.message_ts)


@dataclass(frozen=True)
class PlateBatch:
    """One Batch API run of a plate inspection's images."""

    batch_id: str
    model: str
    fingerprint: str  # of the prompt the requests were made with
    entries: dict[str, Any]  # custom_id (the image job's id) -> the image's sha256
    submitted_at: float
    collected: bool  # its answers are stored


@dataclass(frozen=True)
class Feedback:
    user_id: str
    verdict: str  # "confirmed" or "corrected"
    label: str  # the label the person says is right


@dataclass(frozen=True)
class ReviewedCall:
    """A call the team gave a verdict on, with the latest verdict (the team may change its mind)."""

    job_id: int
    file_name: str
    channel: str
    call: Call
    feedback: Feedback


@dataclass(frozen=True)
class TeamExample:
    """A few-shot example the team added from a reviewed call in Slack (its image bytes are loaded
    separately, only for the examples a prompt uses)."""

    id: int
    label: str
    explanation: str
    file_name: str
    channel: str
    link: str  # to the call's reply in its thread
    added_by: str
    added_at: float


@dataclass(frozen=True)
class SavedScreen:
    """A screen the lab added (its conditions are loaded separately, by well)."""

    id: int
    name: str
    file_name: str
    kind: str  # what file it was read from: an HWI cocktail list, or a well and condition table
    layout: int  # wells of the plate it fills (24, 96, 384 or 1536)
    wells: int  # how many wells have a condition
    channel: str  # where it was added
    added_by: str
    added_at: float


@dataclass(frozen=True)
class ChannelStats:
    calls_by_label: dict[str, int]
    failed: int
    confirmed: int
    corrected: int


@dataclass(frozen=True)
class MonthSpend:
    """The estimated model spend of one calendar month (UTC), in US dollars."""

    month: str  # "2026-11"
    total_usd: float
    by_channel: dict[str, float]
    budget_usd: float | None  # MONTHLY_BUDGET_USD, None when there is none
    others_usd: float = 0.0  # spent in channels the person looking is not in (their names left out)


@dataclass(frozen=True)
class HitSharing:
    """Whether a private channel's crystal hits go to the hits channel, and who said so when."""

    channel: str
    shared: bool
    user_id: str
    changed_at: float


@dataclass(frozen=True)
class HomeChart:
    """The Home tab's chart as last shared with one person."""

    png_sha256: str
    file_id: str  # the Slack file in the person's direct messages with the bot
    drawn_at: float  # the moment up to which it counts calls (bot/dashboard.py: chart_moment)
