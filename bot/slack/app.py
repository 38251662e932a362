"""Build the Bolt app from settings and services (tests build the same app around fake servers)."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings
from bot.pipeline import Pipeline
from bot.services import Services
from bot.slack import listeners
from bot.slack.files import SlackFiles

log = logging.getLogger(__name__)


def web_client(settings: Settings) -> WebClient:
    """A Web API client that waits out 429s (Retry-After) and retries dropped connections."""
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


@dataclass
class SlackBot:
    """The Bolt app, the pipeline its listeners hand work to, and the listeners' thread pool."""

    app: App
    pipeline: Pipeline
    listener_pool: ThreadPoolExecutor

    def close(self) -> None:
        """Let running listeners and queued jobs finish (every accepted job is recorded first)."""
        self.listener_pool.shutdown(wait=True)
        self.pipeline.close()


class _SkipTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and notes that our client (which carries that token) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _SkipTokenNotice) for f in logger.filters):
        logger.addFilter(_SkipTokenNotice())
    return logger


def build_app(settings: Settings, services: Services, *, http: bool) -> SlackBot:
    """The app with every listener registered."""
    client = web_client(settings)
    listener_pool = ThreadPoolExecutor(settings.slack_listener_workers, thread_name_prefix="listener")
    app = App(
        client=client,
        logger=bolt_logger(),
        signing_secret=settings.slack_signing_secret,
        request_verification_enabled=http,
        listener_executor=listener_pool,
    )
    identity = client.auth_test()
    files = SlackFiles.from_settings(client, settings)
    jobs = ThreadPoolExecutor(settings.job_workers, thread_name_prefix="job")
    pipeline = Pipeline(services, client, files, jobs, bot_user_id=identity["user_id"])
    listeners.register(app, pipeline, team_url=identity.get("url", ""))

    @app.error
    def log_listener_error(error: Exception) -> None:
        log.exception("listener failed", exc_info=error)

    return SlackBot(app, pipeline, listener_pool)
