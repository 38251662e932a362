"""Who is in which channel, who is a guest, which channels are private: as Slack says, cached.

- `conversations.members` (paged) lists one channel's members; its answer serves everyone asking about
  that channel (a slash command in it, an example from it).
- `users.conversations` lists one person's channels among those the bot can see (a private channel only
  when the bot is in it too): one call where a person's whole view is needed (the Home tab) instead of
  one per channel.
- `conversations.info` says whether a channel is private (trusted, not the first letter of its id);
  `users.info` whether someone is a guest (`is_restricted`, `is_ultra_restricted`).

Entries come only from Slack's answers and its events (member_joined_channel, member_left_channel, the
bot removed from a channel), never from a guess, and each expires `ttl` seconds after Slack answered, so
an event this process missed is made good within `ttl`; one another process received reaches this one
through the database (`changed_elsewhere`, bot/slack/privacy.py). A lookup that fails (429, 5xx, a
dropped connection, an error) answers None, "unknown": callers then show less. After
a 429 the method is not asked again until its Retry-After has passed (the answer meanwhile: unknown), so
a slash command never waits minutes for its answer. An answer that was on its way while an event changed
the same channel or person is not trusted (unknown) nor kept.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Collection, Mapping, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.visibility import is_direct_message

log = logging.getLogger(__name__)

T = TypeVar("T")
PAGE_SIZE = 200  # Slack's recommendation for paged lists
DEFAULT_PAUSE = 30.0  # seconds to leave a method alone after a 429 without Retry-After
CHANNEL_TYPES = "public_channel,private_channel"

Entry = tuple[float, T]  # (when Slack answered, the answer)


class Membership:
    def __init__(self, client: WebClient, ttl: float, clock: Callable[[], float] = time.monotonic,
                 page_size: int = PAGE_SIZE) -> None:
        self.client = client  # one that does not wait out 429s itself (bot/slack/posting.py web_client)
        self.ttl = ttl
        self.clock = clock
        self.page_size = page_size
        self._members: dict[str, Entry[set[str]]] = {}  # channel -> its members
        self._channels: dict[str, Entry[set[str]]] = {}  # person -> their channels
        self._private: dict[str, Entry[bool]] = {}  # channel -> private?
        self._guests: dict[str, Entry[bool]] = {}  # person -> guest?
        self._events = 0  # events seen so far
        self._changed: dict[str, int] = {}  # channel or person -> the number of the event that last changed it
        self._paused: dict[str, float] = {}  # Web API method -> until when Slack asked to be left alone
        self._lock = threading.Lock()

    # --- questions ---------------------------------------------------------------------------------

    def member_channels(self, user: str, channels: Collection[str]) -> tuple[frozenset[str], bool]:
        """Of `channels`, those Slack says the person is a member of, and whether every one could be
        checked (a channel that could not be is left out). DMs are never looked up, never included."""
        wanted = [channel for channel in channels if not is_direct_message(channel)]
        verdicts = {channel: self._known(user, channel) for channel in wanted}
        unknown = [channel for channel, verdict in verdicts.items() if verdict is None]
        if len(unknown) == 1:
            self._lookup(self._members, unknown[0], "conversations.members", lambda: self._list_members(unknown[0]))
        elif unknown:
            self._lookup(self._channels, user, "users.conversations", lambda: self._list_channels(user))
        verdicts.update((channel, self._known(user, channel)) for channel in unknown)
        return (frozenset(channel for channel, verdict in verdicts.items() if verdict),
                all(verdict is not None for verdict in verdicts.values()))

    def is_member(self, user: str, channel: str) -> bool:
        """True only when Slack says so (a failed lookup or a DM: False)."""
        return channel in self.member_channels(user, [channel])[0]

    def is_private(self, channel: str) -> bool | None:
        """From conversations.info; None when Slack could not say."""
        return self._lookup(self._private, channel, "conversations.info", lambda: self._read_private(channel))

    def is_guest(self, user: str) -> bool | None:
        """From users.info; None when Slack could not say."""
        return self._lookup(self._guests, user, "users.info", lambda: self._read_guest(user))

    # --- what the events say -----------------------------------------------------------------------

    def joined(self, user: str, channel: str) -> None:
        self._change(user, channel, set.add)

    def left(self, user: str, channel: str) -> None:
        self._change(user, channel, set.discard)

    def changed_elsewhere(self, user: str, channel: str) -> None:
        """Another process heard that the person joined or left the channel: both are asked afresh."""
        with self._lock:
            self._events += 1
            self._changed[user] = self._changed[channel] = self._events
            self._members.pop(channel, None)
            self._channels.pop(user, None)

    def forget_channel(self, channel: str) -> None:
        """The bot left the channel (or it was archived or deleted): nothing known of it is kept."""
        with self._lock:
            self._events += 1
            self._changed[channel] = self._events
            self._members.pop(channel, None)
            self._private.pop(channel, None)
            self._channels.clear()  # each person's list named the channel: asked afresh (this is rare)

    def sizes(self) -> Mapping[str, int]:
        """How many entries each table holds (for the benchmark and the log)."""
        with self._lock:
            return {"channels": len(self._members), "people": len(self._channels), "private": len(self._private),
                    "guests": len(self._guests),
                    "memberships": sum(len(members) for _, members in self._members.values())}

    # --- the cache ---------------------------------------------------------------------------------

    def _known(self, user: str, channel: str) -> bool | None:
        """From a fresh entry: the channel's members, else the person's channels; None if neither."""
        with self._lock:
            for table, key, item in ((self._members, channel, user), (self._channels, user, channel)):
                entry = table.get(key)
                if entry and self.clock() - entry[0] < self.ttl:
                    return item in entry[1]
        return None

    def _change(self, user: str, channel: str, apply: Callable[[set[str], str], None]) -> None:
        with self._lock:
            self._events += 1
            self._changed[user] = self._changed[channel] = self._events
            if channel in self._members:
                apply(self._members[channel][1], user)
            if user in self._channels:
                apply(self._channels[user][1], channel)

    def _lookup(self, table: dict[str, Entry[T]], key: str, method: str, ask: Callable[[], T]) -> T | None:
        """A fresh cached answer, else Slack's (kept), else None."""
        with self._lock:
            started, events = self.clock(), self._events
            entry = table.get(key)
            if entry and started - entry[0] < self.ttl:
                return entry[1]
            if self._paused.get(method, 0.0) > started:
                return None
        try:
            answer = ask()
        except SlackApiError as error:
            self._failed(method, key, error)
            return None
        except OSError as error:
            log.warning("%s for %s failed: %s; showing less until it answers", method, key, type(error).__name__)
            return None
        with self._lock:
            if self._changed.get(key, 0) > events:
                return None  # an event changed it while Slack was answering: neither trusted nor kept
            table[key] = (started, answer)
        return answer

    def _failed(self, method: str, key: str, error: SlackApiError) -> None:
        status = error.response.status_code
        if status == 429:
            retry_after = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
            pause = float(retry_after) if retry_after else DEFAULT_PAUSE
            with self._lock:
                self._paused[method] = self.clock() + pause
            log.warning("Slack rate-limits %s: not asked again for %.0f s; showing less meanwhile", method, pause)
        else:
            log.warning("%s for %s failed (%s %s); showing less", method, key, status, error.response.get("error"))

    # --- Slack -------------------------------------------------------------------------------------

    def _list_members(self, channel: str) -> set[str]:
        return set(self._paged(lambda cursor: self.client.conversations_members(
            channel=channel, limit=self.page_size, cursor=cursor), "members"))

    def _list_channels(self, user: str) -> set[str]:
        return {channel["id"] for channel in self._paged(lambda cursor: self.client.users_conversations(
            user=user, types=CHANNEL_TYPES, exclude_archived=True, limit=self.page_size, cursor=cursor), "channels")}

    @staticmethod
    def _paged(page: Callable[[str | None], Any], key: str) -> list[Any]:
        """Every item of a cursor-paged list."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            response = page(cursor)
            items += response[key]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return items

    def _read_private(self, channel: str) -> bool:
        info = self.client.conversations_info(channel=channel)["channel"]
        return bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))

    def _read_guest(self, user: str) -> bool:
        info = self.client.users_info(user=user)["user"]
        return bool(info.get("is_restricted") or info.get("is_ultra_restricted"))
