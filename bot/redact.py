"""Hiding the credentials a URL may carry (user info, query values), for messages, logs and errors."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """`url` with its user info and every query value replaced by ***, and no fragment:
    https://user:pw@host/v1?key=abc -> https://***@host/v1?key=***"""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        query = urlencode([(name, HIDDEN) for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    except ValueError:
        return f"(a URL, hidden: {HIDDEN})"
    netloc = f"{HIDDEN}@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_urls(text: str) -> str:
    """`text` with every URL in it redacted."""
    return _URL.sub(lambda found: redact_url(found[0]), text)
