"""Who sees what: one rule for every surface (the Home tab, `/crystals stats`, `recent`, `examples`,
`export`). Pure: the caller brings the person's channels, as Slack said; nothing here asks Slack.

The rule: a person sees what comes from conversations they are a member of, and nothing of a channel
the bot was removed from. What they may not see is left out, or at most counted without its channel
("3 more calls in channels you are not in"). Membership is never guessed: a channel whose membership
Slack did not confirm (a lookup that failed) counts as one the person is not in, so a failure shows
less, never more. Direct messages (ids starting with D) are never looked up; the bot keeps nothing of
them but what it sent that one person, so nobody else's surface shows them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, Generic, Iterable, Mapping, TypeVar

from bot.models import MonthSpend

T = TypeVar("T")

INCOMPLETE_NOTE = ("_I could not check all your channels with Slack just now, so some of their calls are left "
                   "out. Look again in a minute._")
NOT_A_MEMBER = ("I show a channel's calls only to its members, and Slack did not confirm that you are a member of "
                "this one. If you are, try again in a minute.")


@dataclass(frozen=True)
class Viewer:
    """A person and the channels they may see: those Slack says they are a member of, the bot still in."""

    user_id: str
    channels: frozenset[str]
    complete: bool = True  # False: some membership could not be checked, and is left out
    gone: frozenset[str] = frozenset()  # channels the bot was removed from: shown to nobody, not even counted

    def sees(self, channel: str) -> bool:
        return channel in self.channels


@dataclass(frozen=True)
class Scoped(Generic[T]):
    """What a person sees of some items, and how many more there are that they may not see."""

    shown: list[T]
    hidden: int


def is_direct_message(channel: str) -> bool:
    return channel.startswith("D")


def lookup_channels(channels: Iterable[str], removed: Collection[str]) -> frozenset[str]:
    """Of the channels the bot keeps data of, those whose members may see it: not removed, not a DM."""
    return frozenset(channel for channel in channels if channel not in removed and not is_direct_message(channel))


def scope(items: Iterable[T], channel_of: Callable[[T], str], viewer: Viewer) -> Scoped[T]:
    """Split items into those the viewer sees and a count of the others (those of channels the bot was
    removed from are neither)."""
    shown: list[T] = []
    hidden = 0
    for item in items:
        channel = channel_of(item)
        if viewer.sees(channel):
            shown.append(item)
        elif channel not in viewer.gone:
            hidden += 1
    return Scoped(shown, hidden)


def scope_spend(spend: MonthSpend, viewer: Viewer) -> MonthSpend:
    """The month's spend as a person may see it: per channel only for their channels, the rest as one
    sum without names (the total stays: it is what the budget counts)."""
    seen = {channel: cost for channel, cost in spend.by_channel.items() if viewer.sees(channel)}
    others = sum(cost for channel, cost in spend.by_channel.items() if not viewer.sees(channel))  # gone ones too
    return replace(spend, by_channel=seen, others_usd=spend.others_usd + others)


def _more(number: int, what: str) -> str:
    return f"{number} more {what}{'' if number == 1 else 's'}"


def hidden_note(calls: int, plates: int, period: str = "") -> str:
    """"3 more calls and 1 more plate in the last 30 days are from channels you are not in." ("" for none)."""
    parts = [_more(n, what) for n, what in ((calls, "call"), (plates, "plate")) if n]
    if not parts:
        return ""
    verb = "is" if calls + plates == 1 else "are"
    return f"_{' and '.join(parts)}{f' {period}' if period else ''} {verb} from channels you are not in._"


def shared_nowhere(file: Mapping[str, Any]) -> bool:
    """Whether a file (as files.info describes it) is left in no conversation at all."""
    shares = file.get("shares") or {}
    return not any(file.get(kind) for kind in ("channels", "groups", "ims")) and not any(shares.values())
