"""Run the bot: Socket Mode (a `worker` process; a port only for GET /healthz and /metrics when
HEALTH_PORT is set) or HTTP mode (a `web` process on $PORT).

HTTP mode serves Bolt from gunicorn (one worker process, so one job pool and one database
connection) behind SlackFront, which refuses oversized, unsigned, stale and malformed requests and
hands GET /healthz and /metrics to bot/ops_server.py.
"""
from __future__ import annotations

import logging
import math
import signal
import threading
from typing import Callable

from gunicorn.app.base import BaseApplication
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.ops import Check, http_mode_check, process_check, socket_mode_check
from bot.ops_server import HealthServer, OpsEndpoints
from bot.prompt import PromptError
from bot.redact import redact_url
from bot.services import Services, build_services
from bot.slack.app import SlackBot, build_app
from bot.slack.http_guard import SlackFront
from bot.slack.posting import web_client
from bot.store import StoreError

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def serve(settings: Settings, *, http: bool) -> int:
    try:
        if http:
            # fail here, clearly, not inside gunicorn's worker
            web_client(settings.slack_bot_token, settings.slack_api_url).auth_test()
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
        log.error("Could not reach Slack at %s (%s): check SLACK_API_URL and the network",
                  redact_url(settings.slack_api_url), error)
        return 2


def run_socket_mode(settings: Settings) -> int:
    try:
        services = build_services(settings)
    except PromptError as error:
        log.error("prompt files problem: %s", error)
        return 2
    bot = build_app(settings, services, http=False)
    handler = SocketModeHandler(bot.app, settings.slack_app_token)
    try:
        health = socket_mode_health(settings, services, bot, handler)
    except OSError as error:
        log.error("HEALTH_PORT: cannot listen on %s port %s (%s): choose a free port, or leave HEALTH_PORT empty",
                  settings.host, settings.health_port, error)
        stop(bot, services)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    handler.connect()
    log.info("Find the Crystals is running in Socket Mode (model %s)", settings.openai_model)
    stopping.wait()
    if health:
        health.close()
    handler.close()
    stop(bot, services)
    return 0


def ops_endpoints(settings: Settings, services: Services, bot: SlackBot, slack: Callable[[], Check]) -> OpsEndpoints:
    return OpsEndpoints(services.store, process=lambda: process_check(bot.queue.is_running()), slack=slack,
                        month_budget_usd=settings.monthly_budget_usd, metrics_token=settings.metrics_token)


def socket_mode_health(settings: Settings, services: Services, bot: SlackBot,
                       handler: SocketModeHandler) -> HealthServer | None:
    """The HEALTH_PORT server, when that is set."""
    if settings.health_port is None:
        return None
    endpoints = ops_endpoints(settings, services, bot, lambda: socket_mode_check(handler.client.is_connected()))
    return HealthServer(endpoints, settings.host, settings.health_port)


class GunicornServer(BaseApplication):
    """gunicorn run from Python, so `python -m bot http` needs no other command line.

    One process on uvicorn's worker, behind SlackFront (bot/slack/http_guard.py says why), so slow
    clients cannot starve it and only bounded, signed requests reach Bolt. The app and its queue
    live in the worker process; on SIGTERM the worker stops taking requests, and its shutdown lets
    running jobs finish within the grace period.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = {"bind": f"{settings.host}:{settings.port}", "workers": 1,
                        "worker_class": "uvicorn_worker.UvicornWorker", "timeout": 60,
                        "graceful_timeout": math.ceil(settings.shutdown_grace_seconds) + 5,
                        "loglevel": settings.log_level.lower(), "accesslog": "-"}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> SlackFront:
        services = build_services(self.settings)
        bot = build_app(self.settings, services, http=True)
        log.info("Find the Crystals is serving %s on port %s (model %s)", EVENTS_PATH, self.settings.port,
                 self.settings.openai_model)
        return SlackFront(bot.app, signing_secret=self.settings.slack_signing_secret, path=EVENTS_PATH,
                          threads=self.settings.slack_listener_workers, on_shutdown=lambda: stop(bot, services),
                          ops=ops_endpoints(self.settings, services, bot, http_mode_check))


def stop(bot: SlackBot, services: Services) -> None:
    log.info("stopping: no new work; finishing the jobs in progress")
    bot.close()
    services.close()
