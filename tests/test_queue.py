"""bot.queue against a real store (SQLite and PostgreSQL): jobs run once, faults are retried with
backoff, a spent budget ends in give_up, a dead process's jobs are taken up again, stop hands back."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from bot.models import Job
from bot.queue import UNEXPECTED, JobQueue, QueueSettings, RetryLater, RetryPolicy, Wait
from bot.slack.posting import ChannelPacer
from bot.store import open_store

FAST = QueueSettings(workers=8, lease_seconds=2.0, poll_seconds=0.05, retry=RetryPolicy(3, base_delay=0.05))


class Recorder:
    """A handler that records runs; `faults` makes the first runs of a job raise RetryLater."""

    def __init__(self, store, faults: int = 0, seconds: float = 0.0) -> None:
        self.store, self.faults, self.seconds = store, faults, seconds
        self.runs: Counter[int] = Counter()
        self.given_up: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def run(self, job: Job) -> None:
        with self.lock:
            self.runs[job.id] += 1
            attempt = self.runs[job.id]
        time.sleep(self.seconds)
        if attempt <= self.faults:
            raise RetryLater("service busy", retry_after=0.05)
        self.store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.given_up.append((job.id, reason))
        self.store.finish_job(job.id, "failed", error=reason)


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


def enqueue(store, count: int) -> list[int]:
    return [store.enqueue("question", "C1", f"1.{n}", f"1.{n}", "question", "q", "U1", {}) for n in range(count)]


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def run_queue(store, handler, settings: QueueSettings = FAST) -> JobQueue:
    queue = JobQueue(store, {"question": handler}, settings)
    queue.start()
    return queue


def test_backoff_doubles_up_to_a_cap_and_honours_retry_after():
    policy = RetryPolicy(max_attempts=5, base_delay=2, max_delay=30)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]
    assert policy.delay(1, retry_after=20) == 20 and policy.delay(3, retry_after=1) == 8


def test_the_pacer_lets_a_burst_through_then_one_post_a_second_per_channel():
    now = [0.0]
    pacer = ChannelPacer(interval=1.0, burst=3, clock=lambda: now[0])
    assert [pacer.reserve("C1") for _ in range(5)] == [0, 0, 0, 1, 2]
    assert pacer.reserve("C2") == 0  # channels are paced apart
    now[0] = 10.0  # a quiet spell refills the burst
    assert [pacer.reserve("C1") for _ in range(4)] == [0, 0, 0, 1]


def test_every_job_runs_once(store):
    handler = Recorder(store)
    ids = enqueue(store, 30)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert dict(handler.runs) == {job_id: 1 for job_id in ids}


def test_faults_are_retried_with_backoff_until_the_job_succeeds(store):
    handler = Recorder(store, faults=2)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert handler.runs[job_id] == 3 and handler.given_up == []
    assert (store.job(job_id).state, store.job(job_id).attempts) == ("done", 3)


def test_a_spent_budget_gives_up_with_the_last_fault(store):
    handler = Recorder(store, faults=99)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert handler.given_up == [(job_id, "service busy")] and handler.runs[job_id] == 3
    assert store.job(job_id).state == "failed"


def test_an_unexpected_error_is_retried_too(store):
    class Buggy(Recorder):
        def run(self, job: Job) -> None:
            self.runs[job.id] += 1
            if self.runs[job.id] == 1:
                raise KeyError("surprise")
            super().run(job)

    handler = Buggy(store)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert store.job(job_id).state == "done"


def test_an_unexpected_error_reaches_give_up_as_words_for_people_never_as_exception_text(store):
    class Broken(Recorder):
        def run(self, job: Job) -> None:
            raise ValueError("Unterminated string starting at: line 1 column 87 (char 86)")

    handler = Broken(store)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert handler.given_up == [(job_id, UNEXPECTED)]
    assert "ValueError" not in store.job(job_id).error and "Unterminated" not in store.job(job_id).error


class Waiter(Recorder):
    """Waits for a service `waits` times (RetryLater `faults` times first), then finishes."""

    def __init__(self, store, waits: int, faults: int = 0, limit: float | None = None) -> None:
        super().__init__(store, faults=faults)
        self.waits, self.limit = waits, limit
        self.seen: list[tuple[str | None, int]] = []

    def run(self, job: Job) -> None:
        with self.lock:
            self.runs[job.id] += 1
            run = self.runs[job.id]
            self.seen.append((job.waiting, job.attempts))
        if run <= self.faults:
            raise RetryLater("a fault of the job")
        if run <= self.faults + self.waits:
            raise Wait("the service is down", reason="outage", retry_after=0.02, limit=self.limit,
                       give_up_reason="it stayed down: press Retry")
        self.store.finish_job(job.id, "done")


def test_a_job_waiting_for_a_service_spends_no_attempt_and_is_marked_meanwhile(store):
    handler = Waiter(store, waits=6, faults=1)  # more waits than the 3 attempts allow
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    job = store.job(job_id)
    assert (job.state, job.attempts, job.waiting, job.waiting_since) == ("done", 2, None, None)
    assert handler.given_up == [] and handler.runs[job_id] == 8
    assert handler.seen[2:] == [("outage", 2)] * 6  # every run after the first wait: marked, still attempt 2


def test_a_wait_is_recorded_for_the_queue_to_count(store):
    (job_id,) = enqueue(store, 1)
    store.claim("me", 60, 1)
    store.wait_job(job_id, 30.0, "rate_limit", "about a minute")
    (waiting,) = store.provider_waits(channel="C1", message_ts="1.0")
    assert (waiting.reason, waiting.jobs) == ("rate_limit", 1)
    assert waiting.until - waiting.since == pytest.approx(30.0, abs=1)
    assert store.job(job_id).attempts == 0 and store.claim("me", 60, 1) == []  # not due yet
    assert store.wake_waiting("outage") == 0 and store.wake_waiting("rate_limit") == 1
    assert [job.id for job in store.claim("me", 60, 1)] == [job_id]


def test_a_job_that_waited_past_its_limit_is_given_up_with_the_waits_words(store):
    handler = Waiter(store, waits=99, limit=0.2)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert handler.given_up == [(job_id, "it stayed down: press Retry")] and handler.runs[job_id] >= 2  # waited first


def test_the_jobs_of_a_process_that_died_are_finished_after_one_lease(store):
    ids = enqueue(store, 3)
    store.claim("process that was killed", 0.5, 3)
    handler = Recorder(store)
    started = time.monotonic()
    queue = run_queue(store, handler)
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    assert dict(handler.runs) == {job_id: 1 for job_id in ids}
    assert 0.4 < time.monotonic() - started < 5


def test_a_running_job_keeps_its_lease_past_the_lease_period(store):
    handler = Recorder(store, seconds=1.5)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, handler, QueueSettings(workers=2, lease_seconds=0.6, poll_seconds=0.05))
    other = run_queue(store, Recorder(store), QueueSettings(workers=2, lease_seconds=0.6, poll_seconds=0.05))
    wait_until(lambda: store.open_jobs() == 0)
    queue.stop(1)
    other.stop(1)
    assert handler.runs[job_id] == 1 and store.job(job_id).state == "done"


def test_stop_lets_running_jobs_finish_and_hands_back_the_rest(store):
    slow = Recorder(store, seconds=1.0)
    ids = enqueue(store, 2)
    queue = run_queue(store, slow, QueueSettings(workers=1, lease_seconds=60, poll_seconds=0.05))
    wait_until(lambda: queue.running() == 1)
    assert queue.stop(grace=5) == 0  # the running job finished within the grace period; the other was never taken
    assert store.job(ids[0]).state == "done" and store.job(ids[1]).state == "received"
    again = Recorder(store)
    queue = run_queue(store, again)  # the next start takes it at once: no lease to wait out
    wait_until(lambda: store.open_jobs() == 0, timeout=3)
    queue.stop(1)
    assert dict(again.runs) == {ids[1]: 1}


def test_a_job_that_overruns_the_grace_period_is_handed_back(store):
    slow = Recorder(store, seconds=3.0)
    (job_id,) = enqueue(store, 1)
    queue = run_queue(store, slow, QueueSettings(workers=1, lease_seconds=60, poll_seconds=0.05))
    wait_until(lambda: queue.running() == 1)
    assert queue.stop(grace=0.2) == 1
    assert store.claim("next process", 60, 1)[0].id == job_id
    wait_until(lambda: queue.running() == 0, timeout=10)  # the overrun job ends before its store closes


def test_two_queues_on_one_database_never_run_a_job_twice(database_url):
    first_store, second_store = open_store(database_url), open_store(database_url)
    ids = enqueue(first_store, 120)
    handlers = [Recorder(first_store, seconds=0.01), Recorder(second_store, seconds=0.01)]
    queues = [run_queue(first_store, handlers[0]), run_queue(second_store, handlers[1])]
    wait_until(lambda: first_store.open_jobs() == 0, timeout=60)
    for queue in queues:
        queue.stop(1)
    runs = handlers[0].runs + handlers[1].runs
    assert dict(runs) == {job_id: 1 for job_id in ids}
    assert handlers[0].runs and handlers[1].runs  # both took a share
    first_store.close()
    second_store.close()


def test_upkeep_runs_at_start_and_then_on_its_schedule(store):
    runs: list[float] = []
    queue = JobQueue(store, {}, FAST, upkeep=lambda: runs.append(time.monotonic()), upkeep_every=0.3)
    queue.start()
    wait_until(lambda: len(runs) >= 3, timeout=5)
    queue.stop(1)
    assert all(later - earlier >= 0.25 for earlier, later in zip(runs, runs[1:]))
