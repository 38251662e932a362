"""Benchmark of the Slack bot against the test fakes (everything on 127.0.0.1, nothing outside).

    .venv/bin/python benchmarks/bench_slack.py [--latency-runs N] [--burst N] [--model-delay S]

The bot runs as `python -m bot` in its own process, configured by environment variables, as in
production; the fake Slack and the fake OpenAI run in this process.
1. Latency: the median time from pushing an upload event over Socket Mode to the fake Slack
   receiving the threaded reply, with a model that answers at once (one upload at a time).
2. Burst: N uploads (distinct images) pushed at once, each model call taking --model-delay seconds;
   the time until every reply has arrived, checking that none is lost or doubled. Run with the
   default settings and with Bolt's default pool size (5 workers) for comparison.
Needs the test requirements (requirements-dev.txt).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.store import Store  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.helpers import image_bytes  # noqa: E402
from tests.slack_harness import CHANNEL, slack_environ  # noqa: E402

IMAGE = image_bytes("crystals", 10)


class ReplyClock:
    """Records when the fake Slack receives each threaded reply, keyed by thread."""

    def __init__(self, slack: FakeSlack) -> None:
        self.arrived: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.lock = threading.Lock()
        original = slack._handlers["chat.postMessage"]

        def record(params: dict[str, Any]) -> dict[str, Any]:
            with self.lock:
                thread = params.get("thread_ts", "")
                self.arrived.setdefault(thread, time.perf_counter())
                self.count[thread] = self.count.get(thread, 0) + 1
            return original(params)

        slack.set_handler("chat.postMessage", record)

    def wait(self, threads: list[str], timeout: float = 60) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                if all(t in self.arrived for t in threads):
                    return max(self.arrived[t] for t in threads)
            time.sleep(0.0005)
        raise TimeoutError(f"{sum(t in self.arrived for t in threads)} of {len(threads)} replies arrived")


def distinct_image(number: int) -> bytes:
    """The same picture with a different sha256, so the cache cannot answer it."""
    return IMAGE + number.to_bytes(4, "big")


@contextmanager
def running_bot(slack: FakeSlack, openai: FakeOpenAI, folder: str,
                **overrides: str) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """`python -m bot` in Socket Mode against the fakes; yields its database path and its process."""
    database = Path(folder) / f"bench-{time.monotonic_ns()}.db"
    env = {key: value for key, value in os.environ.items() if "PROXY" not in key.upper()}
    env.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": openai.base_url, **slack_environ(slack),
                "DATABASE_URL": f"sqlite:///{database}", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
                **overrides})
    process = subprocess.Popen([sys.executable, "-m", "bot"], env=env, cwd=folder)
    try:
        slack.wait_connected(timeout=60)
        yield database, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def upload(slack: FakeSlack, name: str, data: bytes) -> dict[str, Any]:
    return slack.add_message(CHANNEL, "", files=[slack.add_file(name, data)])


def latency(slack: FakeSlack, clock: ReplyClock, runs: int) -> list[float]:
    times = []
    for number in range(runs):
        event = upload(slack, f"drop{number}.jpeg", distinct_image(10_000 + number))
        started = time.perf_counter()
        slack.push_event(event)
        times.append((clock.wait([event["ts"]]) - started) * 1000)
    return times


def burst(slack: FakeSlack, clock: ReplyClock, database: Path, count: int) -> tuple[float, int, int]:
    events = [upload(slack, f"b{n}.jpeg", distinct_image(n)) for n in range(count)]
    started = time.perf_counter()
    for event in events:
        slack.push_event(event)
    finished = clock.wait([e["ts"] for e in events])
    time.sleep(0.5)  # room for a duplicate reply to show up
    replies = sum(clock.count.get(e["ts"], 0) for e in events)
    store = Store(database)
    replied = sum(job.state == "replied" for e in events for job in store.jobs_of_message(CHANNEL, e["ts"]))
    store.close()
    return finished - started, replies, replied


def run(label: str, args: argparse.Namespace, **overrides: str) -> None:
    with FakeSlack() as slack, FakeOpenAI() as openai, tempfile.TemporaryDirectory() as folder:
        clock = ReplyClock(slack)
        with running_bot(slack, openai, folder, **overrides) as (database, _):
            latency(slack, clock, 1)  # warm-up: the first model call builds the SDK's response types
            if args.latency_runs:
                times = latency(slack, clock, args.latency_runs)
                print(f"[{label}] upload event -> threaded reply, instant model, {len(times)} runs: "
                      f"median {statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f})")
            openai.delay = args.model_delay
            seconds, replies, replied = burst(slack, clock, database, args.burst)
            print(f"[{label}] {args.burst} uploads at once, model call {args.model_delay} s each: all answered in "
                  f"{seconds:.2f} s; {replies} replies, {replied} jobs replied, max {openai.max_in_flight} "
                  f"model calls in flight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--model-delay", type=float, default=0.5)
    args = parser.parse_args()
    run("default settings", args)
    run("Bolt's default pool: 5 listener + 5 job workers", argparse.Namespace(**{**vars(args), "latency_runs": 0}),
        SLACK_LISTENER_WORKERS="5", JOB_WORKERS="5", MODEL_CONCURRENCY="5")


if __name__ == "__main__":
    main()
