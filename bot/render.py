"""Slack messages: a call (and the team's feedback on it) -> text and Block Kit blocks. Pure.

The text is the notification and screen-reader fallback; the blocks are what people see.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from bot.models import Call, ChannelStats, Feedback, Inspection, Job
from bot.prompt import Category, find_category

CONFIRM_ACTION = "feedback_confirm"
CORRECT_ACTION = "feedback_correct"
RETRY_ACTION = "job_retry"
SECTION_LIMIT = 3000  # Block Kit section text
MESSAGE_LIMIT = 3900  # what Slack shows of a message text without "show more"

Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class Message:
    text: str
    blocks: Blocks | None = None


def escape(text: str) -> str:
    """Text from people or the model, made inert: no <!channel> pings, links or user mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(name: str) -> str:
    """A file name as inline code."""
    return f"`{escape(name).replace('`', chr(39))}`"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def percent(confidence: float | None) -> str:
    return "unknown" if confidence is None else f"{confidence:.0%}"


def confidence_note(call: Call) -> str:
    sources = {"logprobs": "from the model's token probabilities", "model": "the model's own estimate"}
    return f"{percent(call.confidence)} ({sources[call.confidence_source]})" \
        if call.confidence_source in sources else percent(call.confidence)


def footer(call: Call) -> str:
    if call.from_cache:
        return f"{call.model} · seen before, answered from the cache at no cost"
    cost = "cost unknown" if call.cost_usd is None else f"${call.cost_usd:.4f}"
    tokens = f"{call.usage.input_tokens:,} tokens in ({call.usage.cached_tokens:,} cached), {call.usage.output_tokens:,} out"
    return f"{call.model} · {cost} · {tokens}"


def feedback_line(feedback: Feedback, categories: Sequence[Category]) -> str:
    if feedback.verdict == "confirmed":
        return f":white_check_mark: Confirmed by <@{feedback.user_id}>"
    emoji = find_category(categories, feedback.label).emoji
    return f":pencil2: Corrected to {emoji} *{feedback.label}* by <@{feedback.user_id}>"


def call_message(job_id: int, file_name: str, call: Call, categories: Sequence[Category],
                 feedback: Feedback | None = None) -> Message:
    """The threaded reply for one classified image, with confirm / correct controls."""
    headline = f"{find_category(categories, call.label).emoji} *{call.label}* · {code(file_name)}"
    body = f"{headline}\n*Confidence:* {confidence_note(call)}\n{escape(call.explanation)}"
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(body, SECTION_LIMIT)}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": clip(f"_Observed:_ {escape(call.observations)}", 2000)}]},
    ]
    if feedback:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": feedback_line(feedback, categories)}]})
    blocks += [
        feedback_actions(job_id, call.label, categories),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": footer(call)}]},
    ]
    text = f"{call.label} ({percent(call.confidence)}) for {escape(file_name)}: {escape(call.explanation)}"
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def feedback_actions(job_id: int, label: str, categories: Sequence[Category]) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": f"{c.name}"}, "value": f"{job_id}:{c.name}"}
        for c in categories if c.name != label
    ]
    return {
        "type": "actions",
        "block_id": f"feedback-{job_id}",
        "elements": [
            {"type": "button", "action_id": CONFIRM_ACTION, "style": "primary", "value": f"{job_id}:{label}",
             "text": {"type": "plain_text", "text": f"Confirm {label}"}},
            {"type": "static_select", "action_id": CORRECT_ACTION, "options": options,
             "placeholder": {"type": "plain_text", "text": "Correct to…"}},
        ],
    }


def parse_feedback_value(value: str, labels: Sequence[str]) -> tuple[int, str] | None:
    """`"<job id>:<label>"` from a button or menu option -> (job id, label); None if it is not one."""
    job_id, _, label = value.partition(":")
    return (int(job_id), label) if _is_digits(job_id) and label in labels else None


def parse_job_id(value: str) -> int | None:
    """A Retry button's value -> the job id; None if it is not one."""
    return int(value) if _is_digits(value) else None


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdecimal()


def retry_actions(job_id: int) -> dict[str, Any]:
    return {"type": "actions", "block_id": f"retry-{job_id}", "elements": [
        {"type": "button", "action_id": RETRY_ACTION, "value": str(job_id),
         "text": {"type": "plain_text", "text": "Retry"}}]}


def _warning(text: str, retry_job_id: int | None) -> Message:
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}]
    if retry_job_id is not None:
        blocks.append(retry_actions(retry_job_id))
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def failure_message(file_name: str, reason: str, retry_job_id: int | None = None) -> Message:
    """An image that could not be classified; with a Retry button when trying again may help."""
    return _warning(f":warning: I could not classify {code(file_name)}: {escape(reason)}", retry_job_id)


def unanswered_message(reason: str, retry_job_id: int) -> Message:
    """A question that could not be answered, with a Retry button."""
    return _warning(f":warning: I could not answer: {escape(reason)}", retry_job_id)


def answer_message(answer: str) -> Message:
    """A follow-up answer in a thread (plain mrkdwn, kept within what Slack shows)."""
    return Message(clip(escape(answer), MESSAGE_LIMIT))


def help_message(command: str) -> Message:
    text = (
        "*Find the Crystals* classifies crystallization-drop images into *clear*, *crystals*, *precipitate* or "
        "*other*.\n"
        "• Drop images into a channel I am in: I answer in the thread with the category, my confidence and why.\n"
        "• Reply in the thread (or mention me) to ask a follow-up question.\n"
        "• Use the buttons under a call to confirm it or correct it.\n"
        f"• `{command} recent`: the last calls in this channel.\n"
        f"• `{command} stats`: calls per category and how often the team confirmed or corrected me."
    )
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


@dataclass(frozen=True)
class RecentCall:
    job: Job
    call: Call | None
    permalink: str


@dataclass(frozen=True)
class RecentPlate:
    inspection: Inspection
    calls_by_label: Mapping[str, int]
    permalink: str


def recent_message(items: Sequence[RecentCall | RecentPlate], categories: Sequence[Category]) -> Message:
    """The latest calls and plates of a channel, newest first."""
    if not items:
        return Message("No images have been classified in this channel yet.")
    emoji = {c.name: c.emoji for c in categories}
    lines = []
    for item in items:
        job_or_plate = item.job if isinstance(item, RecentCall) else item.inspection
        when = datetime.fromtimestamp(float(job_or_plate.message_ts), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        who = f"<@{job_or_plate.user_id}> · {when}"
        if isinstance(item, RecentPlate):
            lines.append(_recent_plate_line(item, emoji) + f" · {who}")
            continue
        link = f"<{item.permalink}|{escape(item.job.file_name).replace('|', '/')}>"
        if item.call:
            lines.append(f"• {emoji.get(item.call.label, '')} *{item.call.label}* ({percent(item.call.confidence)}) "
                         f"{link} · {who}")
        else:
            lines.append(f"• :warning: {item.job.state} {link} · {who}")
    text = clip("*Recent calls in this channel*\n" + "\n".join(lines), SECTION_LIMIT)
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def _recent_plate_line(item: RecentPlate, emoji: Mapping[str, str]) -> str:
    inspection = item.inspection
    hits = item.calls_by_label.get("crystals", 0)
    images = f"{inspection.images} image{'' if inspection.images == 1 else 's'}"
    link = f"<{item.permalink}|{escape(inspection.source or 'images by well').replace('|', '/')}>"
    state = f"{hits} crystal hit{'' if hits == 1 else 's'} in {images}" if inspection.finished_at else f"{images}, in progress"
    return f"• {emoji.get('crystals', '') if hits else ':test_tube:'} *Plate {escape(inspection.plate_name)}*: {state} {link}"


def stats_message(stats: ChannelStats, categories: Sequence[Category]) -> Message:
    total = sum(stats.calls_by_label.values())
    if not total and not stats.failed:
        return Message("No images have been classified in this channel yet.")
    lines = [f"• {c.emoji} {c.name}: {stats.calls_by_label.get(c.name, 0)}" for c in categories]
    reviewed = stats.confirmed + stats.corrected
    agreement = f": the team agreed with {stats.confirmed / reviewed:.0%} of the calls it reviewed" if reviewed else ""
    text = (f"*{total} images classified in this channel*" + (f" ({stats.failed} could not be)" if stats.failed else "")
            + "\n" + "\n".join(lines)
            + f"\n*Feedback:* {stats.confirmed} confirmed, {stats.corrected} corrected{agreement}.")
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def permalink(team_url: str, channel: str, message_ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink format, built without an API call."""
    link = f"{team_url.rstrip('/')}/archives/{channel}/p{message_ts.replace('.', '')}"
    return f"{link}?thread_ts={thread_ts}&cid={channel}" if thread_ts and thread_ts != message_ts else link
