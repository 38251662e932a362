"""`/crystals status` and the Home tab's part on the model service: its state, the limits learned, the
requests by outcome, and the queue of images and questions by state. Pure.

The queue is counted over every channel, with no channel named (bot/visibility.py: totals are fine).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from bot.render import Message
from bot.service_state import (OUTAGE, RATE_LIMITED, WAIT_OUTAGE, WAIT_RATE_LIMIT, Count, Outcome, ServiceSnapshot,
                               about, clock_time, down_since, service_name)

RUNNING, QUEUED, LATER = "running", "queued", "later"  # a job not waiting for the service: at work, due, due later
QUEUE_STATES = {  # how a state of the queue reads, in this order
    WAIT_RATE_LIMIT: "waiting for the rate limit",
    WAIT_OUTAGE: "waiting for the service to answer",
    RUNNING: "being worked on",
    QUEUED: "next in the queue",
    LATER: "due later (a retry, or a plate at the Batch API)",
}
IMAGES, QUESTIONS = "image", "question"
FAILURES = (Outcome.SERVER_ERROR, Outcome.UNREACHABLE, Outcome.TIMEOUT, Outcome.BROKEN_ANSWER)

QueueCounts = Mapping[tuple[str, str], int]  # (IMAGES or QUESTIONS, a QUEUE_STATES key) -> jobs


def service_line(service: ServiceSnapshot, now: float) -> str:
    """`OpenAI (gpt-4.1 at https://api.openai.com/v1): answering`, or since when it is not, and for how long."""
    name = service_name(service.label)
    title = name if name.startswith("The model service") else f"{name} ({service.label})"
    if service.state == OUTAGE:
        state = (f"not answering{down_since(service.since, service.last_failure)}; the next try in "
                 f"{about(service.expected_wait)}")
    elif service.state == RATE_LIMITED:
        since = f" since {clock_time(service.since)}" if service.since else ""
        state = f"rate-limiting this key{since}; requests go again in {about(service.expected_wait)}"
    else:
        state = "answering"
    return f"*{title}*: {state}."


def limits_line(service: ServiceSnapshot) -> str:
    limits = [f"{limit:,.0f} {what}" for limit, what in ((service.limit_tokens, "tokens"),
                                                        (service.limit_requests, "requests")) if limit]
    if not limits:
        return "Limits: not learned yet (one request at a time until an answer tells them)."
    return f"Limits learned: {' and '.join(limits)} a minute."


def counts_line(counts: Mapping[str, Count]) -> str:
    def requests(*outcomes: Outcome) -> int:
        return sum(counts.get(outcome.value, Count()).requests for outcome in outcomes)

    parts = [f"{requests(Outcome.ANSWERED):,} answered"]
    for number, what in ((requests(Outcome.RATE_LIMITED), "refused for the rate limit (429)"),
                         (requests(*FAILURES), "failed (5xx, timeouts, no connection, cut-off answers)"),
                         (requests(Outcome.REFUSED, Outcome.QUOTA), "refused (the key, the model, the request "
                                                                    "or the credit)")):
        if number:
            parts.append(f"{number:,} {what}")
    return "Requests so far: " + " · ".join(parts) + "."


def queue_lines(queue: QueueCounts) -> list[str]:
    lines = []
    for what, title in ((IMAGES, "Images"), (QUESTIONS, "Questions")):
        parts = [f"{queue[(what, state)]:,} {words}" for state, words in QUEUE_STATES.items() if queue.get((what, state))]
        if parts:
            lines.append(f"• {title}: " + " · ".join(parts))
    return lines or ["Nothing waiting: every image and question is answered."]


def status_text(services: Sequence[ServiceSnapshot], queue: QueueCounts, now: float) -> str:
    """The model service (each one the bot has used) and the queue, in every channel (no channel named)."""
    lines = ["*Model service*"]
    for service in services:
        lines += [f"• {service_line(service, now)}", f"    {limits_line(service)}", f"    {counts_line(service.counts)}"]
    if not services:
        lines.append("No model request made yet.")
    lines += ["*Queue* (every channel)", *queue_lines(queue)]
    return "\n".join(lines)


def status_message(text: str) -> Message:
    """`/crystals status`: the `status_text` as one section."""
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
