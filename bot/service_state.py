"""The model service's state as every bot process shares it, and what it means for people. Pure.

One `ServiceState` per API key and model (`service_id`: a hash of the base URL and the key, and the
model name; never the key itself), kept as JSON in the database (table `model_services`, see
bot/store/provider.py) and changed only under that row's lock, so several processes on one
PostgreSQL database share one budget and one breaker:

- `pace`: bot/ratelimit.py's Pace: the limits learned (tokens and requests per minute, what the
  last answer said remained and when the buckets are full again), the buckets' levels, a block
  after a 429. A restart reads them back: it does not start blind.
- `breaker`: bot/breaker.py's Breaker: closed, or open since when, with the next probe's time.

Counters per outcome of a request (`Outcome`: answered, rate_limited, quota, server_error,
unreachable, timeout, broken_answer, refused) with the tokens used, in table `model_counts`; they
only grow (Prometheus counters; 429s served = requests with outcome rate_limited).

For notices, `/crystals status`, the Home tab and /metrics, read `snapshot(...)` (or
`bot.provider.snapshots(store)`, which reads every service's row): a `ServiceSnapshot` says the
state (ok, rate_limited or outage), since when, the expected wait in seconds, the limits learned
and the counters. Jobs waiting for the service are marked in the queue: see bot/store/provider.py.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Mapping
from urllib.parse import urlsplit

from bot.breaker import Breaker
from bot.ratelimit import Bucket, Limit, Pace, RateHeaders

OK, RATE_LIMITED, OUTAGE = "ok", "rate_limited", "outage"
WAIT_RATE_LIMIT, WAIT_OUTAGE = "rate_limit", "outage"  # why a job waits for the service (jobs.waiting)
RATE_LIMITED_AFTER = 1.0  # seconds a request has to wait before the service counts as rate-limiting


class Outcome(str, Enum):
    """What became of one request to the model service."""

    ANSWERED = "answered"
    RATE_LIMITED = "rate_limited"  # 429: wait
    QUOTA = "quota"  # 429 insufficient_quota: the account is out of credit
    SERVER_ERROR = "server_error"  # 5xx
    UNREACHABLE = "unreachable"  # no connection, or it dropped
    TIMEOUT = "timeout"
    BROKEN_ANSWER = "broken_answer"  # HTTP 200, but a cut-off body or an answer outside the schema
    REFUSED = "refused"  # another 4xx: the request, the key or the model is wrong

    @property
    def is_failure(self) -> bool:
        """A failure of the service (it counts towards opening the breaker)."""
        return self in (Outcome.SERVER_ERROR, Outcome.UNREACHABLE, Outcome.TIMEOUT, Outcome.BROKEN_ANSWER)


@dataclass(frozen=True)
class ServiceState:
    pace: Pace = field(default_factory=Pace)
    breaker: Breaker = field(default_factory=Breaker)


def _build(cls: type, data: Mapping[str, Any] | None, **nested: Any) -> Any:
    """A dataclass from its JSON fields (fields it does not know are left out: a newer bot wrote them)."""
    if data is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in names}, **nested)


def state_to_json(state: ServiceState) -> str:
    return json.dumps(dataclasses.asdict(state), separators=(",", ":"))


def state_from_json(text: str | None) -> ServiceState:
    if not text:
        return ServiceState()
    data = json.loads(text)
    pace = dict(data.get("pace") or {})
    stated = pace.pop("stated", None)
    tokens, requests = _build(Bucket, pace.pop("tokens", None)), _build(Bucket, pace.pop("requests", None))
    headers = stated and RateHeaders(_build(Limit, stated.get("tokens")), _build(Limit, stated.get("requests")))
    return ServiceState(_build(Pace, pace, tokens=tokens, requests=requests, stated=headers),
                        _build(Breaker, data.get("breaker") or {}))


@dataclass(frozen=True)
class Count:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ServiceSnapshot:
    """The model service as a person or a monitor sees it."""

    service: str  # the id: key hash and model
    label: str  # "gpt-4.1 at https://api.openai.com/v1"
    state: str  # ok, rate_limited or outage
    since: float | None  # when it entered that state (Unix time)
    expected_wait: float  # seconds until requests go again (rate limit), or until the next probe (outage)
    last_failure: str  # during an outage: "HTTP 500", "no connection", ...
    limit_tokens: float | None  # per minute, as learned
    limit_requests: float | None
    remaining_tokens: float | None  # as the last answer said, at `stated_at`
    remaining_requests: float | None
    reset_tokens: float | None  # seconds until full, as the last answer said
    reset_requests: float | None
    stated_at: float | None
    counts: dict[str, Count]  # by Outcome value
    updated_at: float

    @property
    def rate_limited_total(self) -> int:
        """429s the service served (rate limits only; a spent quota counts under `quota`)."""
        return self.counts.get(Outcome.RATE_LIMITED.value, Count()).requests


def snapshot(service: str, label: str, state: ServiceState, counts: Mapping[str, Count], updated_at: float,
             now: float) -> ServiceSnapshot:
    pace, breaker = state.pace, state.breaker
    if breaker.is_open:
        status, since, wait = OUTAGE, breaker.failing_since, breaker.wait(now)
    elif pace.clear_at(now) - now > RATE_LIMITED_AFTER:
        status, since, wait = RATE_LIMITED, pace.waiting_since, pace.clear_at(now) - now
    else:
        status, since, wait = OK, None, 0.0
    stated = pace.stated
    return ServiceSnapshot(
        service=service, label=label, state=status, since=since, expected_wait=wait,
        last_failure=breaker.last_failure if breaker.is_open else "",
        limit_tokens=pace.tokens.limit if pace.tokens else None,
        limit_requests=pace.requests.limit if pace.requests else None,
        remaining_tokens=stated.tokens.remaining if stated and stated.tokens else None,
        remaining_requests=stated.requests.remaining if stated and stated.requests else None,
        reset_tokens=stated.tokens.reset if stated and stated.tokens else None,
        reset_requests=stated.requests.reset if stated and stated.requests else None,
        stated_at=pace.stated_at or None, counts=dict(counts), updated_at=updated_at)


# --- what people read ------------------------------------------------------------------------------


def clock_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%H:%M UTC")


def about(seconds: float) -> str:
    """`under a minute`, `about 2 minutes`, `about 3 hours`."""
    if seconds < 60:
        return "under a minute"
    if seconds < 90 * 60:
        minutes = round(seconds / 60)
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(seconds / 3600)
    return f"about {hours} hour{'s' if hours != 1 else ''}"


def span(seconds: float) -> str:
    """`45 seconds`, `20 minutes`, `6 hours`."""
    unit, size = next(((unit, size) for unit, size in (("hour", 3600), ("minute", 60)) if seconds >= size),
                      ("second", 1))
    count = round(seconds / size)
    return f"{count} {unit}{'s' if count != 1 else ''}"


OPENAI_HOST = "api.openai.com"


def service_name(label: str, *, short: bool = False) -> str:
    """The model service as people read it: `OpenAI` when its base URL is OpenAI's, else `The model service
    (gpt-4.1 at https://llm.example/v1)` (`The model service` with no label); `short`: `OpenAI` or `the model
    service` (inside a sentence)."""
    if label and urlsplit(label.rpartition(" at ")[2]).hostname == OPENAI_HOST:
        return "OpenAI"
    return "the model service" if short else f"The model service ({label})" if label else "The model service"


def rate_limit_text(label: str, wait: float) -> str:
    return f"{service_name(label)} is rate-limiting this key: waiting {about(wait)}."


def down_since(since: float | None, last_failure: str) -> str:
    """` since 14:02 UTC (HTTP 500)`, either part left out when not known."""
    return (f" since {clock_time(since)}" if since is not None else "") + (f" ({last_failure})" if last_failure else "")


def outage_text(label: str, breaker: Breaker) -> str:
    return f"{service_name(label)} has not been answering{down_since(breaker.failing_since, breaker.last_failure)}."


def outage_given_up_text(label: str, breaker: Breaker, waited: float) -> str:
    return f"{outage_text(label, breaker)} I stopped waiting after {span(waited)}: press Retry once it is back."
