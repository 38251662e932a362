"""The team teaches the bot: reviewed calls become few-shot examples. Pure: which examples a prompt
uses, who may change them, and the Slack views for adding (a modal) and listing them.

A call the team confirmed or corrected carries a "Use as example" button. It opens a form with the
label and a one-line explanation; on submit the image joins the examples of `examples/` in every
following classification. Per category the newest MAX_EXAMPLES_PER_CATEGORY are used, in category
order and newest first, so the same examples always give the same bytes (the prompt prefix stays
cacheable) and the prompt fingerprint changes exactly when they change.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Sequence

from bot.models import Call, Feedback, Image, Job, TeamExample
from bot.prompt import Category, Example, find_category
from bot.render import SECTION_LIMIT, Blocks, Message, clip, code, escape, one_line, shows_in_slack
from bot.visibility import Viewer

EXAMPLE_REMOVE_ACTION = "example_remove"
EXAMPLE_FORM = "example_form"  # the modal's callback_id
EXPLANATION_BLOCK = "explanation"
EXPLANATION_INPUT = "text"
MAX_EXPLANATION_CHARS = 300
LISTED_EXAMPLES = 40  # team examples listed by `/crystals examples` (a message holds 50 blocks)
OTHER_CHANNEL = "from a channel you are not in"


def choose_examples(examples: Sequence[TeamExample], labels: Sequence[str], per_category: int) -> list[TeamExample]:
    """The team's examples a prompt uses: per category (in `labels` order) the newest `per_category`.
    Examples of a label that is no category any more are left out."""
    newest_first = sorted(examples, key=lambda example: -example.id)
    return [example for label in labels
            for example in [e for e in newest_first if e.label == label][:per_category]]


def team_prompt_examples(chosen: Sequence[TeamExample], images: dict[int, Image]) -> tuple[Example, ...]:
    """The chosen examples as few-shot examples (an example whose image is missing is left out), each
    explanation quoted: it is a person's words about the image, not instructions."""
    return tuple(Example(images[e.id], e.label, quoted_explanation(e.explanation)) for e in chosen if e.id in images)


def quoted_explanation(text: str) -> str:
    """A team example's explanation as the model reads it: one line of at most MAX_EXPLANATION_CHARS, in
    JSON string quotes (quotes and line breaks inside escaped, so it cannot end the quote and pose as
    instructions), said to be a lab member's words."""
    return f"{json.dumps(clip(one_line(text), MAX_EXPLANATION_CHARS), ensure_ascii=False)} (a lab member's words, quoted)"


def may_edit_examples(user_id: str, editors: frozenset[str], guest: bool | None) -> bool:
    """Never a guest (nor someone Slack could not say is not one); with EXAMPLE_EDITORS empty, every
    other member of the workspace; else only those listed."""
    return guest is False and (not editors or user_id in editors)


def who_may_edit(editors: frozenset[str]) -> str:
    if not editors:
        return "Every member of the workspace who is not a guest can"
    return f"Only {', '.join(f'<@{user}>' for user in sorted(editors))} can"


def editing_refused(editors: frozenset[str], guest: bool | None) -> str:
    """Why someone cannot add or remove an example, and who can."""
    if guest is None:
        return ("I could not check with Slack who you are just now, so I cannot change my examples for you. "
                "Try again in a minute.")
    who = who_may_edit(editors)
    if guest:
        return f"Guests cannot change the examples I learn from. {who} add or remove them."
    return f"{who} add or remove the examples I learn from (EXAMPLE_EDITORS). Ask one of them, or an admin to add you."


def explanation_draft(call: Call, feedback: Feedback) -> str:
    """The form's pre-filled explanation: the call's own when the team confirmed it; what the model
    observed when the team corrected it (the observations come before the label, so they still hold)."""
    text = call.explanation if feedback.verdict == "confirmed" else call.observations
    return clip(one_line(text), MAX_EXPLANATION_CHARS)


def checked_explanation(text: str | None) -> tuple[str, str | None]:
    """(the explanation on one line, or the problem to show under the field)."""
    line = one_line(text or "")
    if not line:
        return line, "Write one line on what in the image shows this label."
    if len(line) > MAX_EXPLANATION_CHARS:
        return line, f"Keep it to one line of at most {MAX_EXPLANATION_CHARS} characters."
    return line, None


def example_form(job: Job, call: Call, feedback: Feedback, categories: Sequence[Category]) -> dict[str, Any]:
    """The modal behind "Use as example": the image, its label (the team's verdict) and the explanation."""
    category = find_category(categories, feedback.label)
    verdict = (f"confirmed by <@{feedback.user_id}>" if feedback.verdict == "confirmed"
               else f"corrected from *{call.label}* by <@{feedback.user_id}>")
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(
        f"{category.emoji} *{feedback.label}* · {code(job.file_name)} · {verdict}", SECTION_LIMIT)}}]
    if job.kind == "image" and shows_in_slack(job.file_name):
        blocks.append({"type": "image", "slack_file": {"id": job.file_id},
                       "alt_text": clip(f"{feedback.label}: {job.file_name}", 2000)})
    blocks += [
        {"type": "input", "block_id": EXPLANATION_BLOCK,
         "label": {"type": "plain_text", "text": "Why this is " + feedback.label + ", in one line"},
         "hint": {"type": "plain_text", "text": "The model reads it beside the image, before every image it classifies."},
         "element": {"type": "plain_text_input", "action_id": EXPLANATION_INPUT, "multiline": False,
                     "max_length": MAX_EXPLANATION_CHARS, "initial_value": explanation_draft(call, feedback)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            "The examples in `examples/` stay; of the team's examples I use the newest few per category. "
            "`/crystals examples` lists them and removes one."}]},
    ]
    return {"type": "modal", "callback_id": EXAMPLE_FORM,
            "title": {"type": "plain_text", "text": "Use as example"},
            "submit": {"type": "plain_text", "text": "Add example"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "private_metadata": json.dumps({"job_id": job.id, "label": feedback.label}),
            "blocks": blocks}


def read_form(private_metadata: str, labels: Sequence[str]) -> tuple[int, str] | None:
    """The form's (job id, label), or None if the metadata is not what example_form wrote."""
    try:
        data = json.loads(private_metadata)
    except ValueError:
        return None
    job_id, label = (data.get("job_id"), data.get("label")) if isinstance(data, dict) else (None, None)
    return (job_id, label) if type(job_id) is int and label in labels else None


def example_added(user_id: str, label: str, explanation: str, categories: Sequence[Category]) -> Message:
    """The note in the call's thread that its image is now an example."""
    text = clip(f":pushpin: <@{user_id}> made this image an example of {find_category(categories, label).emoji} "
                f"*{label}*, explained as “{escape(explanation)}” From now on the model sees it before every "
                "image (`/crystals examples` lists the examples).", SECTION_LIMIT)
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def examples_message(built_in: Sequence[Example], team: Sequence[TeamExample], used: set[int], per_category: int,
                     categories: Sequence[Category], viewer: Viewer, notice: str = "") -> Message:
    """`/crystals examples`: the examples from `examples/`, then the team's, each with who added it, when,
    whether the prompt uses it, and a Remove button. Of an example from a channel the viewer is not in,
    only its label shows."""
    emoji = {c.name: c.emoji for c in categories}
    files = "\n".join(f"• {emoji.get(e.label, '')} *{e.label}* · {code(e.image.name)}: {escape(e.explanation)}"
                      for e in built_in)
    use = (f"I use the newest {per_category} of each category" if per_category
           else "none are used: MAX_EXAMPLES_PER_CATEGORY is 0")
    head = f"*Examples I learn from.* From `examples/` (always used):\n{files}\n*Added by the team* ({use}):"
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(head, SECTION_LIMIT)}}]
    if notice:
        blocks.insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": clip(notice, SECTION_LIMIT)}})
    if not team:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       "None yet. Under a call the team confirmed or corrected, click *Use as example*."}]})
    blocks += [_team_example_block(example, emoji, example.id in used, viewer.sees(example.channel))
               for example in team[:LISTED_EXAMPLES]]
    if len(team) > LISTED_EXAMPLES:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       f"… and {len(team) - LISTED_EXAMPLES} older ones, not listed."}]})
    text = f"{len(built_in)} examples from examples/ and {len(team)} added by the team."
    return Message(f"{notice}\n{text}" if notice else text, blocks)


def _team_example_block(example: TeamExample, emoji: dict[str, str], used: bool, shown: bool) -> dict[str, Any]:
    when = datetime.fromtimestamp(example.added_at, timezone.utc).strftime("%Y-%m-%d")
    name = escape(example.file_name).replace("|", "/")
    state = "" if used else f" · _not in use: newer {example.label} examples are_"
    text = (f"{emoji.get(example.label, '')} *{example.label}* · <{example.link}|{name}> · "
            f"<@{example.added_by}>, {when}{state}\n“{escape(example.explanation)}”") if shown else \
        f"{emoji.get(example.label, '')} *{example.label}* · {OTHER_CHANNEL}{state}"
    return {"type": "section", "block_id": f"example-{example.id}",
            "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)},
            "accessory": {"type": "button", "action_id": EXAMPLE_REMOVE_ACTION, "value": str(example.id),
                          "style": "danger", "text": {"type": "plain_text", "text": "Remove"},
                          "confirm": {"title": {"type": "plain_text", "text": "Remove this example?"},
                                      "text": {"type": "mrkdwn", "text": "I stop showing it to the model."},
                                      "confirm": {"type": "plain_text", "text": "Remove"},
                                      "deny": {"type": "plain_text", "text": "Keep"}}}}


def example_removed(example: TeamExample, shown: bool) -> str:
    if not shown:
        return f":wastebasket: Removed a *{example.label}* example {OTHER_CHANNEL}."
    return (f":wastebasket: Removed the *{example.label}* example {code(example.file_name)} "
            f"(added by <@{example.added_by}>).")
