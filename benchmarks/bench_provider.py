"""Figures for the model service's rate limits and outages, against the fake OpenAI (all on 127.0.0.1).

    bash -c 'source scripts/postgres.sh && .venv/bin/python benchmarks/bench_provider.py [--outage 600] [--minute 60]'

The bot runs as `python -m bot` processes with the default settings, as in production; the fake Slack
and the fake OpenAI run in this process. The fake enforces tokens and requests per minute per API key
as OpenAI does (token buckets, headers on every answer, 429s with OpenAI's body).
1. A 96-image plate (1280x960 JPEGs from make_plate.py) at 60,000 TPM: the time from the upload to the
   summary against the ideal (96 x tokens per call / TPM; one minute less, as the bucket starts full),
   wells not classified (goal 0), 429s served (goal under 5 % of the requests), requests per image.
2. The same with two bot processes on one PostgreSQL database sharing the key (TEST_DATABASE_URL;
   scripts/postgres.sh starts a throwaway server and sets it).
3. A question asked in a single image's thread 1 minute into a 96-image plate at 60,000 TPM: the time
   to its answer (goal: well under a minute; first come, first served it waited for the whole plate),
   and when the plate's summary came.
4. An outage (HTTP 500 for --outage seconds; 600 for the issue's figures) during 3 single uploads and
   a 24-image plate: images answered with no click (goal all), warnings posted (goal 0), notices posted
   (goal: one per upload, none outside the threads, all deleted once answered), requests the bot sent
   during the outage, and the time from the recovery to the last answer.
--minute shortens the fake's minute (6: ten times faster; the plate times scale with it, and the
question's part scales the bot's MODEL_WAIT_IN_WORKER_SECONDS as well).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_slack import postgres_database, start_bot, stop  # noqa: E402
from benchmarks.make_plate import write_plate_zip  # noqa: E402
from bot.store import open_store  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.helpers import image_bytes  # noqa: E402
from tests.slack_harness import CHANNEL  # noqa: E402

TPM = 60_000
SINGLES = [("crystals", 10), ("clear", 236), ("other", 1254)]
NOTICE = ":hourglass_flowing_sand:"  # bot/service_notices.py


def clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


def plate_zip(folder: Path, wells: int) -> Path:
    """A plate zip of the first `wells` images of a 96-well plate."""
    full = folder / "plate96.zip"
    if not full.exists():
        write_plate_zip(full, wells=96)
    if wells == 96:
        return full
    part = folder / f"plate{wells}.zip"
    with zipfile.ZipFile(full) as source, zipfile.ZipFile(part, "w") as target:
        for member in [m for m in source.namelist() if m.endswith(".jpg")][:wells]:
            target.writestr(member, source.read(member))
    return part


def upload(slack: FakeSlack, name: str, data: bytes, **options: Any) -> dict[str, Any]:
    event = slack.add_message(CHANNEL, "", files=[slack.add_file(name, data, **options)])
    slack.push_event(event)
    return event


def thread_texts(slack: FakeSlack, event: dict[str, Any]) -> list[str]:
    """The bot's messages in an upload's thread as they are now, the service notices left out."""
    return [message.get("text", "") for message in slack.messages(CHANNEL)
            if message.get("thread_ts") == event["ts"] and message.get("user") == slack.bot_user_id
            and not message.get("text", "").startswith(NOTICE)]


def notices_posted(slack: FakeSlack, events: list[dict[str, Any]]) -> str:
    """How many service notices were posted in each upload's thread and outside threads; how many are left."""
    posts = [call.params for call in slack.calls_to("chat.postMessage") if call.params.get("text", "").startswith(NOTICE)]
    per_upload = [sum(1 for post in posts if post.get("thread_ts") == event["ts"]) for event in events]
    left = sum(1 for message in slack.messages(CHANNEL) if message.get("text", "").startswith(NOTICE))
    return (f"notices posted {per_upload} (per upload), {sum(1 for post in posts if not post.get('thread_ts'))} "
            f"outside threads, {left} left after the answers")


def summary_text(slack: FakeSlack, event: dict[str, Any]) -> str | None:
    return next((text for text in thread_texts(slack, event) if text.startswith("Plate ") and "crystal hit" in text),
                None)


def wait(predicate: Any, timeout: float) -> float:
    """Seconds until `predicate()` holds (NaN if it never did)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    return float("nan")


def failed_images(database_url: str) -> int:
    """Images (single or a plate's) that ended failed, as the bot's database has it."""
    store = open_store(database_url)
    try:
        return store.channel_stats(CHANNEL).failed
    finally:
        store.close()


def plate_at_the_rate(folder: Path, database_url: str, processes: int, minute: float) -> None:
    zipped = plate_zip(folder, 96)
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.set_rate_limits(tokens=TPM, requests=500, minute=minute)
        bots = [start_bot(slack, openai, str(folder), database_url) for _ in range(processes)]
        slack.wait_for(lambda: len(slack._open_sockets()) == processes, 60)
        slack.round_robin = True
        event = upload(slack, zipped.name, zipped.read_bytes(), mimetype="application/zip", filetype="zip")
        seconds = wait(lambda: summary_text(slack, event), timeout=40 * minute)
        time.sleep(3)  # the notice's deletion, once answered
        notices = notices_posted(slack, [event])
        for bot in bots:
            stop(bot)
        requests = openai.responses_requests()
        cost = openai.estimated_tokens(requests[0])
        refused = openai.rate_limited
    ideal = 96 * cost / TPM * minute
    print(f"[plate, {processes} process{'es' if processes > 1 else ''}] 96 images at {TPM:,} TPM ({cost:,} tokens "
          f"per call; a minute of {minute:g} s): summary after {clock(seconds)}; ideal {clock(ideal)} "
          f"({clock(ideal - minute)} with the bucket full at the start); wells not classified "
          f"{failed_images(database_url)}; 429s served {refused} of {len(requests)} requests "
          f"({100 * refused / len(requests):.1f} %); requests per image {len(requests) / 96:.2f}; {notices}")


def question_during_plate(folder: Path, database_url: str, minute: float) -> None:
    zipped = plate_zip(folder, 96)
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.set_rate_limits(tokens=TPM, requests=500, minute=minute)
        bot = start_bot(slack, openai, str(folder), database_url,
                        MODEL_WAIT_IN_WORKER_SECONDS=f"{20 * minute / 60:g}")  # the default's 20 s, scaled
        slack.wait_connected(timeout=60)
        label, number = SINGLES[1]
        single = upload(slack, f"{label}-{number}.jpeg", image_bytes(label, number))
        wait(lambda: thread_texts(slack, single), timeout=5 * minute)
        plate = upload(slack, zipped.name, zipped.read_bytes(), mimetype="application/zip", filetype="zip")
        started = time.monotonic()
        time.sleep(minute)
        slack.push_event(slack.add_message(CHANNEL, "why is it clear?", thread_ts=single["ts"]))
        asked = time.monotonic()
        answer = wait(lambda: len(thread_texts(slack, single)) >= 2, timeout=20 * minute)
        summary = (asked - started) + answer + wait(lambda: summary_text(slack, plate), timeout=20 * minute)
        stop(bot)
        refused = openai.rate_limited
    real = 60 / minute  # the figures in real minutes
    print(f"[question] asked 1 min into a 96-image plate at {TPM:,} TPM (a minute of {minute:g} s, figures scaled "
          f"to real minutes): answered after {clock(answer * real)}; the plate's summary {clock(summary * real)} "
          f"after its upload; 429s served {refused}")


def outage(folder: Path, database_url: str, seconds: float) -> None:
    zipped = plate_zip(folder, 24)
    with FakeSlack() as slack, FakeOpenAI() as openai:
        bot = start_bot(slack, openai, str(folder), database_url)
        slack.wait_connected(timeout=60)
        openai.outage(500, seconds=seconds)
        down_until = time.monotonic() + seconds
        singles = [upload(slack, f"{label}-{number}.jpeg", image_bytes(label, number)) for label, number in SINGLES]
        plate = upload(slack, zipped.name, zipped.read_bytes(), mimetype="application/zip", filetype="zip")
        time.sleep(max(0.0, down_until - time.monotonic()))
        failed_in_outage = openai.status_counts[500]
        recovered = time.monotonic()

        def answered() -> bool:
            return all(thread_texts(slack, e) for e in singles) and summary_text(slack, plate) is not None

        after = wait(answered, timeout=600)
        time.sleep(3)  # the notices' deletion, once answered
        stop(bot)
        warnings = [text for event in [*singles, plate] for text in thread_texts(slack, event)
                    if text.startswith(":warning:")]
        calls = sum(1 for event in singles for text in thread_texts(slack, event) if not text.startswith(":warning:"))
        wells = 24 - failed_images(database_url) if summary_text(slack, plate) else 0
        elapsed = time.monotonic() - recovered
        notices = notices_posted(slack, [*singles, plate])
    print(f"[outage] HTTP 500 for {clock(seconds)} during 3 single uploads and a 24-image plate: "
          f"{calls + wells} of 27 images answered with no click ({calls} of 3 singles, {wells} of 24 wells); "
          f"warnings posted {len(warnings)}; {notices}; requests the bot sent during the outage {failed_in_outage}; "
          f"last answer {clock(after)} after the recovery (checked {clock(elapsed)} after it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=120.0, help="seconds the model service is down (600: 10 min)")
    parser.add_argument("--minute", type=float, default=60.0, help="the fake's minute in seconds (shorter: faster)")
    parser.add_argument("--only", choices=["plate", "question", "outage"], help="run one part only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.only in (None, "plate"):
            plate_at_the_rate(folder, f"sqlite:///{folder}/{uuid.uuid4().hex}.db", 1, args.minute)
            with postgres_database() as url:
                if url is None:
                    print("[plate, 2 processes] skipped: TEST_DATABASE_URL is not set (source scripts/postgres.sh)")
                else:
                    plate_at_the_rate(folder, url, 2, args.minute)
        if args.only in (None, "question"):
            question_during_plate(folder, f"sqlite:///{folder}/{uuid.uuid4().hex}.db", args.minute)
        if args.only in (None, "outage"):
            outage(folder, f"sqlite:///{folder}/{uuid.uuid4().hex}.db", args.outage)


if __name__ == "__main__":
    main()
