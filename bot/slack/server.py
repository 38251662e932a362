"""Run the bot: Socket Mode (a `worker` process, no port) or HTTP mode (a `web` process on $PORT).

HTTP mode serves Bolt from gunicorn (one worker process, so one job pool and one database
connection) behind SlackFront, which refuses oversized, unsigned, stale and malformed requests.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

from gunicorn.app.base import BaseApplication
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.prompt import PromptError
from bot.services import build_services
from bot.slack.app import build_app, web_client
from bot.slack.http_guard import SlackFront

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def serve(settings: Settings, *, http: bool) -> int:
    try:
        if http:
            web_client(settings).auth_test()  # fail here, clearly, not inside gunicorn's worker
            GunicornServer(lambda: wsgi_app(settings), settings).run()
            return 0
        return run_socket_mode(settings)
    except (BoltError, SlackApiError) as error:
        log.error("Slack refused to start the bot (%s): check SLACK_BOT_TOKEN and SLACK_APP_TOKEN, and that the app "
                  "is installed in the workspace", error)
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
    log.info("stopping: finishing the jobs in progress")
    handler.close()
    bot.close()
    services.close()
    return 0


def wsgi_app(settings: Settings) -> SlackRequestHandler:
    services = build_services(settings)
    bot = build_app(settings, services, http=True)
    log.info("Find the Crystals is serving %s on port %s (model %s)", EVENTS_PATH, settings.port, settings.openai_model)
    return SlackRequestHandler(bot.app, path=EVENTS_PATH)


class GunicornServer(BaseApplication):
    """gunicorn run from Python, so `python -m bot http` needs no other command line.

    One process on uvicorn's worker, behind SlackFront (bot/slack/http_guard.py says why), so slow
    clients cannot starve it and only bounded, signed requests reach Bolt.
    """

    def __init__(self, load_app: Callable[[], SlackRequestHandler], settings: Settings) -> None:
        self.load_app = load_app
        self.settings = settings
        self.options = {"bind": f"{settings.host}:{settings.port}", "workers": 1,
                        "worker_class": "uvicorn_worker.UvicornWorker", "timeout": 60,
                        "loglevel": settings.log_level.lower(), "accesslog": "-"}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> SlackFront:
        handler = self.load_app()
        return SlackFront(handler.app, signing_secret=self.settings.slack_signing_secret, path=handler.path,
                          threads=self.settings.slack_listener_workers)
