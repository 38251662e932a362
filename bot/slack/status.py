"""`/crystals status` and the Home tab's part on the model service: read from the store (every process's
shared state of the service, and the queue), worded by bot/status.py. Counts only, no channel named, so
anyone may see them (bot/visibility.py)."""
from __future__ import annotations

import time

from bot.provider import snapshots
from bot.render import Message
from bot.status import status_message, status_text
from bot.store import Store

VERB = "status"


def service_status(store: Store) -> str:
    """The model service and the queue as they stand (the Home tab's part)."""
    return status_text(snapshots(store), store.model_queue(), time.time())


def status_command(store: Store) -> Message:
    return status_message(service_status(store))
