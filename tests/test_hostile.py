"""The whole hostile corpus (tests/hostile_corpus.py) uploaded through the running bot, end to end."""
from __future__ import annotations

import logging

import pytest

from tests.helpers import image_bytes
from tests.hostile_corpus import CALL, MAX_DOWNLOAD_MB, corpus
from tests.slack_harness import RunningBot

CRASH_PHRASE = "something went wrong"  # the bot's reply when a job fails unexpectedly


def meets(expect: str, name: str, text: str) -> bool:
    return f"for {name}" in text and "warning" not in text if expect == CALL else expect in text


def test_every_hostile_input_gets_a_clear_reply_and_the_bot_carries_on(start_bot,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    bot: RunningBot = start_bot(MAX_DOWNLOAD_MB=MAX_DOWNLOAD_MB)
    hostile = corpus(bot.slack)
    events = [bot.upload(item.file) for item in hostile]

    replies = {item.what: bot.wait_for_posts(event["ts"], 1, timeout=30)[0].params["text"]
               for item, event in zip(hostile, events)}
    crashes = [what for what, text in replies.items() if CRASH_PHRASE in text]
    crashes += [record.getMessage() for record in caplog.records if record.exc_info]
    print(f"\nhostile corpus: {len(hostile)} inputs tried, {len(crashes)} crashed anything")

    assert {item.what: replies[item.what] for item in hostile
            if not meets(item.expect, item.file["name"], replies[item.what])} == {}
    assert crashes == []
    assert bot.slack.requests_to("localhost") == []  # the token never left Slack's hosts (nor did anything else)
    refused_unread = [item.file["id"] for item in hostile if "too large (" in item.expect]
    assert not [d for d in bot.slack.downloads if any(file_id in d.path for file_id in refused_unread)]

    after = bot.upload(("10.jpeg", image_bytes("crystals", 10)))
    assert "for 10.jpeg" in bot.wait_for_posts(after["ts"], 1)[0].params["text"]
    bot.drain()
    assert [len(bot.thread_posts(event["ts"])) for event in events] == [1] * len(events)  # one reply each
    assert len(bot.openai.responses_requests()) == sum(item.expect == CALL for item in hostile) + 1
