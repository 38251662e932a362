"""What the bot says about a plate's history, as Slack text and Block Kit blocks. Pure.

- a crystal hit's reply: since when the drop has been crystals, with a History button;
- the comment on a history picture: each drop's calls from one inspection to the next;
- `/crystals plate NAME`: the plate's inspections (date, day, counts, hits, new hits), newest last.
"""
from __future__ import annotations

from typing import Any, Sequence

from bot.plates.history import HitSince, no_call_text, InspectionRow, date_text, since_text, when_text
from bot.plates.strip import DropHistory
from bot.prompt import Category, find_category
from bot.render import MESSAGE_LIMIT, SECTION_LIMIT, Message, clip, code, escape, unanswered_message

HISTORY_ACTION = "drop_history"  # the History button on a crystal hit's reply; its value is the reply's job id
MAX_TIMELINE_LINES = 30  # inspections listed by /crystals plate (the latest)
MAX_LISTED_WELLS = 12  # new hits named per inspection


def history_button(job_id: int) -> dict[str, Any]:
    return {"type": "button", "action_id": HISTORY_ACTION, "value": str(job_id),
            "text": {"type": "plain_text", "text": "History"}}


def with_hit_history(message: Message, since: HitSince, job_id: int) -> Message:
    """A crystal hit's reply with a line on since when it has been crystals, and the History button,
    right under the call."""
    note = {"type": "section", "text": {"type": "mrkdwn", "text": f":calendar: {since_text(since)}"},
            "accessory": history_button(job_id)}
    blocks = list(message.blocks or [])
    return Message(message.text, [*blocks[:1], note, *blocks[1:]])


def history_comment(plate: str, drops: Sequence[DropHistory], since: HitSince | None) -> str:
    """`*D7* of plate42: clear (day 0) → crystals (day 4) → crystals (day 7)`, one line per drop; then
    since when the (one) drop has been crystals."""
    lines = [f"*{escape(drop.name)}* of plate {escape(plate)}: " + " → ".join(
        f"{s.label or no_call_text(s)} (day {s.day})" for s in drop.sightings)
        for drop in drops]
    if since:
        lines.append(since_text(since))
    return clip("\n".join(lines), MESSAGE_LIMIT)


def picture_refused_message(slack_error: str) -> Message:
    """A history picture that Slack would not take (an app installed without files:write)."""
    return Message(f":warning: I could not post the picture: Slack refused the upload ({code(slack_error)}). An admin "
                   "should check that the app has the `files:write` scope.")


def history_failed_message(job_id: int) -> Message:
    """A history picture that could not be made after every retry (the log says why)."""
    return unanswered_message("the picture could not be made just now; try again in a few minutes", job_id)


def no_history_message(plate: str, asked: Sequence[str]) -> Message:
    """A history request whose wells the plate has no image of."""
    return Message(f"Plate {escape(plate)} has no image of {escape(', '.join(asked))} at any inspection.")


def timeline_comment(plate: str, rows: Sequence[InspectionRow], links: Sequence[str],
                     categories: Sequence[Category]) -> str:
    """/crystals plate NAME: the plate's inspections in date order, each with its day, counts, hits
    and new hits, and a link to its thread."""
    first, last = rows[0], rows[-1]
    span = f"day 0 ({date_text(first.inspection.taken_at)}) to day {last.day} ({date_text(last.inspection.taken_at)})"
    count = len(rows)
    lines = [f"*Plate {escape(plate)}*: {count} inspection{'s' if count != 1 else ''} in this channel"
             + (f", {span}" if count > 1 else "") + ". The team's verdicts count where given."]
    shown = list(zip(rows, links))[-MAX_TIMELINE_LINES:]
    if len(shown) < count:
        lines.append(f"…the first {count - len(shown)} left out.")
    lines += [_timeline_line(row, link, categories, first_row=row is first) for row, link in shown]
    return clip("\n".join(lines), MESSAGE_LIMIT)


def _timeline_line(row: InspectionRow, link: str, categories: Sequence[Category], *, first_row: bool) -> str:
    inspection = row.inspection
    source = " (upload time)" if inspection.dated_from in ("", "upload") else ""
    names = [c.name for c in categories] + sorted(set(row.counts) - {c.name for c in categories})
    counts = " ".join(f"{find_category(categories, name).emoji} {row.counts.get(name, 0)}" for name in names)
    hits = len(row.hits)
    hit_text = f"*{hits} crystal hit{'s' if hits != 1 else ''}*" if hits else "no crystal hits"
    if row.new_hits and not first_row:
        wells = sorted(row.new_hits)
        named = ", ".join(str(p.well) if p.drop == 1 else str(p) for p in wells[:MAX_LISTED_WELLS])
        more = f" and {len(wells) - MAX_LISTED_WELLS} more" if len(wells) > MAX_LISTED_WELLS else ""
        hit_text += f", :new: {len(wells)} new: {named}{more}"
    images = f"{inspection.images} image{'s' if inspection.images != 1 else ''}"
    return (f"• *{when_text(inspection)}*{source}, day {row.day}: {images} · {counts} · {hit_text} · "
            f"<{link}|thread>")


def plate_not_found_message(name: str, known: Sequence[str]) -> Message:
    """`/crystals plate NAME` for a plate the channel has not seen: the plates it has."""
    listed = ", ".join(escape(n) for n in known[:20])
    text = (f"No plate named {escape(name)} has been inspected in this channel."
            + (f" Plates here, latest first: {listed}." if known else " Drop a plate's zip here first."))
    return Message(clip(text, SECTION_LIMIT))

