"""The one visibility rule (bot/visibility.py) applied with what Slack says, and the jobs that must end
quietly: those for a channel the bot was removed from, those of a deleted upload, and hits of a private
channel that nobody opted in to share (bot/sharing.py).

Every job runs through `Quiet` (wrapped around the handlers in bot/slack/app.py), so no job kind can
forget the check: nothing is posted where the bot is no longer, nor shared that must not be.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Collection, Mapping

from bot.models import Inspection, Job, MonthSpend, ReviewedCall
from bot.queue import Handler, RetryLater, process_name
from bot.sharing import may_share
from bot.slack.membership import Membership
from bot.store import Store
from bot.visibility import INCOMPLETE_NOTE, Viewer, hidden_note, lookup_channels, scope, scope_spend

log = logging.getLogger(__name__)

SHARING_KINDS = ("hit", "plate_hits")  # jobs that post a channel's hits in the hits channel


@dataclass
class Privacy:
    store: Store
    membership: Membership
    hits_channel: str = ""  # the id HITS_CHANNEL names ("" for none)
    process: str = field(default_factory=process_name)  # who heard a membership change, in the database
    _applied: dict[int, float] = field(default_factory=dict, init=False)  # changes heard elsewhere -> when read
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    # --- who sees what -------------------------------------------------------------------------------

    def viewer(self, user_id: str, channels: Collection[str] | None = None) -> Viewer:
        """The person with those of `channels` (default: every channel the bot keeps data of) they may see:
        the ones Slack says they are in, the bot still there."""
        self.catch_up()
        removed = self.store.removed_channels()
        candidates = lookup_channels(self.store.data_channels() if channels is None else channels, removed)
        seen, complete = self.membership.member_channels(user_id, candidates)
        return Viewer(user_id, seen, complete, removed)

    def may_see(self, user_id: str, channel: str) -> bool:
        return self.viewer(user_id, [channel]).sees(channel)

    def seen_by(self, user_id: str) -> SeenData:
        return SeenData(self.store, self.viewer(user_id))

    # --- people joining and leaving channels ------------------------------------------------------------

    def person_joined(self, user: str, channel: str) -> None:
        self.membership.joined(user, channel)
        self.store.note_membership_change(user, channel, self.process)

    def person_left(self, user: str, channel: str) -> None:
        self.membership.left(user, channel)
        self.store.note_membership_change(user, channel, self.process)

    def catch_up(self) -> None:
        """Forget what this process cached of the people and channels whose membership changed as another
        process heard (Slack sends an event to one process only). Changes are read again for as long as a
        cache entry lives, and each applied once: one committed late is not missed."""
        now = time.time()
        changes = self.store.membership_changes(now - self.membership.ttl, self.process)
        with self._lock:
            fresh = [change for change in changes if change.id not in self._applied]
            self._applied = {id_: at for id_, at in self._applied.items() if at >= now - self.membership.ttl}
            self._applied.update((change.id, now) for change in fresh)
        for change in fresh:
            self.membership.changed_elsewhere(change.user, change.channel)
        if fresh:
            log.info("%s membership changes heard by other processes: asked afresh", len(fresh))

    # --- the bot's channels --------------------------------------------------------------------------

    def bot_removed(self, channel: str, how: str) -> None:
        """The bot left the channel, or it was archived or deleted: its data shows nowhere, nothing more is
        posted there, its queued jobs end quietly."""
        if self.store.remove_channel(channel, how):
            log.info("channel %s %s: its data is no longer shown and nothing more is posted there", channel, how)
        self.membership.forget_channel(channel)

    def bot_back(self, channel: str) -> None:
        if self.store.restore_channel(channel):
            log.info("the bot is in channel %s again", channel)
        self.membership.forget_channel(channel)  # its members are asked afresh

    def heard_from(self, channel: str) -> None:
        """An upload came from the channel, so the bot is in it (say, a channel unarchived)."""
        if self.store.channel_removed(channel):
            self.bot_back(channel)

    # --- jobs that end quietly -------------------------------------------------------------------------

    def why_quiet(self, job: Job) -> str | None:
        """Why a job must end without doing anything; None to run it. RetryLater when Slack could not say
        whether a channel is private (its hits wait rather than being shared on a guess)."""
        hits_channel = job.payload.get("hits_channel", "") if job.kind in SHARING_KINDS else ""
        for channel in filter(None, (job.channel, hits_channel)):
            if self.store.channel_removed(channel):
                return f"the bot is no longer in channel {channel}"
        if self.store.deleted_jobs([job.id, *([job.payload["job_id"]] if job.kind == "hit" else [])]):
            return "its upload was deleted"
        if hits_channel:
            private = self.membership.is_private(job.channel)
            if private is None:
                raise RetryLater(f"could not check whether channel {job.channel} is private")
            if not may_share(private, self.store.hit_sharing(job.channel)):
                return f"channel {job.channel} is private and its hits are not shared (/crystals share-hits)"
        return None


@dataclass
class Quiet:
    """A job handler that first checks `Privacy.why_quiet`: such a job ends (failed, with the reason) and
    the log says why."""

    inner: Handler
    privacy: Privacy

    def run(self, job: Job) -> None:
        reason = self.privacy.why_quiet(job)
        if reason is None:
            self.inner.run(job)
            return
        log.info("%s job %s (channel %s) ends quietly: %s", job.kind, job.id, job.channel, reason)
        self.privacy.store.finish_job(job.id, "failed", error=reason)

    def give_up(self, job: Job, reason: str) -> None:
        self.inner.give_up(job, reason)


def quiet_where_needed(handlers: Mapping[str, Handler], privacy: Privacy) -> dict[str, Handler]:
    return {kind: Quiet(handler, privacy) for kind, handler in handlers.items()}


@dataclass
class SeenData:
    """The store's calls, plates, verdicts and spend as one person may see them (the Home tab)."""

    store: Store
    viewer: Viewer

    def recent_jobs(self, limit: int) -> list[Job]:
        return self.store.recent_jobs_in(self.viewer.channels, limit)

    def recent_inspections(self, limit: int) -> list[Inspection]:
        return self.store.recent_inspections_in(self.viewer.channels, limit)

    def labelled_calls_since(self, since: float) -> list[tuple[float, str]]:
        calls = scope(self.store.calls_by_channel_since(since), lambda call: call[2], self.viewer).shown
        return [(moment, label) for moment, label, _ in calls]

    def reviewed_calls(self) -> list[ReviewedCall]:
        return scope(self.store.reviewed_calls(), lambda call: call.channel, self.viewer).shown

    def spend(self, spend: MonthSpend) -> MonthSpend:
        return scope_spend(spend, self.viewer)

    def notes(self, since: float, period: str) -> tuple[str, ...]:
        """What the person is not shown: how many calls and plates since `since` are from channels they are
        not in, and whether some of their channels could not be checked."""
        calls = scope(self.store.calls_by_channel_since(since), lambda call: call[2], self.viewer).hidden
        plates = scope(self.store.inspection_channels_since(since), lambda channel: channel, self.viewer).hidden
        return tuple(note for note in (hidden_note(calls, plates, period),
                                       "" if self.viewer.complete else INCOMPLETE_NOTE) if note)
