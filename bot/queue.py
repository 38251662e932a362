"""The durable job queue: workers claim jobs from the database with a lease, and nothing is lost.

It knows nothing of Slack. A handler per job kind does the work and ends the job (done or failed);
an exception it raises puts the job back with a backoff, until the job has had `max_attempts`;
then the handler's `give_up` ends it with a message. `Wait` is not a fault of the job (a rate limit,
an outage of a service it needs): the job goes back, due when the service said, marked with why it
waits, and without spending an attempt; only a wait longer than its limit ends in `give_up`. The
reason given to `give_up` is always meant for people: an unexpected exception is "something went
wrong" there, and its traceback goes to the log. While a job runs, its lease is extended; a
process that dies leaves its jobs to be claimed again once their leases run out, by any process
(on PostgreSQL, several processes share one queue safely).
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

from bot.models import Job
from bot.store import Store

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """A fault that may pass (a service busy or down); `retry_after` in seconds when the service said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Wait(Exception):
    """The job must wait for a service (a rate limit, an outage): back in the queue, due in `retry_after`
    seconds, `reason` recorded on it (e.g. "rate_limit", "outage"; see store.provider_waits), no attempt
    spent. A job that has waited `limit` seconds (None: no limit) for the same reason in all is given up
    with `give_up_reason`. str() says why it waits, for the log and the job's record."""

    def __init__(self, message: str, *, reason: str, retry_after: float, limit: float | None = None,
                 give_up_reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        self.limit = limit
        self.give_up_reason = give_up_reason or message


UNEXPECTED = "something went wrong on the bot's side (its log has the details)"


class Handler(Protocol):
    def run(self, job: Job) -> None:
        """Do the job and end it with store.finish_job; raise to have it retried later."""

    def give_up(self, job: Job, reason: str) -> None:
        """The retry budget is spent: end the job with a message (raise to keep trying)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential backoff after the `attempts`-th try, never sooner than the service asked."""
        backoff = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return max(backoff, retry_after or 0.0)


@dataclass(frozen=True)
class QueueSettings:
    workers: int = 64
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    retry: RetryPolicy = RetryPolicy()


def process_name() -> str:
    """Who holds a lease: host, process id and a random part (pids are reused across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobQueue:
    def __init__(self, store: Store, handlers: Mapping[str, Handler], settings: QueueSettings,
                 upkeep: Callable[[], None] | None = None, upkeep_every: float = 3600.0) -> None:
        self.store = store
        self.handlers = handlers
        self.settings = settings
        self.on_wait: Callable[[Job, Wait], None] = lambda job, wait: None  # told after a job went back to wait
        self.owner = process_name()
        self._upkeep = upkeep
        self._upkeep_every = upkeep_every
        self._claimed: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._free = threading.Semaphore(settings.workers)
        self._running: set[int] = set()
        self._running_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the dispatcher, the lease keeper and the workers (daemon threads: a stopped process
        does not wait for a job that overran the grace period; its lease was handed back)."""
        for target in (self._dispatch, self._heartbeat):
            self._threads.append(threading.Thread(target=target, name=f"queue{target.__name__}", daemon=True))
        for number in range(self.settings.workers):
            threading.Thread(target=self._worker, name=f"job-{number}", daemon=True).start()
        for thread in self._threads:
            thread.start()

    def notify(self) -> None:
        """New work was recorded: look for it now rather than at the next poll."""
        self._wake.set()

    def stop(self, grace: float) -> int:
        """Take no new jobs; give running ones `grace` seconds; hand back the rest. Returns how many
        were handed back (another process, or this one's next start, finishes them)."""
        if self._stopping.is_set():
            return 0
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(self.settings.workers):
            self._claimed.put(None)
        return self.store.release(self.owner)

    def is_running(self) -> bool:
        """Whether it takes jobs: started, not stopping, its dispatcher and lease keeper alive."""
        return bool(self._threads) and not self._stopping.is_set() and all(t.is_alive() for t in self._threads)

    def running(self) -> int:
        with self._running_lock:
            return len(self._running)

    # --- threads --------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        next_upkeep = time.monotonic()
        while not self._stopping.is_set():
            if self._upkeep and time.monotonic() >= next_upkeep:
                self._run_upkeep()
                next_upkeep = time.monotonic() + self._upkeep_every
            if not self._free.acquire(timeout=self.settings.poll_seconds):
                continue  # every worker is busy
            if not self._claim_some():
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()

    def _claim_some(self) -> int:
        """Claim as many due jobs as there are idle workers (one is already reserved), and start them."""
        idle = 1
        while idle < 16 and self._free.acquire(blocking=False):
            idle += 1
        try:
            jobs = [] if self._stopping.is_set() else self.store.claim(self.owner, self.settings.lease_seconds, idle)
        except Exception:
            log.exception("could not claim jobs; trying again shortly")
            jobs = []
        for _ in range(idle - len(jobs)):
            self._free.release()
        for job in jobs:
            with self._running_lock:
                self._running.add(job.id)
            self._claimed.put(job)
        return len(jobs)

    def _heartbeat(self) -> None:
        """Extend the leases of running jobs well before they run out."""
        while not self._stopping.wait(self.settings.lease_seconds / 3):
            with self._running_lock:
                running = sorted(self._running)
            try:
                self.store.extend_leases(self.owner, running, self.settings.lease_seconds)
            except Exception:
                log.exception("could not extend leases")

    def _run_upkeep(self) -> None:
        try:
            self._upkeep()
        except Exception:
            log.exception("upkeep failed")

    # --- one job ----------------------------------------------------------------------------------

    def _worker(self) -> None:
        while (job := self._claimed.get()) is not None:
            self._work(job)

    def _work(self, job: Job) -> None:
        try:
            self._run(job)
        except Exception:  # the database failed too: the lease runs out and the job is taken again
            log.exception("job %s (%s) could not be put back in the queue", job.id, job.kind)
        finally:
            with self._running_lock:
                self._running.discard(job.id)
            self._free.release()
            self._wake.set()  # a worker is free: there may be more to claim

    def _run(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            handler.run(job)
            return
        except Wait as wait:
            self._wait(handler, job, wait)
            return
        except RetryLater as fault:
            log.warning("job %s (%s) will be retried: %s", job.id, job.kind, fault)
            error, retry_after = str(fault), fault.retry_after
        except Exception:
            log.exception("job %s (%s) failed unexpectedly", job.id, job.kind)
            error, retry_after = UNEXPECTED, None
        if job.attempts >= self.settings.retry.max_attempts:
            self._give_up(handler, job, error)
        else:
            self.store.retry_later(job.id, self.settings.retry.delay(job.attempts, retry_after), error)

    def _wait(self, handler: Handler, job: Job, wait: Wait) -> None:
        waited = time.time() - job.waiting_since if job.waiting == wait.reason and job.waiting_since else 0.0
        if wait.limit is not None and waited >= wait.limit:
            log.warning("job %s (%s) waited %.0f s for %s: given up", job.id, job.kind, waited, wait.reason)
            self._give_up(handler, job, wait.give_up_reason)
            return
        log.info("job %s (%s) waits %.1f s: %s", job.id, job.kind, wait.retry_after, wait)
        self.store.wait_job(job.id, wait.retry_after, wait.reason, str(wait))
        try:
            self.on_wait(job, wait)
        except Exception:  # telling people is never worth the job: it waits all the same
            log.exception("job %s (%s): could not note its wait", job.id, job.kind)

    def _give_up(self, handler: Handler, job: Job, error: str) -> None:
        try:
            handler.give_up(job, error)
        except Exception:
            log.exception("job %s (%s): giving up failed too; it stays queued", job.id, job.kind)
            self.store.retry_later(job.id, self.settings.retry.max_delay, error)
