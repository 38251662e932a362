"""Figures for "private stays private": the Home tab with per-person membership, the membership cache.

    .venv/bin/python benchmarks/bench_privacy.py [--channels 50] [--calls 5000] [--members 100] [--people 200]

The real bot (Bolt app, queue, WebClient) runs in this process against the fake Slack and the fake
OpenAI on 127.0.0.1 (nothing leaves the machine), on a temporary SQLite database filled with `--calls`
answered images spread over `--channels` channels of `--members` members each (out of `--people`).
1. The Home tab for one person in half of the channels: the job's time until views.publish was
   answered, and the Slack calls it made by method, with a cold membership cache (first opening) and
   from the cache; then, for another person, the part that decides who sees what (the lookup, cold
   and cached) and the reading of only their channels' calls, plates and verdicts.
2. The membership cache at rest: the memory Python holds for every channel's members and every
   person's channels (tracemalloc, after the lookups), and how stale it can get: the time from a
   member_left_channel event to the cache saying so, the expiry that bounds a missed event, and what a
   second process (its own cache, the same database) does after the first heard a leave.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_settings  # noqa: E402
from bot.slack.membership import Membership  # noqa: E402
from bot.slack.posting import web_client  # noqa: E402
from bot.slack.privacy import Privacy  # noqa: E402
from benchmarks.bench_team import fill as fill_calls  # noqa: E402
from bot.store.base import Store  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.slack_harness import RunningBot, slack_environ  # noqa: E402

DAY = 86_400.0
LABELS = ("clear", "crystals", "precipitate", "other")


def channel(n: int) -> str:
    return f"C{n:04d}"


def person(n: int) -> str:
    return f"U{n:04d}"


def workspace(slack: FakeSlack, channels: int, members: int, people: int) -> None:
    """Channels of `members` members each; person 0 is in the even channels, person 1 in the odd ones."""
    for n in range(channels):
        crowd = [person((n * 7 + k) % people) for k in range(members)]
        crowd = [p for p in crowd if p not in (person(0), person(1))] + [person(n % 2), "UBOT"]
        slack.add_channel(f"lab-{n}", channel(n), private=n % 5 == 0, members=crowd)


def fill(store: Store, calls: int, channels: int) -> None:
    """`calls` answered images over the last four weeks, spread over the channels; every third reviewed."""
    fill_calls(store, calls, channel_of=lambda n: channel(n % channels), label_of=lambda n: LABELS[n % 4],
               age_of=lambda n: (n % 28) * DAY)


def open_home(bot: RunningBot, user: str) -> tuple[float, Counter[str]]:
    """Run one Home tab job for `user`: seconds until views.publish was answered, Slack calls by method."""
    store, slack = bot.services.store, bot.slack
    key = f"bench-home-{user}-{time.monotonic_ns()}"
    job = store.job(store.enqueue("home", "home", key, key, "home", "home", user, {}))
    before = len(slack.calls)
    started = time.perf_counter()
    bot.bot.queue.handlers["home"].run(job)
    elapsed = time.perf_counter() - started
    return elapsed, Counter(call.method for call in slack.calls[before:])


def calls_text(calls: Counter[str]) -> str:
    return f"{sum(calls.values())} Slack calls ({', '.join(f'{m} {n}' for m, n in sorted(calls.items()))})"


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def home_figures(bot: RunningBot, rounds: int) -> None:
    cold, cold_calls = open_home(bot, person(0))
    print(f"  whole job, cold membership cache: {cold * 1000:.0f} ms, {calls_text(cold_calls)}")
    warm = [open_home(bot, person(0)) for _ in range(rounds)]
    print(f"  whole job, membership from the cache: median {statistics.median(t for t, _ in warm) * 1000:.0f} ms "
          f"(max {max(t for t, _ in warm) * 1000:.0f} ms), {calls_text(warm[-1][1])}")
    print("  (most of a whole job is drawing the weekly chart with matplotlib, as before this change; the chart")
    print("   is uploaded only when its picture changed)")
    privacy, slack = bot.bot.queue.handlers["home"].inner.flow.privacy, bot.slack
    before = len(slack.calls)
    cold_viewer = timed(lambda: privacy.viewer(person(1)))
    viewer_calls = Counter(call.method for call in slack.calls[before:])
    warm_viewer = statistics.median(timed(lambda: privacy.viewer(person(1))) for _ in range(rounds))
    print(f"  who sees what, for another person: cold {cold_viewer * 1000:.1f} ms ({calls_text(viewer_calls)}), "
          f"from the cache {warm_viewer * 1000:.1f} ms (0 Slack calls)")
    now = time.time()

    def read_their_data() -> None:
        seen = privacy.seen_by(person(1))
        seen.labelled_calls_since(now - 12 * 7 * DAY)
        seen.recent_jobs(10), seen.recent_inspections(10), seen.reviewed_calls(), seen.notes(now - 30 * DAY, "")

    print(f"  reading only their channels' calls, plates, verdicts and the hidden counts: median "
          f"{statistics.median(timed(read_their_data) for _ in range(rounds)) * 1000:.0f} ms")


def staleness_figure(bot: RunningBot, rounds: int) -> None:
    membership = bot.bot.queue.handlers["home"].inner.flow.privacy.membership
    delays = []
    for n in range(rounds):
        user, where = person(2 + n), channel(0)
        bot.slack.push_event(bot.slack.join(user, where))
        bot.slack.wait_for(lambda: membership.is_member(user, where), 10, what="the join seen")
        started = time.perf_counter()
        bot.slack.push_event(bot.slack.leave(user, where))
        bot.slack.wait_for(lambda: not membership.is_member(user, where), 10, what="the leave seen")
        delays.append(time.perf_counter() - started)
    print(f"  stale after an event: member_left_channel sent to the cache saying so, median "
          f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms over {rounds} events")
    print(f"  stale after an event no process got: at most MEMBERSHIP_CACHE_SECONDS "
          f"({bot.services.settings.membership_cache_seconds:g} s), then Slack is asked again")


def elsewhere_figure(bot: RunningBot, rounds: int) -> None:
    """A second process's Privacy on the same database (its own cache, warm) after this one heard a leave."""
    privacy = bot.bot.queue.handlers["home"].inner.flow.privacy
    other = Privacy(privacy.store, Membership(privacy.membership.client, privacy.membership.ttl),
                    privacy.hits_channel, process="another process")
    user, where = person(1), channel(1)
    assert other.viewer(user, [where]).sees(where)
    bot.slack.leave(user, where)  # Slack's answer changes; the event reaches this process only
    privacy.person_left(user, where)
    before = len(bot.slack.calls)
    seen = timed(lambda: other.viewer(user, [where]))
    assert not other.viewer(user, [where]).sees(where)
    calls = Counter(call.method for call in bot.slack.calls[before:])
    overhead = statistics.median(timed(other.catch_up) for _ in range(rounds))
    print(f"  stale after an event another process got: none; the next look ({seen * 1000:.1f} ms, "
          f"{calls_text(calls)}) asks Slack afresh; reading the changes costs {overhead * 1000:.2f} ms a look")
    bot.slack.join(user, where)
    privacy.person_joined(user, where)


def held_by_the_cache(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still allocated that were allocated through bot/slack/membership.py (the cache's entries,
    not the fake Slack's records of the requests, which live in this process too)."""
    return sum(stat.size for stat in snapshot.filter_traces(
        [tracemalloc.Filter(True, "*bot/slack/membership.py", all_frames=True)]).statistics("filename"))


def cache_figures(slack: FakeSlack, channels: int, people: int) -> None:
    client = web_client(slack.bot_token, slack.api_url, idempotent=False, rate_limit_retries=0)
    by_channel, by_person = Membership(client, ttl=120), Membership(client, ttl=120)
    tracemalloc.start(50)
    for n in range(channels):
        by_channel.is_member(person(0), channel(n))  # conversations.members, page by page
    channel_bytes = held_by_the_cache(tracemalloc.take_snapshot())
    for n in range(people):
        by_person.member_channels(person(n), [channel(0), channel(1)])  # users.conversations
    people_bytes = held_by_the_cache(tracemalloc.take_snapshot()) - channel_bytes
    tracemalloc.stop()
    memberships = by_channel.sizes()["memberships"]
    listed = by_person.sizes()["people"]
    print(f"  at rest, every channel's members ({channels} channels, {memberships:,} memberships): "
          f"{channel_bytes / 1e6:.2f} MB ({channel_bytes / max(memberships, 1):.0f} bytes a membership)")
    print(f"  at rest, every person's channels ({listed} people, about {memberships // max(listed, 1)} channels "
          f"each): {people_bytes / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeSlack() as slack, FakeOpenAI() as openai:
        workspace(slack, args.channels, args.members, args.people)
        settings = load_settings(environ={"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": openai.base_url,
                                          "DATABASE_URL": f"sqlite:///{folder}/bench.db", "LOG_LEVEL": "ERROR",
                                          **slack_environ(slack)}, env_file=Path(folder) / ".env")
        bot = RunningBot.start(slack, openai, settings)
        bot.bot.queue.stop(1)  # the jobs are run here, one at a time, and timed
        import matplotlib.backends.backend_agg  # noqa: F401 - loaded before timing (the bot loads it lazily)
        try:
            fill(bot.services.store, args.calls, args.channels)
            print(f"Home tab, {args.calls:,} calls in {args.channels} channels of {args.members} members, "
                  f"for a person in {(args.channels + 1) // 2} of them:")
            home_figures(bot, args.rounds)
            print("The membership cache:")
            staleness_figure(bot, args.rounds)
            elsewhere_figure(bot, args.rounds)
            cache_figures(slack, args.channels, args.people)
        finally:
            bot.stop()


if __name__ == "__main__":
    main()
