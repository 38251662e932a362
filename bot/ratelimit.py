"""Pacing model calls to the provider's rate limits, as pure decisions: the time is always passed in.

OpenAI limits a key, per model, in requests and in tokens per minute; a request is judged by its
estimated tokens before it runs, and one it refuses (429) still counts. This module reads what the
provider says and decides when a request may go:

- `read_headers`: an answer's `x-ratelimit-{limit,remaining,reset}-{tokens,requests}` headers (None
  when the server sends none, or -1/0 as some gateways do; then the bot learns from 429s alone).
- `retry_after`: how long a 429 asks to wait: `retry-after-ms`, `retry-after` (seconds or an HTTP
  date), else "Please try again in 2.5s" in its message. `refusal_limit`: what the message says of
  the limit ("on tokens per min (TPM): Limit 60000, Used 58000, Requested 4250").
- `Bucket`: one limit as a token bucket that refills continuously; its level may go below zero:
  what is promised to requests that reserved a later time to go.
- `Pace`: both buckets of a key plus a block after a 429. `reserve` spends a request's estimated
  tokens BEFORE it is sent and says when it may go (first come, first served); `reserve_ahead` does
  so for an INTERACTIVE request (a person waits for it: a question, a single image), which goes ahead
  of the BULK requests still queued (a plate's images back in the queue with a reserved time): it
  goes as if they were not there, and they go later by what it takes of the limits, so no more is
  sent than the limits allow and the bulk work only finishes later by the interactive requests' cost
  (never ahead of a request waiting in place for its time, `held`: that one cannot move);
  `learn_answer` and `learn_refusal` line the
  buckets up with what the provider said (never more optimistic than the provider; `behind` says by
  how much a lesson moves what was planned); `calibrated`
  learns from answers' usage how many tokens the provider counts per estimated input token.
- `concurrency`, `grown`, `shrunk`: how many requests may be out at once: one until an answer has
  told the limits, all of MODEL_CONCURRENCY once the headers pace them, and for a server without
  headers a window that grows by one per answer and halves on a 429.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from email.utils import parsedate_to_datetime
from typing import Mapping

WINDOW = 60.0  # the limits are per minute; the refill rate is learned from the reset headers when they say more
MAX_BACKOFF = 60.0  # seconds, after 429s in a row that said nothing of when to try again

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_TRY_AGAIN = re.compile(r"try again in ([0-9.hmsuµn]+)", re.IGNORECASE)
_RETRY_AFTER_SECONDS = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_REFUSAL = re.compile(r"on (tokens|requests) per min \((?:TPM|RPM)\): Limit (\d+)(?:, Used (\d+))?"
                      r"(?:, Requested (\d+))?", re.IGNORECASE)


def parse_duration(text: str) -> float | None:
    """`12ms`, `2.5s`, `6m0s`, `1h2m3.5s` (how the headers write durations) or a bare number of
    seconds -> seconds; None for anything else."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


@dataclass(frozen=True)
class Limit:
    """One limit as an answer's headers state it."""

    limit: float  # per minute
    remaining: float
    reset: float | None  # seconds until the bucket is full again


@dataclass(frozen=True)
class RateHeaders:
    tokens: Limit | None
    requests: Limit | None


def _header_limit(headers: Mapping[str, str], kind: str) -> Limit | None:
    try:
        limit = float(headers.get(f"x-ratelimit-limit-{kind}", ""))
        remaining = float(headers.get(f"x-ratelimit-remaining-{kind}", ""))
    except ValueError:
        return None
    if limit <= 0 or remaining < 0:  # Azure and some gateways send -1 or 0: no limit they will tell
        return None
    return Limit(limit, remaining, parse_duration(headers.get(f"x-ratelimit-reset-{kind}", "")))


def read_headers(headers: Mapping[str, str]) -> RateHeaders | None:
    """The limits an answer states (`headers` looked up by lower-case name), or None without any."""
    tokens, requests = _header_limit(headers, "tokens"), _header_limit(headers, "requests")
    return RateHeaders(tokens, requests) if tokens or requests else None


def retry_after(headers: Mapping[str, str], message: str, now: float) -> float | None:
    """Seconds a 429 (or 503) asks to wait, or None when it does not say."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name, "")) * scale)
        except ValueError:
            pass
    when = headers.get("retry-after")
    if when:
        try:
            return max(0.0, parsedate_to_datetime(when).timestamp() - now)
        except (TypeError, ValueError):
            pass
    said = _TRY_AGAIN.search(message or "")
    if said and (seconds := parse_duration(said.group(1).rstrip("."))) is not None:
        return seconds
    said = _RETRY_AFTER_SECONDS.search(message or "")
    return float(said.group(1)) if said else None


@dataclass(frozen=True)
class Refusal:
    """What a 429's message says of the limit it hit."""

    kind: str  # "tokens" or "requests"
    limit: float
    used: float | None
    requested: float | None


def refusal_limit(message: str) -> Refusal | None:
    found = _REFUSAL.search(message or "")
    if not found:
        return None
    kind, limit, used, requested = found.groups()
    return Refusal(kind.lower(), float(limit), float(used) if used else None,
                   float(requested) if requested else None)


@dataclass(frozen=True)
class Bucket:
    """A limit as a token bucket: `limit` at most, refilled at `rate` per second."""

    limit: float
    rate: float
    level: float  # at time `at`; below zero: promised to requests that reserved a later time
    at: float

    def at_time(self, now: float) -> Bucket:
        if now <= self.at:
            return self
        return replace(self, level=min(self.limit, self.level + self.rate * (now - self.at)), at=now)

    def take(self, amount: float, now: float) -> tuple[Bucket, float]:
        """Spend `amount` now; the bucket, and the time at which it had `amount` to give."""
        bucket = self.at_time(now)
        level = bucket.level - amount
        return replace(bucket, level=level), now + max(0.0, -level) / self.rate

    def lowered(self, amount: float) -> Bucket:
        return replace(self, level=self.level - amount)

    def clear_at(self) -> float:
        """When every promise is kept (the level back at zero)."""
        return self.at + max(0.0, -self.level) / self.rate


def _synced(bucket: Bucket | None, stated: Limit | None, now: float, reserved_since: float) -> Bucket | None:
    """The bucket lined up with a limit an answer stated: its size and refill rate as stated, its level
    never above what the provider has left minus what was reserved after that request."""
    if stated is None:
        return bucket
    rate = stated.limit / WINDOW if bucket is None else bucket.rate
    used = stated.limit - stated.remaining
    if stated.reset and used >= 0.01 * stated.limit:  # enough to measure the refill by
        rate = used / stated.reset
    level = stated.remaining - reserved_since
    if bucket is not None:
        level = min(level, bucket.at_time(now).level)
    return Bucket(stated.limit, rate, min(level, stated.limit), now)


def _behind(old: Bucket | None, new: Bucket | None, now: float) -> float:
    """Seconds by which `new` puts the next request later than `old` did (0 without both)."""
    if old is None or new is None:
        return 0.0
    return max(0.0, (old.at_time(now).level - new.at_time(now).level) / new.rate)


def _moved(old: Bucket | None, new: Bucket | None, shift: float, now: float) -> Bucket | None:
    """`new` lowered so that the next request goes `shift` seconds later than `old` planned (a bucket
    learned just now has nothing planned on it yet)."""
    if new is None or old is None:
        return new
    return new.lowered(max(0.0, shift - _behind(old, new, now)) * new.rate)


class Priority(Enum):
    """Who waits for a request: a person (INTERACTIVE: a question, a single image) or nobody in
    particular (BULK: a plate's images, the terminal's classify and eval)."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


@dataclass(frozen=True)
class Queued:
    """The bulk requests still to go at their reserved times: what an interactive request goes ahead of."""

    tokens: float = 0.0
    requests: float = 0.0


@dataclass(frozen=True)
class Mark:
    """How much had been reserved when a request reserved its own (lines its answer up with the others)."""

    tokens: float = 0.0
    requests: float = 0.0


@dataclass(frozen=True)
class Pace:
    """Everything known about one key's (and model's) limits."""

    tokens: Bucket | None = None
    requests: Bucket | None = None
    blocked_until: float = 0.0  # after a 429: no request before then
    no_headers: bool = False  # the server answers without rate-limit headers: learn from 429s alone
    reserved_tokens: float = 0.0  # in all, ever: a request's Mark says how much came after it
    reserved_requests: float = 0.0
    refusals: int = 0  # 429s in a row
    waiting_since: float | None = None  # since when requests have had to wait for the limits (None: they go at once)
    stated: RateHeaders | None = None  # what the last answer's headers said, and when
    stated_at: float = 0.0
    scale: float = 1.0  # input tokens the provider counts per estimated one (learned from usage)
    held_until: float = 0.0  # the latest time given to a request that waits for it in place (it cannot move)

    @property
    def known(self) -> bool:
        return self.tokens is not None or self.requests is not None

    def cost(self, input_estimate: float, output_tokens: float) -> float:
        """What a request will count against the limit: its input estimate as the provider counts, and
        the answer's expected length."""
        return input_estimate * self.scale + output_tokens

    def calibrated(self, input_estimate: float, input_used: float) -> Pace:
        """An answer's usage: move the scale halfway to what this one showed (within 1 to 4). Never below
        the estimate: one kind of request counted for less (a question's text) must not make the next
        (an image) look cheaper than it is, or the requests planned on it reach the limit early."""
        if input_estimate <= 0 or input_used <= 0:
            return self
        seen = min(4.0, max(1.0, input_used / input_estimate))
        return replace(self, scale=(self.scale + seen) / 2)

    def too_large(self, cost: float) -> bool:
        """A request the limit can never let through (it would be refused however long it waits)."""
        return self.tokens is not None and cost > self.tokens.limit

    def reserve(self, now: float, cost: float) -> tuple[Pace, float, Mark]:
        """Spend a request of `cost` tokens now: the pace after it, when the request may go, and its mark."""
        go_at = max(now, self.blocked_until)
        tokens, requests = self.tokens, self.requests
        if tokens is not None:
            tokens, ready = tokens.take(cost, now)
            go_at = max(go_at, ready)
        if requests is not None:
            requests, ready = requests.take(1, now)
            go_at = max(go_at, ready)
        waiting = (now if self.waiting_since is None else self.waiting_since) if go_at > now else None
        pace = replace(self, tokens=tokens, requests=requests, reserved_tokens=self.reserved_tokens + cost,
                       reserved_requests=self.reserved_requests + 1, waiting_since=waiting)
        return pace, go_at, Mark(pace.reserved_tokens, pace.reserved_requests)

    def reserve_ahead(self, now: float, cost: float, bulk: Queued) -> tuple[Pace, float, Mark, float]:
        """Spend an interactive request of `cost` tokens now, ahead of the `bulk` requests queued (they
        must be the LAST reservations in time: none that cannot move goes after them): it may go when the
        limits allow it after every other reservation (the interactive ones before it, first come first
        served, and those waiting in place). The pace after it, when it may go, its mark, and `shift`: how
        much later the bulk requests it overtakes must go, so that no more is sent than the limits allow."""
        if not bulk.requests:
            pace, go_at, mark = self.reserve(now, cost)
            return pace, go_at, mark, 0.0
        present = replace(self, tokens=self.tokens and self.tokens.at_time(now),  # (no refill cut off at the limit)
                          requests=self.requests and self.requests.at_time(now))
        pace, go_at, _ = present.refund(bulk.tokens, bulk.requests).reserve(now, cost)
        shift = max([0.0] + [amount / bucket.rate for bucket, amount in ((pace.tokens, cost), (pace.requests, 1.0))
                             if bucket is not None])
        mark = Mark(pace.reserved_tokens - bulk.tokens, pace.reserved_requests - bulk.requests)  # they go after it
        waiting = now if self.waiting_since is None else self.waiting_since  # the bulk requests still wait
        return replace(pace.refund(-bulk.tokens, -bulk.requests), waiting_since=waiting), go_at, mark, shift

    def held(self, go_at: float) -> Pace:
        """A request waits in place to go at `go_at` (interactive requests go ahead only of what comes after)."""
        return replace(self, held_until=max(self.held_until, go_at))

    def refund(self, cost: float, requests: float) -> Pace:
        """Give back reservations that were never used (their time passed unsent)."""
        return replace(self, tokens=self.tokens and self.tokens.lowered(-cost),
                       requests=self.requests and self.requests.lowered(-requests))

    def learn_answer(self, now: float, headers: RateHeaders | None, mark: Mark) -> Pace:
        """An answer came (any status but 429): what its headers say of the limits."""
        if headers is None:
            return replace(self, no_headers=not self.known, refusals=0)
        return replace(self, tokens=_synced(self.tokens, headers.tokens, now, self.reserved_tokens - mark.tokens),
                       requests=_synced(self.requests, headers.requests, now, self.reserved_requests - mark.requests),
                       no_headers=False, refusals=0, stated=headers, stated_at=now)

    def learn_refusal(self, now: float, headers: RateHeaders | None, wait: float | None, refusal: Refusal | None,
                      cost: float, mark: Mark, jitter: float) -> tuple[Pace, float]:
        """A 429 (a rate limit, not a spent quota): the pace after it, and how much later the requests
        already given a time go now (`shift`): by the block the 429 asks for, or by how far behind the
        plan the provider's own count puts the buckets, whichever is more. `jitter` in [0, 1)."""
        learned = self if headers is None else self.learn_answer(now, headers, mark)
        if refusal and headers is None:  # a server that says it only in the message
            learned = learned._learn_from_message(refusal, now, mark, wait)
        if wait is None:
            wait = learned._refill_wait(now, cost, refusal.kind if refusal else "tokens") or \
                min(MAX_BACKOFF, 2.0 ** learned.refusals)
        blocked_until = max(learned.blocked_until, now + wait * (1 + 0.25 * jitter))
        shift = max(self.behind(learned, now), blocked_until - max(self.blocked_until, now))
        return replace(learned, blocked_until=blocked_until, refusals=learned.refusals + 1,
                       waiting_since=now if learned.waiting_since is None else learned.waiting_since,
                       tokens=_moved(self.tokens, learned.tokens, shift, now),
                       requests=_moved(self.requests, learned.requests, shift, now)), shift

    def behind(self, learned: Pace, now: float) -> float:
        """Seconds by which what was `learned` puts the next request later than this pace did: how much too
        optimistic the plan was (the requests already given a time should move by as much)."""
        return max(_behind(self.tokens, learned.tokens, now), _behind(self.requests, learned.requests, now))

    def _learn_from_message(self, refusal: Refusal, now: float, mark: Mark, wait: float | None) -> Pace:
        """The limit a 429's message states; its refill rate from how long it asks to wait for the
        tokens (or requests) it was short of."""
        used = refusal.used if refusal.used is not None else refusal.limit  # not said: take it as spent
        stated = Limit(refusal.limit, max(0.0, refusal.limit - used), None)
        kind = "requests" if refusal.kind == "requests" else "tokens"
        since = getattr(self, f"reserved_{kind}") - getattr(mark, kind)
        bucket = _synced(getattr(self, kind), stated, now, since)
        short = (refusal.requested or 0) - stated.remaining
        if bucket is not None and wait and short > 0 and refusal.used is not None:
            bucket = replace(bucket, rate=short / wait)
        return replace(self, **{kind: bucket})

    def _refill_wait(self, now: float, cost: float, kind: str) -> float:
        """Seconds until the bucket of `kind` has room for the request again (0 if unknown)."""
        bucket, needed = (self.requests, 1.0) if kind == "requests" else (self.tokens, cost)
        return max(0.0, (needed - bucket.at_time(now).level) / bucket.rate) if bucket else 0.0

    def clear_at(self, now: float) -> float:
        """When a request could go at once again (every reservation kept and any block over)."""
        times = [now, self.blocked_until] + [bucket.clear_at() for bucket in (self.tokens, self.requests) if bucket]
        return max(times)


def concurrency(pace: Pace, window: float, ceiling: int) -> int:
    """Requests that may be out at once: one until an answer told the limits; all once headers pace
    them; for a server without headers, the window learned from its answers and 429s."""
    if pace.known:
        return ceiling
    if pace.no_headers:
        return max(1, min(ceiling, int(window)))
    return 1


def grown(window: float, ceiling: int) -> float:
    """After an answer: one more request out at once (up to the ceiling)."""
    return min(float(ceiling), window + 1)


def shrunk(window: float) -> float:
    """After a 429: half as many requests out at once (at least one)."""
    return max(1.0, window / 2)
