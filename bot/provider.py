"""The model service as every request meets it: one shared budget and one circuit breaker.

bot/classifier.py's ModelGateway asks `admit` before every request (classifications, plate images,
follow-up questions, the CLI's classify and eval) and reports what became of it with `finish`.
The decisions are bot/ratelimit.py's (pacing) and bot/breaker.py's (outages); the state they decide
on is one row per API key and model in the database (bot/service_state.py), changed under the row's
lock, so every process on the database shares one budget and one breaker, and a restart keeps what
was learned. `admit`:

1. waits for room among the requests out at once in this process (bot.ratelimit.concurrency: one
   until an answer has told the limits);
2. in one transaction: the breaker (open: wait for the next probe, or be the probe), then the
   request's estimated tokens spent from the buckets (or the time reserved for it earlier, a
   "ticket", used), which says when it may go. Its priority says where it queues: a BULK request
   (a plate's image, the CLI) after every reservation, first come first served; an INTERACTIVE one
   (a question in a thread, a single image, its Retry) ahead of the bulk requests' tickets, which
   move later by what it takes of the limits (bot.ratelimit.Pace.reserve_ahead);
3. sleeps until then if that is within its patience; otherwise raises ProviderWait: the job goes
   back to the queue, due shortly before its time (which stays reserved for it, by request key),
   or, in an outage, around the next probe. With no patience (None, the CLI) it always sleeps.

`finish` counts the outcome, learns from the answer's headers (or the 429's), moves the breaker,
and, when the service is back after an outage, makes every job waiting for it due at once.

For other modules: `snapshots(store)` gives every service's ServiceSnapshot (state, since, expected
wait, limits, counters), from any process.
"""
from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from bot.breaker import Breaker, BreakerPolicy
from bot.models import Usage
from bot.queue import Wait
from bot.ratelimit import (Mark, Pace, Priority, concurrency, grown, read_headers, refusal_limit, retry_after,
                           shrunk)
from bot.redact import redact_url
from bot.service_state import (WAIT_OUTAGE, WAIT_RATE_LIMIT, Outcome, ServiceSnapshot, ServiceState, about,
                               outage_given_up_text, outage_text, rate_limit_text, snapshot, state_from_json,
                               state_to_json)
from bot.store import Store
from bot.store.provider import ServiceRecord

log = logging.getLogger(__name__)

RATE_LIMIT, OUTAGE = WAIT_RATE_LIMIT, WAIT_OUTAGE  # why a job waits (jobs.waiting)
TICKET_GRACE = 600.0  # seconds a reserved time is kept for a request that comes back late
EARLY = 1.0  # a job waiting for its reserved time comes back this much before it, to be on time


class ProviderWait(Wait):
    """A model request cannot go yet (the rate limit, an outage): the job waits in the queue without
    spending an attempt. str() says why, for people."""


@dataclass(frozen=True)
class ServiceKey:
    service: str  # the id: a hash of the base URL and the API key (never the key), and the model
    label: str  # for people and logs: "gpt-4.1 at https://api.openai.com/v1"


def service_key(base_url: str, api_key: str, model: str) -> ServiceKey:
    account = hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()[:16]
    return ServiceKey(f"{account}:{model}", f"{model} at {redact_url(base_url)}")


@dataclass(frozen=True)
class Permit:
    """A request admitted: what `finish` needs to account for it."""

    key: ServiceKey
    input_estimate: float
    cost: float  # what was spent from the budget for it
    mark: Mark
    probe: bool


@dataclass(frozen=True)
class ServicePolicy:
    concurrency: int = 64  # MODEL_CONCURRENCY: requests out at once in one process, at most
    breaker: BreakerPolicy = BreakerPolicy()
    outage_max: float = 6 * 3600.0  # MODEL_OUTAGE_MAX: a job waits this long for the service to come back
    # a request that waits for room goes this much after the limits allow it: the service then keeps a little
    # room at each request (the same for all, so the pace is unchanged), and a request that reaches it a
    # little early (network, a busy machine, an estimate short by a few tokens) is not refused
    send_margin: float = 0.25


@dataclass
class _Local:
    """This process's view of one service: its requests out, and the window for a server without headers."""

    pace: Pace
    in_flight: int = 0
    window: float = 1.0
    changed: threading.Condition = field(default_factory=threading.Condition)


@dataclass(frozen=True)
class _Admission:
    go_at: float | None  # None: not now
    wait: ProviderWait | None
    cost: float = 0.0
    mark: Mark = Mark()
    probe: bool = False


class ModelService:
    def __init__(self, store: Store, base_url: str, api_key: str, policy: ServicePolicy, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 spread: Callable[[], float] = random.random) -> None:
        self.store = store
        self.base_url = base_url
        self.policy = policy
        self.patience: float | None = None  # None: wait in place however long (the CLI)
        self.on_recovery: Callable[[], None] = lambda: None
        self._api_key = api_key
        self._clock, self._sleep, self._spread = clock, sleep, spread
        self._locals: dict[str, _Local] = {}
        self._lock = threading.Lock()

    def hand_back_after(self, seconds: float, on_recovery: Callable[[], None]) -> None:
        """In the bot: a wait longer than `seconds` raises ProviderWait (the job goes back to the queue);
        `on_recovery` is told when the service is back after an outage (to look for due jobs)."""
        self.patience = seconds
        self.on_recovery = on_recovery

    def key(self, model: str) -> ServiceKey:
        return service_key(self.base_url, self._api_key, model)

    # --- before a request -------------------------------------------------------------------------

    def admit(self, model: str, request_key: str, input_estimate: float, output_tokens: float,
              priority: Priority = Priority.BULK) -> Permit:
        """May a request of about `input_estimate` input and `output_tokens` output tokens go? Sleeps until
        it may (within the patience), else raises ProviderWait. Raises TooLarge for a request the limit can
        never let through. An INTERACTIVE request goes ahead of the bulk requests queued."""
        key = self.key(model)
        deadline = None if self.patience is None else self._clock() + self.patience
        local = self._local(key)
        self._take_room(key, local, deadline)
        try:
            while True:
                admission = self._admission(key, local, request_key, (input_estimate, output_tokens), priority,
                                            deadline)
                if admission.go_at is not None:
                    self._sleep(max(0.0, admission.go_at - self._clock()))
                    return Permit(key, input_estimate, admission.cost, admission.mark, admission.probe)
                assert admission.wait is not None
                if deadline is not None and self._clock() + admission.wait.retry_after > deadline:
                    raise admission.wait
                self._sleep(admission.wait.retry_after)
        except BaseException:
            self._give_room(local)
            raise

    def _take_room(self, key: ServiceKey, local: _Local, deadline: float | None) -> None:
        with local.changed:
            while local.in_flight >= concurrency(local.pace, local.window, self.policy.concurrency):
                left = None if deadline is None else deadline - self._clock()
                if left is not None and left <= 0:
                    raise ProviderWait(f"{key.label}: waiting for a request out to be answered", reason=RATE_LIMIT,
                                       retry_after=EARLY)
                local.changed.wait(left)
            local.in_flight += 1

    def _give_room(self, local: _Local) -> None:
        with local.changed:
            local.in_flight -= 1
            local.changed.notify_all()

    def _admission(self, key: ServiceKey, local: _Local, request_key: str, size: tuple[float, float],
                   priority: Priority, deadline: float | None) -> _Admission:
        with self.store.model_service(key.service, key.label) as record:
            state = state_from_json(record.state_json)
            now = self._clock()
            refund, expired = record.drop_expired_tickets(now)
            pace = state.pace.refund(refund, expired) if expired else state.pace
            breaker, wait, probe = state.breaker.admit(now, self.policy.breaker, self._spread())
            cost = pace.cost(*size)
            if wait > 0:
                admission = _Admission(None, self._outage_wait(key, state.breaker, wait))
                breaker = state.breaker
            elif pace.too_large(cost):
                raise TooLarge(cost, pace.tokens.limit if pace.tokens else 0)
            else:
                pace, admission = self._spend(record, pace, request_key, cost, priority, now, deadline, key)
                if admission.go_at is None:
                    breaker = state.breaker  # not sent now: no probe taken
                else:
                    admission = replace(admission, probe=probe)
            record.state_json = state_to_json(ServiceState(pace, breaker))
        local.pace = pace
        return admission

    def _spend(self, record: ServiceRecord, pace: Pace, request_key: str, cost: float, priority: Priority,
               now: float, deadline: float | None, key: ServiceKey) -> tuple[Pace, _Admission]:
        """The request's time: its ticket if it holds one, else a reservation now (an interactive one ahead
        of the bulk tickets, which move later by as much; kept as a ticket when it is beyond the patience,
        so the job finds it when it comes back)."""
        ticket = record.ticket(request_key)
        if ticket is not None:
            go_at = max(ticket[0], pace.blocked_until)
            mark = Mark(pace.reserved_tokens, pace.reserved_requests)
        elif priority is Priority.INTERACTIVE:  # ahead of the bulk tickets after those waiting in place
            after = max(now, pace.held_until)
            pace, go_at, mark, shift = pace.reserve_ahead(now, cost, record.bulk_queued(after))
            if shift > 0:
                record.shift_tickets(shift, bulk_after=after)
        else:
            pace, go_at, mark = pace.reserve(now, cost)
        if ticket is None and go_at > now:
            go_at += self.policy.send_margin
        if deadline is None or go_at <= deadline:
            if ticket is not None:
                record.drop_ticket(request_key)
            return pace.held(go_at), _Admission(go_at, None, cost, mark)
        record.add_ticket(request_key, go_at, cost, go_at + TICKET_GRACE, priority)
        wait = go_at - now
        return pace, _Admission(None, ProviderWait(rate_limit_text(key.label, wait), reason=RATE_LIMIT,
                                                   retry_after=max(0.0, wait - EARLY)))

    def outage_wait(self, model: str, breaker: Breaker) -> ProviderWait:
        """The job waits for the service to answer again: due around the next probe."""
        return self._outage_wait(self.key(model), breaker, breaker.wait(self._clock()))

    def _outage_wait(self, key: ServiceKey, breaker: Breaker, wait: float) -> ProviderWait:
        retry = wait * (1 + 0.1 * self._spread()) + 0.05 * self._spread()  # spread: one of them is the probe
        return ProviderWait(outage_text(key.label, breaker), reason=OUTAGE, retry_after=retry,
                            limit=self.policy.outage_max,
                            give_up_reason=outage_given_up_text(key.label, breaker, self.policy.outage_max))

    def pause(self, seconds: float) -> None:
        """A short backoff before a failed request is tried again (never beyond the patience)."""
        self._sleep(seconds if self.patience is None else min(seconds, self.patience))

    # --- after a request --------------------------------------------------------------------------

    def abandon(self, permit: Permit) -> None:
        """A request the bot itself failed around (its outcome unknown): the room given back, nothing learned."""
        self._give_room(self._local(permit.key))

    def finish(self, permit: Permit, outcome: Outcome, *, headers: Mapping[str, str] | None = None,
               message: str = "", usage: Usage | None = None, what: str = "") -> ServiceState:
        """Account for a request's outcome; the service's state after it. `what` names a failure for
        people ("HTTP 500"); `message` is a 429's error message."""
        try:
            before, after = self._accounted(permit, outcome, headers, message, usage or Usage(), what)
        finally:
            self._give_room(self._local(permit.key))
        self._learned(permit, outcome, before, after)
        return after

    def _accounted(self, permit: Permit, outcome: Outcome, headers: Mapping[str, str] | None, message: str,
                   usage: Usage, what: str) -> tuple[ServiceState, ServiceState]:
        key = permit.key
        stated = read_headers(headers) if headers is not None else None
        with self.store.model_service(key.service, key.label) as record:
            before = state_from_json(record.state_json)
            now = self._clock()
            pace, breaker = before.pace, before.breaker
            record.count(outcome.value, usage.input_tokens, usage.output_tokens)
            if outcome is Outcome.ANSWERED:
                pace = pace.calibrated(permit.input_estimate, usage.input_tokens)
            if outcome is Outcome.RATE_LIMITED:
                pace, shift = pace.learn_refusal(now, stated, retry_after(headers or {}, message, now),
                                                 refusal_limit(message), permit.cost, permit.mark, self._spread())
                if shift > 0:
                    record.shift_tickets(shift)
                breaker = breaker.succeeded()
            elif outcome.is_failure:
                pace = pace.learn_answer(now, stated, permit.mark) if stated else pace
                breaker = breaker.failed(now, what, self.policy.breaker, self._spread(), probe=permit.probe)
            else:
                if stated or outcome is Outcome.ANSWERED:
                    pace = pace.learn_answer(now, stated, permit.mark)
                breaker = breaker.succeeded()
            if outcome is not Outcome.RATE_LIMITED and (lag := before.pace.behind(pace, now)) > 0:
                record.shift_tickets(lag)  # the provider has less left than planned: what is planned moves
            after = ServiceState(pace, breaker)
            record.state_json = state_to_json(after)
        return before, after

    def _learned(self, permit: Permit, outcome: Outcome, before: ServiceState, after: ServiceState) -> None:
        """This process's view after a request; the log and the waiting jobs told of the breaker's moves."""
        local = self._local(permit.key)
        with local.changed:
            local.pace = after.pace
            if outcome is Outcome.RATE_LIMITED:
                local.window = shrunk(local.window)
            elif outcome is Outcome.ANSWERED:
                local.window = grown(local.window, self.policy.concurrency)
            local.changed.notify_all()
        label = permit.key.label
        if not before.breaker.is_open and after.breaker.is_open:
            log.warning("%s: %s failures in a row (the last: %s); sending only a probe every %.0f-%.0f s until it "
                        "answers", label, after.breaker.failures, after.breaker.last_failure,
                        self.policy.breaker.probe_every, 2 * self.policy.breaker.probe_every)
        if before.breaker.is_open and not after.breaker.is_open:
            woken = self.store.wake_waiting(OUTAGE)
            down_since = before.breaker.failing_since
            log.warning("%s answers again after %s; %s waiting jobs resumed", label,
                        about(self._clock() - (self._clock() if down_since is None else down_since)), woken)
            self.on_recovery()

    # --- state ------------------------------------------------------------------------------------

    def _local(self, key: ServiceKey) -> _Local:
        with self._lock:
            if key.service not in self._locals:
                self._locals[key.service] = _Local(self._state(key).pace)
            return self._locals[key.service]

    def _state(self, key: ServiceKey) -> ServiceState:
        rows = [row for row in self.store.model_services() if row.service == key.service]
        return state_from_json(rows[0].state_json) if rows else ServiceState()


class TooLarge(Exception):
    """A request larger than the key's tokens per minute: no wait lets it through."""

    def __init__(self, cost: float, limit: float) -> None:
        super().__init__(f"This request needs about {cost:,.0f} tokens, more than the key's limit of "
                         f"{limit:,.0f} tokens per minute: ask about fewer images, or raise the limit.")


def snapshots(store: Store, now: float | None = None) -> list[ServiceSnapshot]:
    """Every model service the bot has used, as it stands now (any process may call this)."""
    now = time.time() if now is None else now
    return [snapshot(row.service, row.label, state_from_json(row.state_json), row.counts, row.updated_at, now)
            for row in store.model_services()]
