"""Build the Bolt app, the job queue and what they share from settings and services (tests build
the same app around fake servers)."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

from bot.config import Settings
from bot.queue import JobQueue, QueueSettings, RetryPolicy
from bot.services import Services
from bot.slack import listeners
from bot.slack.deletions import Deletions, deletion_handlers
from bot.slack.examples import TeamExamples, example_handlers
from bot.slack.files import SlackFiles
from bot.slack.history import history_handlers
from bot.slack.intake import Intake
from bot.slack.plate_batch import batch_handlers
from bot.slack.plate_retry import retry_handlers
from bot.slack.membership import Membership
from bot.slack.plates import plate_handlers
from bot.slack.posting import ChannelPacer, SlackPoster, channel_id, web_client
from bot.slack.privacy import Privacy, quiet_where_needed
from bot.slack.sharing import HitsSharing
from bot.slack.screens import screen_handlers
from bot.slack.service_notices import ServiceNotices, notice_handlers
from bot.slack.team import team_handlers
from bot.slack.workflow import Workflow

log = logging.getLogger(__name__)
DAY = 86_400.0


@dataclass
class SlackBot:
    """The Bolt app, the queue its jobs run on, and the listeners' thread pool."""

    app: App
    queue: JobQueue
    listener_pool: ThreadPoolExecutor
    grace_seconds: float

    def close(self) -> None:
        """Stop taking work; let running listeners and jobs finish within the grace period; the rest
        stays queued for the next start (or another process)."""
        self.listener_pool.shutdown(wait=True)
        handed_back = self.queue.stop(self.grace_seconds)
        if handed_back:
            log.info("%s unfinished jobs left in the queue for the next start", handed_back)


class _SkipTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and notes that our client (which carries that token) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _SkipTokenNotice) for f in logger.filters):
        logger.addFilter(_SkipTokenNotice())
    return logger


def queue_settings(settings: Settings) -> QueueSettings:
    return QueueSettings(workers=settings.job_workers, lease_seconds=settings.job_lease_seconds,
                         retry=RetryPolicy(max_attempts=settings.job_max_attempts,
                                                   base_delay=settings.job_retry_seconds))


def build_app(settings: Settings, services: Services, *, http: bool, pacer: ChannelPacer | None = None) -> SlackBot:
    """The app with every listener registered and the queue's workers running. Posts are paced to
    Slack's limit (`pacer`: one a second per channel after a burst of 3, unless given another)."""
    client = web_client(settings.slack_bot_token, settings.slack_api_url)
    listener_pool = ThreadPoolExecutor(settings.slack_listener_workers, thread_name_prefix="listener")
    app = App(
        client=client,
        logger=bolt_logger(),
        signing_secret=settings.slack_signing_secret,
        request_verification_enabled=http,
        listener_executor=listener_pool,
    )
    identity = client.auth_test()
    poster = SlackPoster(client, web_client(settings.slack_bot_token, settings.slack_api_url, idempotent=False),
                         identity["user_id"], pacer or ChannelPacer())
    files = SlackFiles.from_settings(client, settings)
    hits_channel = channel_id(client, settings.hits_channel)
    membership = Membership(web_client(settings.slack_bot_token, settings.slack_api_url, idempotent=False,
                                       rate_limit_retries=0), settings.membership_cache_seconds)
    privacy = Privacy(services.store, membership, hits_channel)
    workflow = Workflow(services, poster, files, privacy, team_url=identity.get("url", ""), hits_channel=hits_channel)

    def upkeep() -> None:
        now = time.time()
        events, images = services.store.prune(now - settings.keep_events_days * DAY,
                                              now - settings.keep_images_days * DAY)
        if events or images:
            log.info("pruned %s old event ids and the bytes of %s old images", events, images)
        services.store.prune_membership_changes(now - settings.membership_cache_seconds)

    handlers = quiet_where_needed({**workflow.handlers(), **plate_handlers(workflow), **team_handlers(workflow),
                                   **example_handlers(workflow), **retry_handlers(workflow),
                                   **batch_handlers(workflow), **deletion_handlers(workflow),
                                   **screen_handlers(workflow), **history_handlers(workflow),
                                   **notice_handlers(workflow)}, privacy)
    queue = JobQueue(services.store, handlers, queue_settings(settings), upkeep=upkeep)
    workflow.wake = queue.notify
    queue.on_wait = ServiceNotices(workflow, settings.service_notice_delay_seconds).job_waits
    services.classifier.gateway.service.hand_back_after(settings.model_wait_in_worker_seconds, queue.notify)
    intake = Intake(services, queue, poster, workflow, identity["user_id"], hits_channel)
    listeners.register(app, intake, TeamExamples(workflow), Deletions(workflow), HitsSharing(privacy))

    @app.error
    def log_listener_error(error: Exception) -> None:
        log.exception("listener failed", exc_info=error)

    queue.start()
    return SlackBot(app, queue, listener_pool, settings.shutdown_grace_seconds)
