"""bot.slack.files: the bot token goes to Slack's hosts only, a download is bounded in size and time,
and each refusal reaches the thread with its own message; end to end against the fake Slack."""
from __future__ import annotations

import time
import pytest

from bot.slack.files import OUTSIDE_SLACK, host_of, is_slack_host
from tests.helpers import image_bytes
from tests.hostile_corpus import HEIC, PDF, disagreeing_url
from tests.slack_harness import RunningBot

CRYSTALS = ("10.jpeg", image_bytes("crystals", 10))


@pytest.mark.parametrize("url, host", [
    ("https://files.slack.com/files-pri/T1-F1/download/a.png", "files.slack.com"),
    ("HTTPS://Files.Slack.COM./x", "files.slack.com"),
    ("https://evil.example\\@files.slack.com/x", None),  # urlparse: files.slack.com; requests: evil.example
    ("https://evil.example\\.slack.com/x", None),
    ("https://user:pw@files.slack.com/x", None),
    ("https://evil.example#@files.slack.com/x", "evil.example"),
    ("https://evil.example?@files.slack.com/x", "evil.example"),
    ("ftp://files.slack.com/x", None),
    ("https://[::1/x", None),
])
def test_host_of_is_the_host_requests_connects_to_or_none_when_ambiguous(url: str, host: str | None) -> None:
    assert host_of(url) == host


def test_only_slack_hosts_and_the_api_host_are_slack() -> None:
    assert is_slack_host("files.slack.com", "127.0.0.1") and is_slack_host("slack.com", None)
    assert is_slack_host("127.0.0.1", "127.0.0.1")
    assert not any(is_slack_host(host, "127.0.0.1") for host in ("evil.example", "notslack.com",
                                                               "slack.com.evil.example", None))


def only_reply(bot: RunningBot, event: dict, timeout: float = 15.0) -> str:
    (reply,) = bot.wait_for_posts(event["ts"], 1, timeout=timeout)
    assert bot.wait_until_done(event) == {"warning"}
    return reply.params["text"]


def test_a_backslash_url_in_the_event_never_gets_the_token(start_bot) -> None:
    bot = start_bot()
    hosted = bot.slack.add_file(*CRYSTALS)
    hosted["url_private_download"] = disagreeing_url(bot.slack, f"/files-pri/T1-{hosted['id']}/download/10.jpeg")
    event = bot.upload(hosted)

    assert OUTSIDE_SLACK in only_reply(bot, event)
    assert bot.slack.requests_to("localhost") == []


def test_a_backslash_redirect_never_gets_the_token(start_bot) -> None:
    bot = start_bot()
    hosted = bot.slack.add_file(*CRYSTALS)
    bot.slack.redirect_file_to(hosted["id"], disagreeing_url(bot.slack, "/elsewhere/steal"))
    event = bot.upload(hosted)

    assert OUTSIDE_SLACK in only_reply(bot, event)
    assert bot.slack.requests_to("localhost") == []


def test_a_file_over_the_limit_is_refused_from_its_size_before_any_download(start_bot) -> None:
    bot = start_bot(MAX_DOWNLOAD_MB="1")
    hosted = bot.slack.add_file(*CRYSTALS)
    hosted["size"] = 3_000_000
    event = bot.upload(hosted)

    assert "too large (3 MB; the limit is 1 MB)" in only_reply(bot, event)
    assert bot.slack.downloads == []


def test_a_dripping_download_is_given_up_at_the_deadline(start_bot) -> None:
    bot = start_bot(DOWNLOAD_TIMEOUT="1.5")
    hosted = bot.slack.add_file(*CRYSTALS)
    bot.slack.drip_file(hosted["id"], 0.3)
    started = time.monotonic()
    event = bot.upload(hosted)

    assert "took longer than 1.5 s" in only_reply(bot, event)
    assert time.monotonic() - started < 8  # not the minutes the whole file would take
    assert bot.openai.responses_requests() == []


def test_files_info_failing_with_an_html_page_keeps_the_page_out_of_the_reply(start_bot) -> None:
    bot = start_bot(JOB_MAX_ATTEMPTS="2", JOB_RETRY_SECONDS="0.1")  # a 503 is retried; then the thread hears
    bot.slack.fail_next_raw("files.info", 503, "<html><body><h1>503 Service Unavailable</h1>upstream</body></html>",
                            times=20)
    event = bot.upload(CRYSTALS, pending_scan=True)

    text = only_reply(bot, event, timeout=30)
    assert "HTTP 503" in text and "<" not in text.replace("<@", "") and "upstream" not in text


@pytest.mark.parametrize("name, data, mimetype, filetype, message", [
    ("IMG_0042.heic", HEIC, "image/heic", "heic", "is a HEIC photo, which is not supported; export it as JPEG or PNG"),
    ("scan.jpg", PDF, "image/jpeg", "jpg", "is not an image (it looks like a PDF document); export it as PNG or JPEG"),
])
def test_heic_and_pdf_get_their_own_advice(start_bot, name: str, data: bytes, mimetype: str, filetype: str,
                                           message: str) -> None:
    bot = start_bot()
    event = bot.upload((name, data), mimetype=mimetype, filetype=filetype)

    assert f"{name} {message}" in only_reply(bot, event)


def test_a_normal_image_still_downloads(start_bot) -> None:
    bot = start_bot()
    event = bot.upload(CRYSTALS)

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert "`10.jpeg`" in reply.params["text"] + str(reply.params["blocks"])
    assert [seen.authorization for seen in bot.slack.requests_to("127.0.0.1") if "/files-pri/" in seen.path] == [
        f"Bearer {bot.slack.bot_token}"]
