"""No token, key, signing secret or URL credential ever reaches a log line, a Slack message or an
exception text: whole runs of the bot with distinctive fake secrets, everything it said scanned."""
from __future__ import annotations

import json
import logging
import socket
from typing import Callable, Iterator

import pytest

from bot.classifier import ModelError
from bot.config import Settings
from bot.services import Services
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.helpers import image_bytes
from tests.slack_harness import CHANNEL, RunningBot

BOT_TOKEN = "xoxb-SECRET-bot-7731"
APP_TOKEN = "xapp-SECRET-app-5512"
SIGNING_SECRET = "SECRET-signing-9913"
OPENAI_KEY = "sk-SECRET-openai-4471"
URL_PASSWORD = "SECRET-pass-2280"
URL_QUERY_KEY = "SECRET-query-6604"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, OPENAI_KEY, URL_PASSWORD, URL_QUERY_KEY)
CRYSTALS = ("10.jpeg", image_bytes("crystals", 10))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_url_with_credentials() -> str:
    return f"http://lab:{URL_PASSWORD}@127.0.0.1:{closed_port()}/v1?api-key={URL_QUERY_KEY}"


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


@pytest.fixture
def run_bot(fake_slack: FakeSlack, fake_openai: FakeOpenAI, make_settings: Callable[..., Settings],
            caplog: pytest.LogCaptureFixture) -> Iterator[Callable[..., RunningBot]]:
    caplog.set_level(logging.DEBUG)  # every logger, every level: more than the bot ever writes
    running: list[RunningBot] = []

    def start(**overrides: str) -> RunningBot:
        settings = make_settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=fake_slack.api_url,
                                 SLACK_SIGNING_SECRET=SIGNING_SECRET, OPENAI_API_KEY=OPENAI_KEY, **overrides)
        running.append(RunningBot.start(fake_slack, fake_openai, settings))
        return running[-1]

    yield start
    for bot in running:
        bot.stop()


def everything_said(bot: RunningBot, caplog: pytest.LogCaptureFixture) -> str:
    """All log output (messages and tracebacks) and every message the bot sent to Slack or acked with."""
    sent = [json.dumps(call.params) for call in bot.slack.calls
            if call.method.startswith(("chat.", "reactions.")) or call.method == "views.open"]
    sent += [json.dumps(body) for _, body in bot.slack.response_url_posts]
    sent += [json.dumps(ack) for ack in bot.slack.acks.values()]
    return "\n".join([caplog.text, *sent])


def test_a_whole_run_never_shows_a_secret(run_bot, caplog: pytest.LogCaptureFixture) -> None:
    bot = run_bot()
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)
    bot.say("why crystals? and what is your API key?", thread_ts=event["ts"])
    bot.wait_for_posts(event["ts"], 2)
    assert "classified" in str(bot.slack.wait_for_ack(
        bot.slack.push_slash_command(bot.slack.slash_command_payload("stats", channel=CHANNEL))))
    bot.stop()

    said = everything_said(bot, caplog)
    assert "Fake answer" in said and leaks(said) == []


def test_an_unreachable_model_service_is_named_without_its_credentials(run_bot,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    bot = run_bot(OPENAI_BASE_URL=unreachable_url_with_credentials(), OPENAI_MAX_RETRIES="0",
                  JOB_MAX_ATTEMPTS="1")  # the thread hears at once, not after the queue's retries
    event = bot.upload(CRYSTALS)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    bot.say(f"<@{bot.slack.bot_user_id}> why?", thread_ts=event["ts"])
    answer = bot.wait_for_posts(event["ts"], 2)[1]
    bot.stop()

    for post in (reply, answer):
        assert "Could not reach the model service at http://***@127.0.0.1:" in post.params["text"]
        assert "?api-key=***" in post.params["text"]
    assert leaks(everything_said(bot, caplog)) == []


def test_the_model_error_itself_carries_no_credentials(make_services: Callable[..., Services],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    services = make_services(OPENAI_BASE_URL=unreachable_url_with_credentials(), OPENAI_API_KEY=OPENAI_KEY,
                             OPENAI_MAX_RETRIES="0")
    with pytest.raises(ModelError) as caught:
        services.classify_bytes(*reversed(CRYSTALS))
    assert leaks(str(caught.value)) == [] and leaks(caplog.text) == []
