"""A plate inspection's messages and files: the progress line, the summary (Slack text and Block Kit
blocks within Slack's limits), the CSV of every call, the plate map's view, and the one message that
shares the plate's hits in the hits channel. Pure.

The summary leads with what a lab waits for: the counts, the changes since the last inspection (new
hits first), then the crystal hits by well in plate order. The map and the CSV hold everything else.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from bot.models import Call, Feedback, Job
from bot.plates.archive import Skip
from bot.categories import hits_present, is_hit, several_hits
from bot.plates.compare import Change, Comparison
from bot.plates.platemap import PlateView
from bot.plates.retry import RETRY_WELLS_LABEL, WellsRetry, is_unreadable
from bot.plates.wells import Position, parse_well
from bot.prompt import Category, find_category
from bot.screens.chemistry import PlateConditions
from bot.screens.messages import hit_condition, screen_summary
from bot.render import (MESSAGE_LIMIT, SECTION_LIMIT, Blocks, Message, clip, code, escape, feedback_line, feedback_menu,
                        one_line, percent)

MAX_HIT_LINES = 60  # more hits than this: the rest are in the map and the CSV
MAX_LISTED = 40  # wells per change list, unreadable images, images without a well
EXPLANATION_CHARS = 200
MAX_SHARED_HITS = 20  # wells listed in the hits channel's message; the thread has them all
SHARED_EXPLANATION_CHARS = 120
CSV_COLUMNS = ("well", "drop", "file", "category", "confidence", "explanation", "model", "error", "condition")


@dataclass(frozen=True)
class PlateImage:
    """One image of an inspection and what became of it: a call, or why there is none."""

    file: str  # path inside the zip, or the uploaded file's name
    position: Position | None  # None: no well in its name
    call: Call | None = None
    error: str | None = None
    unreadable: bool = False  # no call because the image could not be read (else: its model call failed)


@dataclass(frozen=True)
class SharedPlate:
    """A plate inspection as the hits channel shows it."""

    plate: str
    user_id: str  # who uploaded it
    channel: str  # where
    thread_link: str
    map_file_id: str | None  # the plate map in the thread (None: no picture)
    images: Sequence[PlateImage]
    reply_links: Mapping[str, str]  # an image's file -> the link to its reply in the thread
    verdicts: Mapping[str, Feedback]  # an image's file -> the team's latest verdict on it
    job_ids: Mapping[str, int]  # an image's file -> its job (the value of its Confirm / Correct menu)
    conditions: PlateConditions | None = None  # the plate's screen, when it has one


def position_payload(position: Position | None) -> dict[str, Any]:
    """A position as a plate image job's payload keeps it."""
    return {"well": str(position.well), "drop": position.drop} if position else {"well": None, "drop": None}


def payload_position(payload: Mapping[str, Any]) -> Position | None:
    """The position a plate image job's payload keeps (None: no well in the image's name)."""
    well = parse_well(payload["well"]) if payload.get("well") else None
    return Position(well, payload["drop"]) if well else None


def plate_image(job: Job, call: Call | None) -> PlateImage:
    """A plate image's job (payload: path, well, drop) and its call -> what the summary, map and CSV show."""
    position = payload_position(job.payload)
    if job.state == "done" and call is not None:
        return PlateImage(job.payload["path"], position, call)
    return PlateImage(job.payload["path"], position, None, job.error or "not classified", is_unreadable(job))


def progress_text(plate: str, classified: int, total: int, unreadable: int = 0, not_classified: int = 0) -> str:
    """The one progress message, updated as images finish: "Plate plate42: 37 of 96 classified"."""
    trouble = _trouble(unreadable, not_classified)
    return f"Plate {escape(plate)}: {classified} of {total} classified{f' ({trouble})' if trouble else ''}"


def _trouble(unreadable: int, not_classified: int) -> str:
    """`2 not classified, 1 could not be read` (the parts there are), or ""."""
    return ", ".join(part for count, part in ((not_classified, f"{not_classified} not classified"),
                                              (unreadable, f"{unreadable} could not be read")) if count)


def labels_of(images: Iterable[PlateImage]) -> dict[Position, str]:
    """Category by (well, drop), for the comparison and the map."""
    return {image.position: image.call.label for image in images if image.position and image.call}


def image_outcomes(images: Sequence[PlateImage]) -> tuple[int, int, int]:
    """(classified, could not be read, not classified) of an inspection's images."""
    unreadable = sum(1 for image in images if not image.call and image.unreadable)
    classified = sum(1 for image in images if image.call)
    return classified, unreadable, len(images) - classified - unreadable


def not_classified_positions(images: Iterable[PlateImage]) -> frozenset[Position]:
    """The drops imaged but without a call (their model call failed, or the image could not be read)."""
    return frozenset(image.position for image in images if image.position and not image.call)


def plate_view(plate: str, taken: str, images: Sequence[PlateImage], categories: Sequence[Category],
               comparison: Comparison | None = None) -> PlateView:
    """What the plate map shows of this inspection."""
    return PlateView(
        name=plate, taken=taken, labels=labels_of(images),
        unreadable=frozenset(i.position for i in images if i.position and not i.call and i.unreadable),
        not_classified=frozenset(i.position for i in images if i.position and not i.call and not i.unreadable),
        new_hits=frozenset(c.position for c in comparison.new_hits) if comparison else frozenset(),
        categories=tuple(categories),
    )


def with_upload_refused(summary: Message, slack_error: str) -> Message:
    """The summary with a note that Slack refused the plate map and the CSV, and what to do."""
    note = (f":warning: I could not attach the plate map and the CSV: Slack refused the upload "
            f"({code(slack_error)}). An admin should check that the app has the `files:write` scope; then "
            "upload the plate again to get them.")
    return Message(summary.text, [*(summary.blocks or []), {"type": "context", "elements": [
        {"type": "mrkdwn", "text": note}]}])


def summary_message(plate: str, images: Sequence[PlateImage], categories: Sequence[Category],
                    comparison: Comparison | None = None, skipped: Mapping[Skip, int] | None = None, *,
                    retry: WellsRetry | None = None, earlier_replies: Mapping[str, str] | None = None,
                    conditions: PlateConditions | None = None, screen_note: str = "") -> Message:
    """The summary posted when every image is done. `comparison` is None for a plate's first inspection;
    with `retry`, wells whose model call failed get the Retry failed wells button; `earlier_replies` (an
    image's file -> link) are hits answered in an earlier inspection, not posted again; `conditions` (the
    plate's screen) add each hit's condition and what the hits share."""
    one_drop = all(i.position is None or i.position.drop == 1 for i in images)
    hits = hit_images(images, categories)
    new = {c.position for c in comparison.new_hits} if comparison else set()
    not_classified = [i for i in images if not i.call and not i.unreadable]
    parts = [_counts_text(plate, images, categories)]
    if comparison is not None:
        parts.append(_changes_text(comparison, one_drop, several_hits(categories)))
    parts += [_hits_text(hits, new, one_drop, earlier_replies or {}, several_hits(categories), conditions),
              screen_summary(conditions, [_well(i.position) for i in hits if i.position], screen_note),
              _not_classified_text(not_classified, one_drop, retry), _unreadable_text(images), _without_well_text(images)]
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
                      for part in parts if part for chunk in _chunks(part)]
    if skipped:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(_skipped_text(skipped), 2000)}]})
    blocks = blocks[:49 if retry and not_classified else 50]
    if retry and not_classified:
        blocks.append(retry.button())
    text = _notification(plate, len(images), len(hits), len(new)) + (
        f" · {len(not_classified)} not classified" if not_classified else "")
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def hit_images(images: Iterable[PlateImage], categories: Sequence[Category]) -> list[PlateImage]:
    """The images whose call is a hit, in plate order."""
    return sorted((i for i in images if i.call and is_hit(i.call.label, categories)), key=_plate_order)


def hit_emoji(images: Iterable[PlateImage], categories: Sequence[Category]) -> str:
    """The emoji of each hit category among the images (of the first hit category when there is none)."""
    present = hits_present((i.call.label for i in images if i.call), categories)
    return " ".join(c.emoji for c in present or [c for c in categories if c.hit][:1])


def calls_csv(images: Sequence[PlateImage], conditions: PlateConditions | None = None) -> bytes:
    """Every image's call, one row each, wells in plate order, with its well's condition when the plate has
    a screen: UTF-8 with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for image in sorted(images, key=_plate_order):
        call, position = image.call, image.position
        writer.writerow([
            str(position.well) if position else "", position.drop if position else "", image.file,
            call.label if call else "", "" if not call or call.confidence is None else f"{call.confidence:.3f}",
            call.explanation if call else "", call.model if call else "", image.error or "",
            (conditions.short(_well(position)) or "") if conditions and position else "",
        ])
    return buffer.getvalue().encode("utf-8")


def _counts_text(plate: str, images: Sequence[PlateImage], categories: Sequence[Category]) -> str:
    counts = Counter(i.call.label for i in images if i.call)
    names = [c.name for c in categories] + sorted(set(counts) - {c.name for c in categories})
    per_category = " · ".join(f"{find_category(categories, n).emoji} {counts.get(n, 0)} {n}" for n in names)
    trouble = _trouble(*image_outcomes(images)[1:])
    return f"*Plate {escape(plate)}*: {_count(len(images), 'image')}\n{per_category}" + (
        f" · :warning: {trouble}" if trouble else "")


def _changes_text(comparison: Comparison, one_drop: bool, with_category: bool) -> str:
    if not comparison:
        return "*Since the last inspection:* no changes."
    lines = ["*Since the last inspection:*"]
    if comparison.new_hits:
        lines.append(f":new: *{_count(len(comparison.new_hits), 'new hit')}:* "
                     + _listed([f"*{_where(c.position, one_drop)}*{f' {c.after}' if with_category else ''}{_was(c)}"
                                for c in comparison.new_hits]))
    if comparison.lost_hits:
        lines.append(f"*Lost crystals ({len(comparison.lost_hits)}):* "
                     + _listed([f"{_where(c.position, one_drop)} (now {c.after})" for c in comparison.lost_hits]))
    if comparison.other_changes:
        lines.append(f"*Other changes ({len(comparison.other_changes)}):* " + _listed(
            [f"{_where(c.position, one_drop)} {c.before} → {c.after}" for c in comparison.other_changes]))
    if unknown := comparison.hits_not_classified_before:
        lines.append(f"*Crystals where the last inspection has no call ({len(unknown)}):* "
                     + _listed([f"*{_where(c.position, one_drop)}*" for c in unknown]))
    return "\n".join(lines)


def _was(change: Change) -> str:
    return " (not imaged before)" if change.before is None else f" (was {change.before})"


def _well(position: Position | None) -> str | None:
    return str(position.well) if position else None


def _hits_text(hits: Sequence[PlateImage], new: set[Position], one_drop: bool,
               earlier_replies: Mapping[str, str], with_category: bool,
               conditions: PlateConditions | None = None) -> str:
    if not hits:
        return "*No crystal hits.*"
    lines = [f"*Crystal hits ({len(hits)}), by well:*"]
    for image in hits[:MAX_HIT_LINES]:
        assert image.call is not None
        where = f"*{_where(image.position, one_drop)}*" if image.position else code(image.file)
        flag = " :new:" if image.position in new else ""
        explanation = _one_line(image.call.explanation, EXPLANATION_CHARS)
        earlier = f" · <{earlier_replies[image.file]}|answered before>" if image.file in earlier_replies else ""
        condition = hit_condition(_well(image.position), conditions)
        category = f" · {image.call.label}" if with_category else ""
        lines.append(f"• {where}{flag}{category} · {percent(image.call.confidence)}{condition} · "
                     f"{explanation}{earlier}")
    if len(hits) > MAX_HIT_LINES:
        lines.append(f"…and {len(hits) - MAX_HIT_LINES} more: see the plate map and the CSV.")
    return "\n".join(lines)


def plate_hits_message(shared: SharedPlate, categories: Sequence[Category]) -> Message:
    """The one message sharing a plate's crystal hits in the hits channel: who uploaded it where, the hits
    by well (each linked to its reply, with the team's latest verdict), the plate map and the thread."""
    images = shared.images
    one_drop = all(i.position is None or i.position.drop == 1 for i in images)
    hits = hit_images(images, categories)
    origin = f"from <@{shared.user_id}> in <#{shared.channel}>"
    headline = (f"{hit_emoji(hits, categories)} *Plate {escape(shared.plate)}*: "
                f"{_count(len(hits), 'crystal hit')} in {_count(len(images), 'image')} · {origin}")
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(headline, SECTION_LIMIT)}}]
    blocks += [_shared_hit_block(image, shared, one_drop, categories, several_hits(categories))
               for image in hits[:MAX_SHARED_HITS]]
    if len(hits) > MAX_SHARED_HITS:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"…and {len(hits) - MAX_SHARED_HITS} more in the thread."}]})
    if shared.map_file_id:
        name = clip(f"Plate map of {shared.plate}", 2000)
        blocks.append({"type": "image", "slack_file": {"id": shared.map_file_id}, "alt_text": name,
                       "title": {"type": "plain_text", "text": name}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                    "text": f"<{shared.thread_link}|Open the thread>"}]})
    text = f"{_notification(shared.plate, len(images), len(hits), 0)} {origin}"
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def _shared_hit_block(image: PlateImage, shared: SharedPlate, one_drop: bool, categories: Sequence[Category],
                      with_category: bool) -> dict[str, Any]:
    """`• B3 · 93% · Sharp edges. · ✅ Confirmed by @U7` (with several hit categories, B3's category after
    it), the well linked to its reply, with a menu to confirm or correct it from here."""
    assert image.call is not None
    where = _where(image.position, one_drop) if image.position else escape(image.file).replace("|", "/")
    link = shared.reply_links.get(image.file)
    category = f" · {image.call.label}" if with_category else ""
    line = f"• *{f'<{link}|{where}>' if link else where}*{category} · {percent(image.call.confidence)}" \
           f"{hit_condition(_well(image.position), shared.conditions)} · " \
           f"{_one_line(image.call.explanation, SHARED_EXPLANATION_CHARS)}"
    verdict = shared.verdicts.get(image.file)
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": clip(
        line + (f" · {feedback_line(verdict, categories)}" if verdict else ""), SECTION_LIMIT)}}
    job_id = shared.job_ids.get(image.file)
    if job_id is not None:
        block["accessory"] = feedback_menu(job_id, image.call.label, categories)
    return block


def _one_line(explanation: str, limit: int) -> str:
    """The model's explanation on one line, made inert and clipped."""
    return clip(one_line(escape(explanation)), limit)


def _not_classified_text(images: Sequence[PlateImage], one_drop: bool, retry: WellsRetry | None) -> str:
    """The wells whose model call failed, grouped by why, and that the button below tries them again."""
    if not images:
        return ""
    offer = f" *{RETRY_WELLS_LABEL}* (below) classifies only these again." if retry else ""
    lines = [f":warning: *Not classified ({len(images)}):* the model call failed.{offer}"]
    by_reason: dict[str, list[str]] = {}
    for image in sorted(images, key=_plate_order):
        where = _where(image.position, one_drop) if image.position else code(image.file)
        by_reason.setdefault(image.error or "unknown error", []).append(where)
    for reason, wells in list(by_reason.items())[:MAX_LISTED]:
        lines.append(f"• {_listed(wells)}: {escape(clip(reason, EXPLANATION_CHARS))}")
    return "\n".join(lines)


def _unreadable_text(images: Sequence[PlateImage]) -> str:
    failed = [i for i in images if not i.call and i.unreadable]
    if not failed:
        return ""
    lines = [f":warning: *Could not be read ({len(failed)}):*"]
    lines += [f"• {code(i.file)}: {escape(clip(i.error or 'unknown error', EXPLANATION_CHARS))}" for i in failed[:MAX_LISTED]]
    if len(failed) > MAX_LISTED:
        lines.append(f"…and {len(failed) - MAX_LISTED} more: see the CSV.")
    return "\n".join(lines)


def _without_well_text(images: Sequence[PlateImage]) -> str:
    loose = [i.file for i in images if i.position is None]
    if not loose:
        return ""
    return (f"*No well in the name ({len(loose)}),* classified all the same and listed in the CSV: "
            + _listed([code(name) for name in loose]))


def _skipped_text(skipped: Mapping[Skip, int]) -> str:
    total = sum(skipped.values())
    reasons = ", ".join(f"{reason.value}: {count}" for reason, count in skipped.items())
    return f"Skipped {_count(total, 'file')} in the zip — {reasons}."


def _notification(plate: str, images: int, hits: int, new: int) -> str:
    news = f" ({new} new)" if new else ""
    return f"Plate {escape(plate)}: {_count(hits, 'crystal hit')}{news} in {_count(images, 'image')}"


def _where(position: Position | None, one_drop: bool) -> str:
    if position is None:
        return "no well"
    return str(position.well) if one_drop else str(position)


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _plate_order(image: PlateImage) -> tuple[bool, Position | None, str]:
    """Wells in plate order (A1, A2, ... H12), then the images without a well by name."""
    return image.position is None, image.position, image.file  # two Nones compare equal, then by name


def _chunks(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """`text` cut at line ends into pieces Slack takes as one section each."""
    chunks: list[str] = []
    for line in text.split("\n"):
        line = clip(line, limit)
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def plate_failure_message(reason: str) -> Message:
    """A plate that could not be read at all (a corrupt zip, limits): the reason says what to do."""
    text = f":warning: {escape(reason)}"
    section = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}
    return Message(clip(text, MESSAGE_LIMIT), [section])


def calls_by_well_text(plate: str, images: Sequence[PlateImage], limit: int) -> str:
    """Every call of an inspection on one line, wells in plate order, for a follow-up question's context."""
    entries = [f"{image.position if image.position else image.file}: "
               + (f"{image.call.label} ({percent(image.call.confidence)})" if image.call
                  else "could not be read" if image.unreadable else "not classified")
               for image in sorted(images, key=_plate_order)]
    return clip(f"Plate {plate}, your calls by well: " + "; ".join(entries), limit)
