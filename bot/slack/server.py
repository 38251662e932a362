"""Run the bot: Socket Mode (a `worker` process, no port) or HTTP mode (a `web` process on $PORT).

HTTP mode serves Bolt's WSGI adapter from gunicorn (one worker process with threads, so one job
pool and one database connection), with Slack's request signatures verified by Bolt.
"""
from __future__ import annotations

import logging
import math
import signal
import threading
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.prompt import PromptError
from bot.services import Services, build_services
from bot.store import StoreError
from bot.slack.app import SlackBot, build_app
from bot.slack.posting import web_client

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def serve(settings: Settings, *, http: bool) -> int:
    try:
        if http:
            web_client(settings.slack_bot_token, settings.slack_api_url).auth_test()  # fail here, clearly, not inside gunicorn's worker
            GunicornServer(settings).run()
            return 0
        return run_socket_mode(settings)
    except (BoltError, SlackApiError) as error:
        log.error("Slack refused to start the bot (%s): check SLACK_BOT_TOKEN and SLACK_APP_TOKEN, and that the app "
                  "is installed in the workspace", error)
        return 2
    except StoreError as error:
        log.error("%s", error)
        return 2
    except OSError as error:
        log.error("Could not reach Slack at %s (%s): check SLACK_API_URL and the network", settings.slack_api_url, error)
        return 2


def run_socket_mode(settings: Settings) -> int:
    try:
        services = build_services(settings)
    except PromptError as error:
        log.error("prompt files problem: %s", error)
        return 2
    bot = build_app(settings, services, http=False)
    handler = SocketModeHandler(bot.app, settings.slack_app_token)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    handler.connect()
    log.info("Find the Crystals is running in Socket Mode (model %s)", settings.openai_model)
    stop.wait()
    log.info("stopping: no new work; finishing the jobs in progress")
    handler.close()
    bot.close()
    services.close()
    return 0


class GunicornServer(BaseApplication):
    """gunicorn run from Python, so `python -m bot http` needs no other command line. The app and
    its queue live in the worker process; on SIGTERM the worker stops taking requests, and its
    `worker_exit` hook lets running jobs finish within the grace period."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: tuple[Services, SlackBot] | None = None
        self.options = {"bind": f"{settings.host}:{settings.port}", "workers": 1, "worker_class": "gthread",
                        "threads": settings.slack_listener_workers, "timeout": 60,
                        "graceful_timeout": math.ceil(settings.shutdown_grace_seconds) + 5, "worker_exit": self._worker_exit,
                        "loglevel": settings.log_level.lower(), "accesslog": "-"}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        services = build_services(self.settings)
        bot = build_app(self.settings, services, http=True)
        self.running = services, bot
        log.info("Find the Crystals is serving %s on port %s (model %s)", EVENTS_PATH, self.settings.port,
                 self.settings.openai_model)
        return SlackRequestHandler(bot.app, path=EVENTS_PATH)

    def _worker_exit(self, server: Any, worker: Any) -> None:
        if self.running:
            services, bot = self.running
            log.info("stopping: no new work; finishing the jobs in progress")
            bot.close()
            services.close()
