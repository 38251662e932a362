"""Which messages in a call's thread are meant for the bot."""
from __future__ import annotations

import pytest

from bot.addressing import asks_something, mentions

ASKS = [
    ("why not precipitate?", True),
    ("and now?", True),
    ("Why is this crystals", True),
    ("what's the grainy stuff at the edge", True),
    ("What’s that at the edge", True),  # a typographic apostrophe
    ("how sure are you", True),
    ("which drop is best", True),
    ("could it be salt", True),
    ("should we optimise this condition", True),
    ("can you look again", True),
    ("is that a crystal or dust", True),
    ("are these needles", True),
    ("does this look like phase separation", True),
    ("explain the call", True),
    ("Compare it with the drop above", True),
    ("please describe the edges", True),
    ("<@U2> why did it say crystals", True),  # a mention of someone else does not hide the question
    ("*Why* crystals", True),
    ("nice one!", False),
    ("let's set up an optimisation screen for this", False),
    ("great, thanks", False),
    ("<@U2> look at this one", False),
    ("this is the best drop so far", False),
    ("whyever not", False),  # a word that only starts like one
    ("", False),
    (":tada:", False),
]


@pytest.mark.parametrize(("text", "expected"), ASKS)
def test_a_message_asks_something_when_it_has_a_question_mark_or_opens_like_a_question(text, expected):
    assert asks_something(text) is expected


def test_a_mention_is_of_this_user_only():
    assert mentions("thanks <@UBOT>", "UBOT")
    assert not mentions("thanks <@UBOT2>", "UBOT") and not mentions("thanks UBOT", "UBOT")
