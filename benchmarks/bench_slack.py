"""Figures for the Slack bot against the test fakes (everything on 127.0.0.1, nothing outside).

    bash -c 'source scripts/postgres.sh && .venv/bin/python benchmarks/bench_slack.py [--burst N]'

The bot runs as `python -m bot` processes configured by environment variables, as in production;
the fake Slack and the fake OpenAI run in this process. PostgreSQL figures need TEST_DATABASE_URL
(scripts/postgres.sh starts a throwaway server and sets it).
1. Latency: upload event -> threaded reply, instant model (median and p95), uploads 1.1 s apart.
2. Burst: N uploads at once (distinct images), each model call 0.5 s: time until all are answered;
   answered, duplicated and lost; the bot's peak resident memory. In one channel the bot paces its
   replies to Slack's one message a second, so that takes about N seconds; spread over 20 channels
   it shows the bot's own speed. Then one channel against a Slack that answers 429 past one message
   a second per channel.
3. kill -9 while jobs are in flight, then a new process: recovered and duplicated, SQLite and PostgreSQL.
4. Two processes sharing PostgreSQL take one burst (20 channels): each image answered once; time against one.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.helpers import image_bytes  # noqa: E402
from tests.slack_harness import CHANNEL, slack_environ  # noqa: E402

IMAGE = image_bytes("crystals", 10)


def distinct_image(number: int) -> bytes:
    """The same picture with a different sha256, so the cache cannot answer it."""
    return IMAGE + number.to_bytes(4, "big")


def start_bot(slack: FakeSlack, openai: FakeOpenAI, folder: str, database_url: str, **overrides: str) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if "PROXY" not in key.upper()}
    env.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": openai.base_url, **slack_environ(slack),
                "DATABASE_URL": database_url, "LOG_LEVEL": "ERROR", "PYTHONPATH": str(ROOT), **overrides})
    return subprocess.Popen([sys.executable, "-m", "bot"], env=env, cwd=folder)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    """A /proc/PID/status memory figure in MB: VmHWM the peak resident memory so far, VmRSS now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} for process {pid}")


def replies(slack: FakeSlack, event: dict[str, Any]) -> int:
    """The bot's messages in the upload's thread."""
    return sum(1 for m in slack.messages(event["channel"])
               if m.get("thread_ts") == event["ts"] and m.get("user") == slack.bot_user_id)


def uploads(slack: FakeSlack, count: int, offset: int = 0, channels: int = 1) -> list[dict[str, Any]]:
    """`count` uploads of distinct images, spread over `channels` channels."""
    return [slack.add_message(CHANNEL if channels == 1 else f"C{n % channels + 100}", "",
                              files=[slack.add_file(f"b{n}.jpeg", distinct_image(offset + n))])
            for n in range(count)]


def wait_answered(slack: FakeSlack, events: list[dict[str, Any]], timeout: float) -> float:
    """Seconds until every upload has its reply and outcome reaction."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if all(replies(slack, e) and "eyes" not in slack.reactions(e["channel"], e["ts"]) for e in events):
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("nan")


def tally(slack: FakeSlack, events: list[dict[str, Any]]) -> str:
    counts = [replies(slack, e) for e in events]
    return (f"answered {sum(c >= 1 for c in counts)}, duplicated {sum(c > 1 for c in counts)}, "
            f"lost {sum(c == 0 for c in counts)}")


@contextmanager
def postgres_database() -> Iterator[str | None]:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield None
        return
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def latency_and_burst(args: argparse.Namespace, folder: str, *, rate_limited: bool, channels: int = 1) -> None:
    with FakeSlack() as slack, FakeOpenAI() as openai:
        bot = start_bot(slack, openai, folder, f"sqlite:///{folder}/{uuid.uuid4().hex}.db")
        slack.wait_connected(timeout=60)
        label = "Slack 429 past 1 msg/s per channel" if rate_limited else f"{channels} channel(s)"
        if rate_limited:
            slack.limit_posts_per_channel(per_second=1.0, burst=3)
        elif channels == 1:
            times = []
            for number in range(args.latency_runs + 1):
                (event,) = uploads(slack, 1, 100_000 + number)
                started = time.perf_counter()
                slack.push_event(event)
                slack.wait_for(lambda: replies(slack, event), 30)
                times.append((time.perf_counter() - started) * 1000)
                time.sleep(1.1)  # uploads a person apart: back to back, Slack's 1 message/s per channel would set the pace
            times = times[1:]  # the first builds the SDK's response types
            print(f"[latency] upload event -> threaded reply, instant model, {len(times)} runs: median "
                  f"{statistics.median(times):.0f} ms, p95 {statistics.quantiles(times, n=20)[-1]:.0f} ms")
        openai.delay = 0.5
        events = uploads(slack, args.burst, channels=channels)
        for event in events:
            slack.push_event(event)
        seconds = wait_answered(slack, events, timeout=args.burst * 3 + 60)
        time.sleep(1)  # room for a late duplicate to show up
        rejected = sum(call.status == 429 for call in slack.calls_to("chat.postMessage"))
        print(f"[burst, {label}] {args.burst} uploads at once, model 0.5 s: all done in {seconds:.1f} s; "
              f"{tally(slack, events)}; {rejected} posts answered 429; bot peak RSS {memory_mb(bot.pid):.0f} MB")
        stop(bot)


def kill_and_recover(args: argparse.Namespace, folder: str, database_url: str, label: str) -> None:
    with FakeSlack() as slack, FakeOpenAI() as openai:
        lease = {"JOB_LEASE_SECONDS": "5"}
        first = start_bot(slack, openai, folder, database_url, **lease)
        slack.wait_connected(timeout=60)
        openai.delay = 3.0
        events = uploads(slack, args.kill_jobs)
        for event in events:
            slack.push_event(event)
        deadline = time.monotonic() + 60
        while len(openai.responses_requests()) < args.kill_jobs and time.monotonic() < deadline:
            time.sleep(0.05)
        in_flight = sum(replies(slack, e) == 0 for e in events)
        first.kill()
        first.wait()
        openai.delay = 0.0
        second = start_bot(slack, openai, folder, database_url, **lease)
        seconds = wait_answered(slack, events, timeout=120)
        time.sleep(1)
        print(f"[kill -9, {label}] {in_flight} jobs in flight when killed; the next process finished them "
              f"{seconds:.1f} s after it was started (lease 5 s); {tally(slack, events)}")
        stop(second)


def two_processes(args: argparse.Namespace, folder: str, database_url: str, processes: int) -> None:
    with FakeSlack() as slack, FakeOpenAI() as openai:
        bots = [start_bot(slack, openai, folder, database_url, JOB_WORKERS="16") for _ in range(processes)]
        slack.wait_for(lambda: len(slack._open_sockets()) == processes, 60)
        slack.round_robin = True
        openai.delay = 0.5
        events = uploads(slack, args.burst, channels=20)  # spread out, so Slack's per-channel pace does not hide the rest
        for number, event in enumerate(events):
            slack.push_event(event, event_id=f"EvB{number}")
            slack.push_event(event, event_id=f"EvB{number}", retry_attempt=1)  # a retry reaches another process
        seconds = wait_answered(slack, events, timeout=args.burst * 3 + 60)
        time.sleep(1)
        print(f"[PostgreSQL, {processes} process(es) x 16 job workers] {args.burst} uploads in 20 channels, each event delivered "
              f"twice: done in {seconds:.1f} s; {tally(slack, events)}")
        for bot in bots:
            stop(bot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-runs", type=int, default=40)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--kill-jobs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        latency_and_burst(args, folder, rate_limited=False)
        latency_and_burst(args, folder, rate_limited=False, channels=20)
        latency_and_burst(args, folder, rate_limited=True)
        kill_and_recover(args, folder, f"sqlite:///{folder}/kill.db", "SQLite")
        with postgres_database() as url:
            if url is None:
                print("PostgreSQL figures skipped: TEST_DATABASE_URL is not set (source scripts/postgres.sh)")
                return
            kill_and_recover(args, folder, url, "PostgreSQL")
        for processes in (1, 2):
            with postgres_database() as url:
                two_processes(args, folder, url, processes)


if __name__ == "__main__":
    main()
