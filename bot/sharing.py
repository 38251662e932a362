"""Whether a channel's crystal hits go to the hits channel, and `/crystals share-hits [on|off]`. Pure.

Hits from public channels are shared as they always were. A private channel's hits are shared only
after one of its members turns it on (`/crystals share-hits on`); the latest change, with who made
it and when, is the setting. Turning it off stops new posts; what was posted stays.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from bot.models import HitSharing
from bot.render import Message

VERB = "share-hits"
Change = Literal["on", "off"]

USAGE = (f"`/crystals {VERB}` says whether this channel's crystal hits are posted in the hits channel; "
         f"`/crystals {VERB} on` or `off` changes it (private channels; members only).")
NO_HITS_CHANNEL = "No hits channel is set (HITS_CHANNEL), so crystal hits are posted nowhere else."
THIS_IS_THE_HITS_CHANNEL = "This is the hits channel: crystal hits from the other channels are posted here."
CANNOT_CHECK = "I could not check this channel with Slack just now. Try again in a minute."
MEMBERS_ONLY = ("Only members of this channel can see or change whether its crystal hits are shared, and I could "
                "not confirm with Slack that you are one. If you are, try again in a minute.")


def parse_change(text: str) -> Change | None:
    """The words after the verb: "on", "off", or None (just asking); ValueError(USAGE) for anything else."""
    words = text.lower().split()[1:]
    if not words:
        return None
    if words == ["on"]:
        return "on"
    if words == ["off"]:
        return "off"
    raise ValueError(USAGE)


def may_share(is_private: bool, setting: HitSharing | None) -> bool:
    """A public channel's hits are shared; a private channel's once a member turned it on."""
    return not is_private or bool(setting and setting.shared)


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def status_message(hits_channel: str, is_private: bool, setting: HitSharing | None, changed: bool = False) -> Message:
    """What `/crystals share-hits` answers: whether this channel's hits are posted in the hits channel, who
    decided and when, and how to change it."""
    if not is_private:
        text = (f"This channel is public: its crystal hits are posted in <#{hits_channel}>. Only private channels "
                f"choose, with `/crystals {VERB} on` or `off`.")
    elif setting and setting.shared:
        text = (f"Crystal hits from this private channel are posted in <#{hits_channel}>: turned on by "
                f"<@{setting.user_id}> on {_when(setting.changed_at)}. `/crystals {VERB} off` stops it "
                "(what was posted stays).")
    else:
        by = f" (turned off by <@{setting.user_id}> on {_when(setting.changed_at)})" if setting else ""
        text = (f"Crystal hits from this private channel are not posted in <#{hits_channel}>{by}. A member can "
                f"turn it on with `/crystals {VERB} on`: everyone in <#{hits_channel}> then sees this channel's "
                "crystal hits (the image, its file name, the explanation and who uploaded it).")
    text = f":white_check_mark: Done. {text}" if changed else text
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
