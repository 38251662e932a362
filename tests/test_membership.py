"""bot.slack.membership against the fake Slack with the real WebClient: paged lookups, the cache and its
expiry, the events that keep it true, and lookups that fail (429, 500) answering "unknown"."""
from __future__ import annotations

from typing import Any

import pytest

from bot.slack.membership import Membership
from bot.slack.posting import web_client
from tests.fakes.slack_server import FakeSlack

BOT = "UBOT"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def membership(fake: FakeSlack, clock: Clock, ttl: float = 60.0) -> Membership:
    client = web_client(fake.bot_token, fake.api_url, idempotent=False, rate_limit_retries=0)
    return Membership(client, ttl, clock)


def asked(fake: FakeSlack, method: str) -> int:
    return len(fake.calls_to(method))


def test_a_big_channel_is_read_page_by_page_once_and_then_served_from_the_cache(fake_slack, clock) -> None:
    people = [f"U{n:04d}" for n in range(450)]
    fake_slack.add_channel("big", "C1", members=[*people, BOT])
    cache = membership(fake_slack, clock)
    assert cache.is_member("U0449", "C1") and not cache.is_member("U9999", "C1")
    pages = fake_slack.calls_to("conversations.members")
    assert len(pages) == 3 and [p.params.get("cursor") for p in pages] == [None, "200", "400"]
    assert all(p.params["limit"] in ("200", 200) for p in pages)
    assert cache.sizes()["memberships"] == 451


def test_an_answer_expires_after_the_ttl(fake_slack, clock) -> None:
    fake_slack.add_channel("lab", "C1", members=["U1", BOT])
    cache = membership(fake_slack, clock, ttl=60)
    assert not cache.is_member("U2", "C1")
    fake_slack.join("U2", "C1")  # an event this process never got
    clock.now += 59
    assert not cache.is_member("U2", "C1") and asked(fake_slack, "conversations.members") == 1
    clock.now += 2
    assert cache.is_member("U2", "C1") and asked(fake_slack, "conversations.members") == 2


def test_events_keep_the_cache_true_without_asking_slack(fake_slack, clock) -> None:
    fake_slack.add_channel("lab", "C1", members=["U1", BOT])
    fake_slack.add_channel("other", "C2", members=["U1", BOT])
    cache = membership(fake_slack, clock, ttl=3600)
    assert cache.member_channels("U1", ["C1", "C2"]) == (frozenset({"C1", "C2"}), True)  # users.conversations
    assert cache.is_member("U1", "C1") and not cache.is_member("U2", "C1")
    calls = len(fake_slack.calls)
    cache.joined("U2", "C1")
    assert cache.is_member("U2", "C1")
    cache.left("U1", "C1")
    assert not cache.is_member("U1", "C1") and cache.member_channels("U1", ["C1", "C2"]) == (frozenset({"C2"}), True)
    cache.forget_channel("C2")  # the bot was removed: asked afresh next time
    assert len(fake_slack.calls) == calls
    assert cache.member_channels("U1", ["C2"]) == (frozenset({"C2"}), True) and len(fake_slack.calls) == calls + 1


def test_a_persons_whole_view_is_one_users_conversations_call(fake_slack, clock) -> None:
    for n in range(1, 6):
        fake_slack.add_channel(f"lab-{n}", f"C{n}", members=["U1", BOT] if n % 2 else ["U2", BOT])
    fake_slack.add_channel("secret", "C9", private=True, members=["U1"])  # the bot is not in it
    cache = membership(fake_slack, clock)
    assert cache.member_channels("U1", [f"C{n}" for n in range(1, 6)] + ["C9", "D123"]) == (
        frozenset({"C1", "C3", "C5"}), True)
    (call,) = fake_slack.calls_to("users.conversations")
    assert call.params["user"] == "U1" and call.params["types"] == "public_channel,private_channel"
    assert asked(fake_slack, "conversations.members") == 0


def test_a_rate_limited_lookup_shows_less_and_is_not_asked_again_before_retry_after(fake_slack, clock) -> None:
    fake_slack.add_channel("lab", "C1", members=["U1", BOT])
    cache = membership(fake_slack, clock)
    fake_slack.rate_limit_next("conversations.members", retry_after=30)
    assert cache.member_channels("U1", ["C1"]) == (frozenset(), False)
    assert not cache.is_member("U1", "C1") and asked(fake_slack, "conversations.members") == 1  # paused
    clock.now += 31
    assert cache.is_member("U1", "C1") and asked(fake_slack, "conversations.members") == 2


@pytest.mark.parametrize("status", [500, 503])
def test_a_failed_lookup_shows_less_and_is_asked_again_next_time(fake_slack, clock, status) -> None:
    fake_slack.add_channel("lab", "C1", members=["U1", BOT])
    cache = membership(fake_slack, clock)
    fake_slack.fail_next("conversations.members", status)
    assert not cache.is_member("U1", "C1")
    assert cache.is_member("U1", "C1") and asked(fake_slack, "conversations.members") == 2


def test_an_answer_overtaken_by_an_event_is_neither_trusted_nor_kept(fake_slack, clock) -> None:
    fake_slack.add_channel("lab", "C1", members=["U1", "U2", BOT])
    cache = membership(fake_slack, clock)
    members = fake_slack._handlers["conversations.members"]

    def slow_answer(params: dict[str, Any]) -> dict[str, Any]:
        answer = members(params)
        cache.left("U2", "C1")  # U2 leaves while Slack's answer (with U2 in it) is on its way
        return answer

    fake_slack.set_handler("conversations.members", slow_answer)
    assert not cache.is_member("U2", "C1")
    fake_slack.set_handler("conversations.members", members)
    fake_slack.leave("U2", "C1")
    assert not cache.is_member("U2", "C1") and cache.is_member("U1", "C1")
    assert asked(fake_slack, "conversations.members") == 2  # the first answer was not kept


def test_private_is_what_slack_says_not_the_first_letter_of_the_id(fake_slack, clock) -> None:
    fake_slack.add_channel("secret", "C7", private=True, members=["U1", BOT])
    fake_slack.add_channel("open", "C8")
    cache = membership(fake_slack, clock)
    assert cache.is_private("C7") is True and cache.is_private("C8") is False
    assert cache.is_private("C7") is True and asked(fake_slack, "conversations.info") == 2  # cached
    fake_slack.fail_next("conversations.info", 500)
    assert cache.is_private("C9") is None


def test_guests_are_what_users_info_says(fake_slack, clock) -> None:
    fake_slack.add_user("U7", guest=True)
    fake_slack.add_user("U8", guest=True, single_channel=True)
    fake_slack.add_user("U1")
    cache = membership(fake_slack, clock)
    assert (cache.is_guest("U7"), cache.is_guest("U8"), cache.is_guest("U1")) == (True, True, False)
    fake_slack.rate_limit_next("users.info", retry_after=5)
    assert cache.is_guest("U2") is None
