"""bot.redact: no URL's credentials survive, and the rest of the URL stays readable."""
from __future__ import annotations

import pytest

from bot.redact import redact_url, redact_urls


@pytest.mark.parametrize("url, shown", [
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("https://user:hunter2@gateway.example:8443/v1", "https://***@gateway.example:8443/v1"),
    ("https://gateway.example/v1?api-key=sk-123&region=eu", "https://gateway.example/v1?api-key=***&region=***"),
    ("postgresql://crystals:pa%40ss@db.example:5432/lab?sslpassword=x", "postgresql://***@db.example:5432/lab?sslpassword=***"),
    ("https://a@b@host.example/#token=abc", "https://***@host.example/"),
    ("https://[::1/v1?k=secret", "(a URL, hidden: ***)"),
])
def test_a_url_keeps_its_host_and_path_and_loses_its_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_urls_inside_text_are_redacted_and_the_text_kept() -> None:
    text = "Could not reach https://u:topsecret@gw.example/v1?key=k3y (tried twice); see http://docs.example/x"
    assert redact_urls(text) == ("Could not reach https://***@gw.example/v1?key=*** (tried twice); "
                                 "see http://docs.example/x")
