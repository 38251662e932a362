"""Is a message in a call's thread meant for the bot? Pure.

People talk to each other in a call's thread ("nice one!", "let's set up a screen"); the bot answers
only a message that mentions it, or one that asks something: a question mark anywhere, or a first
word that opens a question or a request ("why", "could", "explain", ...).
"""
from __future__ import annotations

import re

QUESTION_OPENERS = frozenset({
    "why", "what", "whats", "how", "hows", "which", "who", "where", "when", "whether",
    "could", "would", "should", "can", "cant", "couldnt", "wouldnt", "shouldnt", "may", "might",
    "is", "isnt", "are", "arent", "was", "were", "does", "doesnt", "do", "dont", "did", "didnt",
    "will", "wont", "has", "have", "hasnt", "havent",
    "explain", "compare", "describe", "tell", "show", "list", "summarise", "summarize", "suggest",
    "recommend", "please", "help", "identify", "classify", "check",
})
_MENTION = re.compile(r"<[@!#][^>]*>")
_WORD = re.compile(r"[a-z']+")


def mentions(text: str, user_id: str) -> bool:
    return f"<@{user_id}>" in text


def asks_something(text: str) -> bool:
    """A question mark, or a first word (after any mentions of people) that opens a question or a request."""
    if "?" in text:
        return True
    words = _WORD.findall(_MENTION.sub(" ", text).lower().replace("\u2019", "'"))
    return bool(words) and words[0].replace("'", "") in QUESTION_OPENERS

