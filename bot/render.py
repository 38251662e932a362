"""Slack messages: a call (and the team's feedback on it) -> text and Block Kit blocks. Pure.

The text is the notification and screen-reader fallback; the blocks are what people see.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from bot.agreement import Agreement, hit_agreement
from bot.budget import WARN_SHARE, BudgetState
from bot.models import Call, ChannelStats, Feedback, Inspection, Job, MonthSpend
from bot.categories import hit_labels, several_hits
from bot.prompt import Category, find_category

CONFIRM_ACTION = "feedback_confirm"
CORRECT_ACTION = "feedback_correct"
RETRY_ACTION = "job_retry"
FEEDBACK_MENU_ACTION = "feedback_menu"  # Confirm / Correct in one menu, where a message lists several calls
EXAMPLE_ACTION = "example_use"  # "Use as example" on a reviewed call (bot/teaching.py)
SECTION_LIMIT = 3000  # Block Kit section text
MESSAGE_LIMIT = 3900  # what Slack shows of a message text without "show more"
SPEND_CHANNELS = 10  # channels listed in the spend part of /crystals stats
CORRECTIONS_SHOWN = 8  # rows of the "said -> corrected to" table
SLACK_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")  # what an image block can show
OVERFLOW_OPTIONS = 5  # Slack's limit on an overflow menu; a longer menu is a select

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


def one_line(text: str) -> str:
    """Text on one line: every run of spaces and line breaks made one space."""
    return " ".join(text.split())


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
    blocks += feedback_blocks(job_id, call.label, categories, feedback)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer(call)}]})
    text = f"{call.label} ({percent(call.confidence)}) for {escape(file_name)}: {escape(call.explanation)}"
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def feedback_blocks(job_id: int, label: str, categories: Sequence[Category], feedback: Feedback | None) -> Blocks:
    """The team's latest verdict, if any, and the Confirm / Correct controls."""
    blocks: Blocks = []
    if feedback:
        verdict = feedback_line(feedback, categories)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": verdict}]})
    return [*blocks, feedback_actions(job_id, label, categories, reviewed=feedback is not None)]


def shows_in_slack(file_name: str) -> bool:
    """Whether an image block can show the file (Slack shows PNG, JPEG and GIF; not TIFF, BMP or WebP)."""
    return file_name.lower().endswith(SLACK_IMAGE_SUFFIXES)


def hit_message(job: Job, call: Call, categories: Sequence[Category], feedback: Feedback | None,
                thread_link: str) -> Message:
    """A call shared in the hits channel: the image, the call, who uploaded it where, a link to the
    thread, and the same Confirm / Correct controls as the call itself."""
    emoji = find_category(categories, call.label).emoji
    body = (f"{emoji} *{call.label}* · {code(job.file_name)} · {percent(call.confidence)} · "
            f"from <@{job.user_id}> in <#{job.channel}>\n{escape(call.explanation)}")
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(body, SECTION_LIMIT)}}]
    if shows_in_slack(job.file_name):
        blocks.append({"type": "image", "slack_file": {"id": job.file_id},
                       "alt_text": clip(f"{call.label}: {job.file_name}", 2000)})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{thread_link}|Open the thread>"}]})
    blocks += feedback_blocks(job.id, call.label, categories, feedback)
    text = (f"{call.label} ({percent(call.confidence)}) for {escape(job.file_name)} from <@{job.user_id}>: "
            f"{escape(call.explanation)}")
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def feedback_actions(job_id: int, label: str, categories: Sequence[Category], *, reviewed: bool) -> dict[str, Any]:
    """Confirm and Correct; on a call the team has reviewed, also Use as example."""
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
            *([{"type": "button", "action_id": EXAMPLE_ACTION, "value": str(job_id),
                "text": {"type": "plain_text", "text": "Use as example"}}] if reviewed else []),
        ],
    }


def feedback_menu(job_id: int, label: str, categories: Sequence[Category]) -> dict[str, Any]:
    """A menu with Confirm and Correct to… each other category (its values as those of the buttons): an
    overflow menu, or a select when there are more than the 5 options an overflow menu may hold."""
    choices = [(f"Confirm {label}", label)] + [(f"Correct to {c.name}", c.name) for c in categories if c.name != label]
    options = [{"text": {"type": "plain_text", "text": clip(text, 75)}, "value": f"{job_id}:{name}"}
               for text, name in choices]
    if len(options) <= OVERFLOW_OPTIONS:
        return {"type": "overflow", "action_id": FEEDBACK_MENU_ACTION, "options": options}
    return {"type": "static_select", "action_id": FEEDBACK_MENU_ACTION, "options": options,
            "placeholder": {"type": "plain_text", "text": "Confirm or correct…"}}


def parse_feedback_value(value: str, labels: Sequence[str]) -> tuple[int, str] | None:
    """`"<job id>:<label>"` from a button or menu option -> (job id, label); None if it is not one."""
    job_id, _, label = value.partition(":")
    return (int(job_id), label) if _is_digits(job_id) and label in labels else None


def parse_id(value: str) -> int | None:
    """A button's value (a Retry's job id, a Remove's example id) -> the id; None if it is not one."""
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


def help_message(command: str, categories: Sequence[Category]) -> Message:
    names = [f"*{escape(c.name)}*" for c in categories]
    text = (
        f"*Find the Crystals* classifies crystallization-drop images into {', '.join(names[:-1])} or {names[-1]}.\n"
        "• Drop images into a channel I am in: I answer in the thread with the category, my confidence and why.\n"
        "• Reply in the thread (or mention me) to ask a follow-up question.\n"
        "• Use the buttons under a call to confirm it or correct it.\n"
        f"• `{command} recent`: the last calls in this channel.\n"
        f"• `{command} stats`: calls per category, how often the team confirmed or corrected me, and this "
        "month's model spend.\n"
        f"• `{command} status`: the model service (answering, rate-limited or down, the limits learned) and how "
        "many images and questions wait.\n"
        f"• `{command} export [from YYYY-MM-DD] [to YYYY-MM-DD]`: this channel's calls as a CSV, in a direct "
        "message.\n"
        "• Under a call the team confirmed or corrected, *Use as example* teaches me with that image; "
        f"`{command} examples` lists my examples and removes one.\n"
        f"• `{command} plate NAME`: a plate's inspections (date, day, counts, new hits) and a chart of its hits; "
        "*History* under a plate's hit, or `show D7 over time` in its thread, shows the drop at each inspection.\n"
        f"• `{command} share-hits [on|off]`: whether this private channel's crystal hits are posted in the hits "
        "channel too (a member of the channel decides).\n"
        f"• Screens: upload a screen's CSV with the text `screen NAME` (or `{command} screens add NAME`, then the "
        f"upload); `{command} plate PLATE screen NAME` (or `screen NAME` in a plate's upload) shows each hit's "
        f"condition; `{command} screens` lists them and removes one.\n"
        "I show a channel's calls only to its members."
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
            lines.append(recent_plate_line(item, categories) + f" · {who}")
            continue
        link = f"<{item.permalink}|{escape(item.job.file_name).replace('|', '/')}>"
        if item.call:
            lines.append(f"• {emoji.get(item.call.label, '')} *{item.call.label}* ({percent(item.call.confidence)}) "
                         f"{link} · {who}")
        else:
            lines.append(f"• :warning: {item.job.state} {link} · {who}")
    text = clip("*Recent calls in this channel*\n" + "\n".join(lines), SECTION_LIMIT)
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def recent_plate_line(item: RecentPlate, categories: Sequence[Category]) -> str:
    inspection = item.inspection
    hits = sum(item.calls_by_label.get(label, 0) for label in hit_labels(categories))
    images = f"{inspection.images} image{'' if inspection.images == 1 else 's'}"
    link = f"<{item.permalink}|{escape(inspection.source or 'images by well').replace('|', '/')}>"
    state = f"{hits} crystal hit{'' if hits == 1 else 's'} in {images}" if inspection.finished_at else f"{images}, in progress"
    emoji = " ".join(c.emoji for c in categories if c.hit and item.calls_by_label.get(c.name)) or ":test_tube:"
    return f"• {emoji} *Plate {escape(inspection.plate_name)}*: {state} {link}"


def stats_message(stats: ChannelStats, categories: Sequence[Category], spend: MonthSpend | None = None,
                  channel: str = "", agreement: Agreement | None = None) -> Message:
    """Calls per category and the team's feedback in this channel; with `spend`, the month's model spend;
    with `agreement`, the team's agreement per category (a section of its own)."""
    text = _calls_text(stats, categories) + (f"\n{spend_text(spend, channel)}" if spend else "")
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}]
    if agreement is not None and agreement.reviewed:
        detail = agreement_text(agreement, categories)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(detail, SECTION_LIMIT)}})
        text += "\n" + detail
    return Message(clip(text, MESSAGE_LIMIT), blocks)


def agreement_text(agreement: Agreement, categories: Sequence[Category]) -> str:
    """Per category: reviewed, confirmed and corrected; then the most frequent corrections."""
    emoji = {c.name: c.emoji for c in categories}
    lines = [f"*Agreement with the team* ({agreement.reviewed} calls reviewed, "
             f"{agreement.confirmed / agreement.reviewed:.0%} confirmed; the latest verdict per call)"]
    lines += [f"• {emoji.get(row.category, '')} {row.category}: {row.reviewed} reviewed, {row.confirmed} confirmed"
              f" ({row.share_confirmed:.0%}), {row.corrected} corrected"
              for row in agreement.by_category if row.reviewed]
    if several_hits(categories):
        hits = hit_agreement(agreement, hit_labels(categories))
        kept = f", {hits.kept} kept as hits ({hits.kept / hits.reviewed:.0%})" if hits.reviewed else ""
        lines.append(f"*Hits* ({_hit_names(categories)}): {hits.reviewed} of my hits reviewed{kept}; "
                     f"{hits.missed} more found by the team among my other calls")
    if agreement.corrections:
        lines.append("*Corrections* (I said → the team said):")
        lines += [f"• {said} → {right}: {n}" for said, right, n in agreement.corrections[:CORRECTIONS_SHOWN]]
        if len(agreement.corrections) > CORRECTIONS_SHOWN:
            lines.append(f"• … and {len(agreement.corrections) - CORRECTIONS_SHOWN} more kinds of correction")
    return "\n".join(lines)


def _calls_text(stats: ChannelStats, categories: Sequence[Category]) -> str:
    total = sum(stats.calls_by_label.values())
    if not total and not stats.failed:
        return "No images have been classified in this channel yet."
    lines = [f"• {c.emoji} {c.name}: {stats.calls_by_label.get(c.name, 0)}" for c in categories]
    if several_hits(categories):
        lines.append(f"• hits ({_hit_names(categories)}): "
                     f"{sum(stats.calls_by_label.get(label, 0) for label in hit_labels(categories))}")
    reviewed = stats.confirmed + stats.corrected
    agreement = f": the team agreed with {stats.confirmed / reviewed:.0%} of the calls it reviewed" if reviewed else ""
    return (f"*{total} images classified in this channel*" + (f" ({stats.failed} could not be)" if stats.failed else "")
            + "\n" + "\n".join(lines)
            + f"\n*Feedback:* {stats.confirmed} confirmed, {stats.corrected} corrected{agreement}.")


def _hit_names(categories: Sequence[Category]) -> str:
    return " + ".join(c.name for c in categories if c.hit)


def spend_text(spend: MonthSpend, channel: str = "") -> str:
    """This month's estimated model spend: in all, in `channel` (if one is given), against the budget,
    per channel."""
    text = f"*Model spend in {spend.month}* (estimated): ${spend.total_usd:.2f} in all"
    if channel:
        text += f", ${spend.by_channel.get(channel, 0.0):.2f} in this channel"
    if spend.budget_usd is not None:
        share = f" ({spend.total_usd / spend.budget_usd:.0%})" if spend.budget_usd else ""
        text += f"; the monthly budget is ${spend.budget_usd:.2f}{share}"
    ranked = sorted(spend.by_channel.items(), key=lambda item: -item[1])[:SPEND_CHANNELS]
    others = f"\n• channels you are not in: ${spend.others_usd:.2f}" if spend.others_usd else ""
    return text + "." + "".join(f"\n• <#{name}>: ${cost:.2f}" for name, cost in ranked) + others


def budget_spent_reason(budget_usd: float) -> str:
    """Why an image or a question got no model call: short, and who can change it."""
    return (f"this month's model budget (${budget_usd:.2f}) is spent, so I make no new model calls until next month "
            "(images I have seen before are still answered). An admin can raise MONTHLY_BUDGET_USD.")


def budget_notice(state: BudgetState, spent_usd: float, budget_usd: float) -> Message:
    """The channel's one notice a month that the budget is nearly or wholly spent."""
    if state is BudgetState.SPENT:
        text = (f":money_with_wings: This month's model budget (${budget_usd:.2f}) is spent: until next month I "
                "classify no new images and answer no questions. Images I have seen before are still answered. "
                "An admin can raise MONTHLY_BUDGET_USD.")
    else:
        text = (f":money_with_wings: {WARN_SHARE:.0%} of this month's model budget is spent (${spent_usd:.2f} of "
                f"${budget_usd:.2f}). Once it is all spent I stop calling the model until next month. "
                "An admin can raise MONTHLY_BUDGET_USD.")
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def permalink(team_url: str, channel: str, message_ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink format, built without an API call."""
    link = f"{team_url.rstrip('/')}/archives/{channel}/p{message_ts.replace('.', '')}"
    return f"{link}?thread_ts={thread_ts}&cid={channel}" if thread_ts and thread_ts != message_ts else link
