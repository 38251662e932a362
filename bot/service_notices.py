"""What the lab reads while the model service holds its calls back (issue 15, item 3). Pure.

- `notice_message`: the one short reply in an upload's (or a question's) thread, e.g.
  "OpenAI is rate-limiting this key: 13 images wait, about 2 minutes. I will answer here by myself."
- `progress_wait`: what a plate's progress message adds, e.g. "waiting for OpenAI's rate limit, about 3
  minutes".

Both read `HeldBack`: what `held_back` makes of the queue's marks (store.provider_waits) and the service's
snapshot (bot.provider.snapshots). An outage outweighs a rate limit: while the service does not answer,
its rate limit does not matter. The service is named by bot.service_state.service_name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bot.models import Waiting
from bot.render import Message
from bot.service_state import (OK, OUTAGE, RATE_LIMITED, WAIT_OUTAGE, WAIT_RATE_LIMIT, ServiceSnapshot, about,
                               down_since, service_name)

STATE_OF_REASON = {WAIT_RATE_LIMIT: RATE_LIMITED, WAIT_OUTAGE: OUTAGE}
NOTICE_EMOJI = ":hourglass_flowing_sand:"


@dataclass(frozen=True)
class HeldBack:
    """The model calls of an upload (or a question) that wait for the service, as people are told."""

    reason: str  # WAIT_RATE_LIMIT or WAIT_OUTAGE
    waiting: int  # images (or questions) that wait
    until: float  # the last of them is due then (for a rate limit, its estimate)
    label: str  # the service's label ("gpt-4.1 at https://api.openai.com/v1"), "" when not known
    since: float | None  # the outage's start
    last_failure: str  # "HTTP 500", "no connection", ... ("" when not known)


def waiting_service(services: Sequence[ServiceSnapshot], reason: str) -> ServiceSnapshot | None:
    """The service that holds calls back for `reason`: one in that state, else one in any other state than
    ok, else the only one there is."""
    wanted = STATE_OF_REASON.get(reason)
    return (next((s for s in services if s.state == wanted), None)
            or next((s for s in services if s.state != OK), None)
            or (services[0] if len(services) == 1 else None))


def held_back(waits: Sequence[Waiting], services: Sequence[ServiceSnapshot]) -> HeldBack | None:
    """What holds an upload back, all its waiting calls counted; None when nothing waits. The service's state
    says why when it is not ok (a call marked for a rate limit waits for an outage once the service is down);
    else the calls' marks do."""
    if not waits:
        return None
    marked = WAIT_OUTAGE if any(wait.reason == WAIT_OUTAGE for wait in waits) else WAIT_RATE_LIMIT
    service = waiting_service(services, marked)
    down = service is not None and service.state == OUTAGE
    reason = WAIT_OUTAGE if down else WAIT_RATE_LIMIT if service and service.state == RATE_LIMITED else marked
    return HeldBack(reason=reason, waiting=sum(wait.jobs for wait in waits), until=max(wait.until for wait in waits),
                    label=service.label if service else "",
                    since=service.since if down and service else min(wait.since for wait in waits),
                    last_failure=service.last_failure if down and service else "")


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'s' if number != 1 else ''} wait{'s' if number == 1 else ''}"


def notice_text(held: HeldBack, now: float, *, question: bool = False) -> str:
    """One line: who holds the calls back, how many wait, and that the bot answers by itself."""
    waiting = "your question waits" if question else _count(held.waiting, "image")
    name = service_name(held.label)
    if held.reason == WAIT_OUTAGE:
        return (f"{NOTICE_EMOJI} {name} is not answering{down_since(held.since, held.last_failure)}: {waiting}. "
                "I will answer here when it is back.")
    return (f"{NOTICE_EMOJI} {name} is rate-limiting this key: {waiting}, {about(held.until - now)}. "
            "I will answer here by myself.")


def notice_message(held: HeldBack, now: float, *, question: bool = False) -> Message:
    text = notice_text(held, now, question=question)
    return Message(text, [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}])


def progress_wait(held: HeldBack | None, now: float) -> str:
    """A plate's progress line's addition: `waiting for OpenAI's rate limit, about 3 minutes`, `waiting for
    OpenAI, not answering since 14:02 UTC`; "" when nothing waits."""
    if held is None:
        return ""
    name = service_name(held.label, short=True)
    if held.reason == WAIT_OUTAGE:
        since = down_since(held.since, "")
        return f"waiting for {name}, not answering{since}"
    return f"waiting for {name}'s rate limit, {about(held.until - now)}"


def with_progress_wait(progress: str, held: HeldBack | None, now: float) -> str:
    """`Plate plate42: 37 of 96 classified · waiting for OpenAI's rate limit, about 3 minutes`."""
    wait = progress_wait(held, now)
    return f"{progress} · {wait}" if wait else progress
