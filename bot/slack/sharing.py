"""`/crystals share-hits [on|off]`: whether a private channel's crystal hits go to the hits channel.
What is decided and said lives in bot/sharing.py; the check before each share in bot/slack/privacy.py."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.render import Message
from bot.sharing import (CANNOT_CHECK, MEMBERS_ONLY, NO_HITS_CHANNEL, THIS_IS_THE_HITS_CHANNEL, parse_change,
                         status_message)
from bot.slack.privacy import Privacy

log = logging.getLogger(__name__)


@dataclass
class HitsSharing:
    privacy: Privacy

    def command(self, command: dict[str, Any], text: str) -> Message:
        """Say whether this channel's hits are shared, or change it: a member of the channel only."""
        try:
            change = parse_change(text)
        except ValueError as usage:
            return Message(str(usage))
        privacy, channel, user = self.privacy, command["channel_id"], command["user_id"]
        if not privacy.hits_channel:
            return Message(NO_HITS_CHANNEL)
        if channel == privacy.hits_channel:
            return Message(THIS_IS_THE_HITS_CHANNEL)
        if not privacy.may_see(user, channel):
            log.warning("share-hits %s by %s in channel %s refused: not a member as far as Slack says", change,
                        user, channel)
            return Message(MEMBERS_ONLY)
        private = privacy.membership.is_private(channel)
        if private is None:
            return Message(CANNOT_CHECK)
        setting = privacy.store.hit_sharing(channel)
        if change is None or not private or bool(setting and setting.shared) == (change == "on"):
            return status_message(privacy.hits_channel, private, setting)
        setting = privacy.store.set_hit_sharing(channel, change == "on", user)
        log.info("%s turned sharing the crystal hits of private channel %s in %s %s", user, channel,
                 privacy.hits_channel, change)
        return status_message(privacy.hits_channel, private, setting, changed=True)
