"""The bot as it runs in production (real Bolt app, Socket Mode handler, WebClient, openai client),
wired to the fake Slack and the fake OpenAI, plus helpers to drive it like a lab channel."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.config import Settings
from bot.models import Image
from bot.services import Services, build_services
from bot.slack.app import SlackBot, build_app
from bot.ops_server import HealthServer
from bot.slack.posting import ChannelPacer
from bot.slack.server import socket_mode_health
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import ApiCall, FakeSlack

CHANNEL = "C1"
# Seconds between posts in one channel after a burst of 3: Slack's limit is about 1, which the bot keeps
# (tests/test_reliability.py checks it against a fake Slack that enforces it); other tests need not wait.
QUICK_POSTS = 0.02


def slack_environ(slack: FakeSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url, "SLACK_SIGNING_SECRET": "test-signing-secret"}


@dataclass
class RunningBot:
    slack: FakeSlack
    openai: FakeOpenAI
    services: Services
    bot: SlackBot
    handler: SocketModeHandler
    health: HealthServer | None = None  # GET /healthz and /metrics, when HEALTH_PORT is set (0: `health.port`)
    stopped: bool = False

    @classmethod
    def start(cls, slack: FakeSlack, openai: FakeOpenAI, settings: Settings,
              post_interval: float = QUICK_POSTS) -> RunningBot:
        services = build_services(settings)
        bot = build_app(settings, services, http=False, pacer=ChannelPacer(interval=post_interval))
        handler = SocketModeHandler(bot.app, settings.slack_app_token)
        handler.connect()
        slack.wait_connected()
        return cls(slack, openai, services, bot, handler, socket_mode_health(settings, services, bot, handler))

    def drain(self, timeout: float = 15.0) -> None:
        """Wait until every delivered event has been handled and the queue is empty."""
        workers = self.services.settings.slack_listener_workers
        everyone_idle = threading.Barrier(workers, timeout=timeout)  # passes once no listener is still running
        for done in [self.bot.listener_pool.submit(everyone_idle.wait) for _ in range(workers)]:
            done.result(timeout)
        self.slack.wait_for(lambda: self.services.store.open_jobs() == 0 and self.bot.queue.running() == 0,
                            timeout, what="an empty job queue")

    def stop(self) -> None:
        """Stop as the process would on SIGTERM (a second call does nothing)."""
        if self.stopped:
            return
        self.stopped = True
        if self.health:
            self.health.close()
        # slack_sdk's message processor waits up to 1 s for the next message before it sees that the
        # client is closed; a None message (which it skips) lets it see that at once.
        self.handler.client.closed = True
        self.handler.client.message_queue.put(None)
        self.handler.close()
        self.bot.close()
        self.services.close()

    def normalised(self, data: bytes, name: str) -> Image:
        return self.services.normalise(data, name)

    def upload(self, *files: tuple[str, bytes] | dict[str, Any], text: str = "", event_id: str | None = None,
               channel: str = CHANNEL, user: str = "U1", **file_options: Any) -> dict[str, Any]:
        """Post a message with files in the channel and deliver its event; returns the event.

        A file is (name, bytes), hosted with file_options, or a file object from slack.add_file.
        """
        hosted = [f if isinstance(f, dict) else self.slack.add_file(*f, user=user, **file_options) for f in files]
        event = self.slack.add_message(channel, text, files=hosted, user=user)
        self.slack.push_event(event, event_id=event_id)
        return event

    def say(self, text: str, *, thread_ts: str | None = None, user: str = "U1", channel: str = CHANNEL) -> dict[str, Any]:
        event = self.slack.add_message(channel, text, thread_ts=thread_ts, user=user)
        self.slack.push_event(event)
        return event

    def thread_posts(self, thread_ts: str) -> list[ApiCall]:
        return [c for c in self.slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == thread_ts]

    def wait_for_posts(self, thread_ts: str, count: int, timeout: float = 15.0) -> list[ApiCall]:
        return self.slack.wait_for(lambda: len(self.thread_posts(thread_ts)) >= count and self.thread_posts(thread_ts),
                                   timeout, what=f"{count} posts in thread {thread_ts}")

    def wait_until_done(self, event: dict[str, Any], timeout: float = 15.0) -> set[str]:
        """The message's reactions once the working :eyes: has gone."""
        def done() -> set[str] | None:
            reactions = self.slack.reactions(event["channel"], event["ts"])
            return reactions if reactions and "eyes" not in reactions else None

        return self.slack.wait_for(done, timeout, what="the outcome reaction")


def section_text(call: ApiCall) -> str:
    """All mrkdwn text of a posted or updated message's blocks, joined."""
    texts = []
    for block in call.params.get("blocks") or []:
        if block.get("text"):
            texts.append(block["text"]["text"])
        texts += [element.get("text", "") for element in block.get("elements", []) if block["type"] == "context"]
    return "\n".join(texts)
