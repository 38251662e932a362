"""bot/provider.py's ModelService on a real store (SQLite and PostgreSQL) with a clock the test moves:
one budget for every process on a database, reserved times kept for jobs that went back to the queue,
the breaker shared, limits that survive a restart."""
from __future__ import annotations

import time

import pytest

from bot.breaker import BreakerPolicy
from bot.models import Usage
from bot.provider import OUTAGE, RATE_LIMIT, ModelService, ProviderWait, ServicePolicy, TooLarge, snapshots
from bot.ratelimit import Priority
from bot.service_state import OK, OUTAGE as OUTAGE_STATE, RATE_LIMITED, Outcome
from bot.store import open_store

STATED = {"x-ratelimit-limit-tokens": "60000", "x-ratelimit-remaining-tokens": "55700",
          "x-ratelimit-reset-tokens": "4.3s", "x-ratelimit-limit-requests": "500",
          "x-ratelimit-remaining-requests": "499", "x-ratelimit-reset-requests": "120ms"}
POLICY = ServicePolicy(concurrency=64, breaker=BreakerPolicy(failures=2, probe_every=30.0, probe_lease=70.0),
                       outage_max=3600.0, send_margin=0.0)  # times exactly as the limits allow


class Clock:
    """The time as the test sets it; sleeping moves it on at once."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


def service(store, clock: Clock, patience: float | None = 20.0) -> ModelService:
    """One process's ModelService (several share the store as processes share the database)."""
    model_service = ModelService(store, "https://api.openai.com/v1", "sk-test", POLICY, clock=clock,
                                 sleep=clock.sleep, spread=lambda: 0.5)
    if patience is not None:
        model_service.hand_back_after(patience, lambda: None)
    return model_service


def answered(model_service: ModelService, request_key: str, cost: float = 4300) -> float:
    """Admit and answer one request with the headers above; when it went."""
    permit = model_service.admit("gpt-4.1", request_key, cost, 0)
    went = model_service._clock()
    model_service.finish(permit, Outcome.ANSWERED, headers=STATED, usage=Usage(int(cost), 0, 100))
    return went


def test_two_processes_on_one_database_share_one_budget(store) -> None:
    clock = Clock()
    first, second = service(store, clock, patience=None), service(store, clock, patience=None)
    answered(first, "teach")  # the first answer tells the limits (55,700 left)
    sent = [answered(process, f"image {n}") for n in range(16) for process in (first, second)][:16]
    gaps = [later - earlier for earlier, later in zip(sent, sent[1:])]
    assert sent[:12] == [sent[0]] * 12  # 12 x 4,300 fit in the 55,700 left
    assert gaps[11:] == pytest.approx([0.2, 4.3, 4.3, 4.3])  # then the key's rate, whichever process asks


def test_a_wait_beyond_the_patience_goes_back_to_the_queue_with_its_time_kept(store) -> None:
    clock = Clock()
    bot, other = service(store, clock, patience=10.0), service(store, clock, patience=0.0)
    answered(bot, "teach")
    answered(bot, "all that is left", cost=55700)
    waits = []
    for n in range(4):  # jobs of another process, all at once: each a later time, kept for it
        with pytest.raises(ProviderWait) as waited:
            other.admit("gpt-4.1", f"late {n}", 4300, 0)
        waits.append(waited.value)
    assert all(wait.reason == RATE_LIMIT and wait.limit is None for wait in waits)
    assert "is rate-limiting this key: waiting under a minute" in str(waits[-1])
    assert [wait.retry_after for wait in waits] == pytest.approx([3.3, 7.6, 11.9, 16.2])  # 1 s early
    start = clock.now
    clock.now += waits[-1].retry_after  # the last comes back (in this process) a little early...
    permit = bot.admit("gpt-4.1", "late 3", 4300, 0)  # ...finds its time and sleeps the rest
    assert permit.cost == 4300 and clock.now == pytest.approx(start + 17.2)
    bot.finish(permit, Outcome.ANSWERED, headers=STATED)
    with pytest.raises(ProviderWait) as newcomer:
        other.admit("gpt-4.1", "new", 4300, 0)
    assert newcomer.value.retry_after == pytest.approx(4.3 - 1.0)  # after the last time given out


def test_an_answer_that_says_less_is_left_moves_every_reserved_time(store) -> None:
    clock = Clock()
    bot, parked = service(store, clock, patience=None), service(store, clock, patience=0.0)
    answered(bot, "teach")
    permit = bot.admit("gpt-4.1", "spent more than planned", 4300, 0)
    answered(bot, "all that is left", cost=51400)
    with pytest.raises(ProviderWait) as before:
        parked.admit("gpt-4.1", "late", 4300, 0)
    bot.finish(permit, Outcome.ANSWERED, headers={**STATED, "x-ratelimit-remaining-tokens": "49400",
                                                  "x-ratelimit-reset-tokens": "10.6s"})  # 2,000 fewer than planned
    with pytest.raises(ProviderWait) as after:
        parked.admit("gpt-4.1", "late", 4300, 0)
    assert after.value.retry_after == pytest.approx(before.value.retry_after + 2.0)


def parked_wait(model_service: ModelService, request_key: str, cost: float = 4300,
                priority: Priority = Priority.BULK) -> float:
    """A request of a process that waits for nothing (patience 0): in how long its job comes back."""
    with pytest.raises(ProviderWait) as waited:
        model_service.admit("gpt-4.1", request_key, cost, 0, priority)
    return waited.value.retry_after


def test_questions_go_ahead_of_a_plates_reserved_times_which_move_by_their_cost(store) -> None:
    clock = Clock()
    bot, parked = service(store, clock, patience=10.0), service(store, clock, patience=0.0)
    in_place = ModelService(store, "https://api.openai.com/v1", "sk-test", POLICY, clock=clock,
                            sleep=lambda seconds: None)  # waits in its worker (the test's clock stays)
    in_place.hand_back_after(10.0, lambda: None)
    answered(bot, "teach")
    answered(bot, "all that is left", cost=55700)
    start = clock.now
    in_place.admit("gpt-4.1", "well 0", 4300, 0)  # goes in 4.3 s, waiting in place: it cannot move
    wells = [parked_wait(parked, f"well {n}") for n in range(1, 4)]
    assert wells == pytest.approx([7.6, 11.9, 16.2])  # back 1 s before 8.6, 12.9, 17.2 s

    questions = [parked_wait(parked, f"question {n}", 1000, Priority.INTERACTIVE) for n in range(2)]

    assert questions == pytest.approx([4.3, 5.3])  # after the well in place, one after the other, 1 s each
    assert [parked_wait(parked, f"well {n}") for n in range(1, 4)] == pytest.approx([9.6, 13.9, 18.2])
    assert parked_wait(parked, "the next plate") == pytest.approx(17.2 + 2.0 + 4.3 - 1.0)  # after them all
    clock.now = start + 5.3 - 1.0  # the second question's job comes back a little early...
    permit = bot.admit("gpt-4.1", "question 1", 1000, 0, Priority.INTERACTIVE)  # ...and keeps its time
    assert clock.now == pytest.approx(start + 6.3) and permit.cost == 1000


def test_limits_learned_survive_a_restart(store) -> None:
    clock = Clock()
    answered(service(store, clock), "teach")
    (shown,) = snapshots(store, clock.now)
    assert (shown.limit_tokens, shown.limit_requests, shown.remaining_tokens) == (60000, 500, 55700)
    assert shown.counts["answered"].requests == 1 and shown.counts["answered"].input_tokens == 4300
    restarted = service(store, clock)
    permits = [restarted.admit("gpt-4.1", f"image {n}", 4300, 0) for n in range(5)]  # at once: not one at a time
    assert len(permits) == 5 and clock.slept == [0.0] * 6


def test_until_an_answer_tells_the_limits_one_request_at_a_time(store) -> None:
    clock = Clock()
    bot = service(store, clock, patience=0.0)
    bot.admit("gpt-4.1", "first", 4300, 0)
    with pytest.raises(ProviderWait) as waited:
        bot.admit("gpt-4.1", "second", 4300, 0)
    assert waited.value.reason == RATE_LIMIT


def test_a_request_larger_than_the_limit_is_refused_at_once(store) -> None:
    clock = Clock()
    bot = service(store, clock)
    answered(bot, "teach")
    with pytest.raises(TooLarge, match="60,000 tokens per minute"):
        bot.admit("gpt-4.1", "huge", 70000, 0)


def test_429s_are_counted_and_move_every_reserved_time(store) -> None:
    clock = Clock()
    bot, parked = service(store, clock, patience=None), service(store, clock, patience=0.0)
    answered(bot, "teach")
    answered(bot, "all that is left", cost=55700)
    permit = bot.admit("gpt-4.1", "refused", 4300, 0)  # waits 4.3 s for its turn
    with pytest.raises(ProviderWait) as before:
        parked.admit("gpt-4.1", "late", 4300, 0)
    bot.finish(permit, Outcome.RATE_LIMITED, headers={**STATED, "x-ratelimit-remaining-tokens": "0",
                                                      "retry-after-ms": "9000"},
               message="Rate limit reached ... Please try again in 9s.")
    (shown,) = snapshots(store, clock.now)
    assert shown.state == RATE_LIMITED and shown.rate_limited_total == 1 and shown.remaining_tokens == 0
    clock.now += before.value.retry_after  # back when it was due before the 429
    with pytest.raises(ProviderWait) as after:
        parked.admit("gpt-4.1", "late", 4300, 0)
    assert after.value.retry_after == pytest.approx(9 * 1.125)  # its time moved by the block


def test_an_outage_opens_the_breaker_for_every_process_and_its_end_wakes_the_waiting_jobs(store) -> None:
    clock = Clock()
    first, second = service(store, clock), service(store, clock)
    woken: list[bool] = []
    first.hand_back_after(20.0, lambda: woken.append(True))
    for process in (first, second):
        permit = process.admit("gpt-4.1", "failing", 4300, 0)
        process.finish(permit, Outcome.SERVER_ERROR, what="HTTP 500")
    with pytest.raises(ProviderWait) as waited:
        second.admit("gpt-4.1", "new upload", 4300, 0)
    wait = waited.value
    assert (wait.reason, wait.limit) == (OUTAGE, 3600.0) and "has not been answering since" in str(wait)
    assert "HTTP 500" in str(wait) and "press Retry" in wait.give_up_reason
    assert snapshots(store, clock.now)[0].state == OUTAGE_STATE

    job = store.enqueue("image", "C1", "1.0", "1.0", "F1", "a.jpeg", "U1", {})
    store.claim("me", 60, 1)
    store.wait_job(job, 600.0, OUTAGE, str(wait))
    clock.now += wait.retry_after
    probe = first.admit("gpt-4.1", "new upload", 4300, 0)  # the one probe
    assert probe.probe
    with pytest.raises(ProviderWait):
        second.admit("gpt-4.1", "another", 4300, 0)  # nothing else while it is out
    first.finish(probe, Outcome.ANSWERED, headers=STATED)
    assert woken == [True] and store.job(job).run_after <= time.time()  # due now, not in 10 minutes
    assert snapshots(store, clock.now)[0].state == OK
