"""The fake Slack behaves like Slack for the real slack_sdk / slack_bolt / requests clients."""

from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import requests
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack_server import FakeSlack, sign_request

JPEG = next(Path(__file__).parent.glob("data/marco-gsk/crystals/*.jpeg")).read_bytes()
@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    threads_before = set(threading.enumerate())
    with FakeSlack() as server:
        yield server
    leaked = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(base_url=fake.api_url, token=fake.bot_token)


def test_web_api_round_trip(fake: FakeSlack, client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T1")

    parent = fake.add_message("C1", "a drop")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*crystals*"}}]
    reply = client.chat_postMessage(channel="C1", thread_ts=parent["ts"], text="crystals", blocks=blocks)
    assert float(reply["ts"]) > float(parent["ts"])

    call = fake.calls_to("chat.postMessage")[0]
    assert call.content_type.startswith("application/json")  # blocks => JSON body
    assert call.params["blocks"] == blocks
    assert call.token == fake.bot_token
    assert call.headers["content-type"] == call.headers["Content-Type"]

    client.reactions_add(channel="C1", timestamp=parent["ts"], name="eyes")
    with pytest.raises(SlackApiError) as err:
        client.reactions_add(channel="C1", timestamp=parent["ts"], name="eyes")
    assert err.value.response["error"] == "already_reacted"
    assert fake.calls_to("reactions.add")[0].content_type == "application/x-www-form-urlencoded"
    assert fake.reactions("C1", parent["ts"]) == {"eyes"}
    client.reactions_remove(channel="C1", timestamp=parent["ts"], name="eyes")
    assert fake.reactions("C1", parent["ts"]) == set()

    thread = client.conversations_replies(channel="C1", ts=parent["ts"], limit=10)
    assert [m["text"] for m in thread["messages"]] == ["a drop", "crystals"]
    assert thread["messages"][0]["reply_count"] == 1
    assert thread["messages"][1]["blocks"] == blocks

    permalink = client.chat_getPermalink(channel="C1", message_ts=parent["ts"])["permalink"]
    assert permalink == f"https://lab.slack.com/archives/C1/p{parent['ts'].replace('.', '')}"


def test_errors(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=fake.api_url, token="xoxb-wrong").auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        client.api_call("chat.doSomething")
    assert err.value.response["error"] == "unknown_method"
    with pytest.raises(SlackApiError) as err:
        client.files_info(file="FNOPE")
    assert err.value.response["error"] == "file_not_found"
    with pytest.raises(AssertionError, match="chat.doSomething"):
        fake.wait_for(lambda: fake.calls_to("chat.update"), timeout=0.1)


def test_menus_beyond_block_kit_s_limits_are_refused(fake: FakeSlack, client: WebClient) -> None:
    def section_with(menu_type: str, options: int, text: str = "x") -> list[dict]:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": "hit"}, "accessory": {
            "type": menu_type, "action_id": "m", "placeholder": {"type": "plain_text", "text": "p"},
            "options": [{"text": {"type": "plain_text", "text": text}, "value": str(n)} for n in range(options)]}}]

    posted = client.chat_postMessage(channel="C1", text="ok", blocks=section_with("overflow", 5))
    client.chat_postMessage(channel="C1", text="ok", blocks=section_with("static_select", 6))
    for blocks in (section_with("overflow", 6), section_with("static_select", 101),
                   section_with("static_select", 2, "x" * 76)):
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C1", text="too many", blocks=blocks)
        assert err.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts=posted["ts"], text="too many", blocks=section_with("overflow", 6))
    assert err.value.response["error"] == "invalid_blocks"


def test_rate_limit_is_retried(fake: FakeSlack, client: WebClient) -> None:
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    fake.rate_limit_next("chat.postMessage", retry_after=0)
    client.chat_postMessage(channel="C1", text="hi")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]


def test_file_download_and_scan_stub(fake: FakeSlack, client: WebClient) -> None:
    pending = fake.add_file("drop.jpeg", JPEG, pending_scan=True)
    assert pending["file_access"] == "check_file_info" and "url_private" not in pending
    info = client.files_info(file=pending["id"])["file"]
    assert (info["original_w"], info["original_h"]) == (1280, 960)

    ok = requests.get(info["url_private_download"], headers={"Authorization": f"Bearer {fake.bot_token}"})
    assert ok.status_code == 200 and ok.content == JPEG
    assert ok.headers["Content-Type"] == "image/jpeg"

    denied = requests.get(info["url_private"])
    assert [r.status_code for r in denied.history] == [302]
    assert denied.status_code == 200 and denied.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Sign in" in denied.text
    assert len(fake.downloads) == 2


def test_redirect_to_other_host_drops_token(fake: FakeSlack) -> None:
    f = fake.add_file("drop.jpeg", JPEG)
    fake.redirect_file_to(f["id"], fake.elsewhere_url + "cdn/drop.jpeg")
    r = requests.get(f["url_private"], headers={"Authorization": f"Bearer {fake.bot_token}"})
    assert r.content == b"elsewhere"
    first, second = fake.downloads
    assert "Authorization" in first.headers
    assert second.path == "/elsewhere/cdn/drop.jpeg" and "Authorization" not in second.headers


def test_bolt_socket_mode(fake: FakeSlack) -> None:
    executor = ThreadPoolExecutor(max_workers=2)  # Bolt's default one is never shut down
    app = App(client=WebClient(base_url=fake.api_url, token=fake.bot_token), listener_executor=executor)
    received: queue.Queue[dict] = queue.Queue()

    @app.event("message")
    def on_message(event: dict, client: WebClient) -> None:
        received.put(event)
        client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="looking")

    @app.command("/crystals")
    def on_command(ack, respond, command: dict) -> None:
        ack(f"you said {command['text']}")
        respond("done")

    @app.action("again")
    def on_action(ack) -> None:
        ack()

    handler = SocketModeHandler(app, fake.app_token)
    try:
        handler.connect()
        fake.wait_connected()
        assert fake.calls_to("apps.connections.open")[0].token == fake.app_token

        event = fake.add_message("C1", "look", files=[fake.add_file("d.jpeg", JPEG)])
        envelope_id = fake.push_event(event)
        assert fake.wait_for_ack(envelope_id) is None
        assert received.get(timeout=5)["files"][0]["name"] == "d.jpeg"
        fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
        assert len(fake.messages("C1")) == 2

        envelope_id = fake.push_slash_command(fake.slash_command_payload("status", channel="C1"))
        assert fake.wait_for_ack(envelope_id) == {"text": "you said status"}
        assert fake.wait_for(lambda: fake.response_url_posts)[0][1]["text"] == "done"

        bot_message = fake.messages("C1")[1]
        payload = fake.block_actions_payload("again", "retry", message=bot_message, channel="C1")
        assert fake.wait_for_ack(fake.push_interactive(payload)) is None
    finally:
        handler.close()
        executor.shutdown()


def test_sign_request_is_accepted_by_slack_sdk() -> None:
    body = json.dumps({"type": "url_verification", "challenge": "x"}).encode()
    headers = sign_request(body, "s3cret")
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not verifier.is_valid(body, str(int(time.time())), "v0=bad")


def test_files_upload_v2_shares_the_bytes_in_the_thread(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="plate")["ts"]
    client.files_upload_v2(channel="C1", thread_ts=parent, file_uploads=[
        {"content": b"\x89PNG map", "filename": "map.png", "title": "Plate map"},
        {"content": "well,category\nA1,clear\n", "filename": "calls.csv"}])

    assert [(u.filename, u.data, u.title, u.channel, u.thread_ts) for u in fake.uploads] == [
        ("map.png", b"\x89PNG map", "Plate map", "C1", parent),
        ("calls.csv", b"well,category\nA1,clear\n", "calls.csv", "C1", parent)]
    (shared,) = [m for m in fake.messages("C1") if m.get("files")]
    assert shared["thread_ts"] == parent and [f["name"] for f in shared["files"]] == ["map.png", "calls.csv"]
    with pytest.raises(SlackApiError):  # completing an upload whose bytes never arrived
        client.files_completeUploadExternal(files=[{"id": "F404"}], channel_id="C1")
def test_files_upload_v2_in_a_direct_message(fake: FakeSlack, client: WebClient) -> None:
    dm = client.conversations_open(users="U5")["channel"]["id"]
    done = client.files_upload_v2(channel=dm, content=b"a,b\n1,2\n", filename="calls.csv", title="Calls",
                                  initial_comment="here you are")

    assert done["file"]["title"] == "Calls" and fake.file_content(done["file"]["id"]) == b"a,b\n1,2\n"
    (message,) = fake.messages(dm)
    assert message["text"] == "here you are" and message["files"][0]["name"] == "calls.csv"
    assert [c.method for c in fake.calls][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert client.conversations_open(users="U5")["channel"]["id"] == dm  # the same DM each time


def test_conversations_history_newest_first_paged_with_metadata_on_request(fake: FakeSlack, client: WebClient) -> None:
    for n in range(3):
        client.chat_postMessage(channel="C1", text=f"top {n}", metadata={"event_type": "t", "event_payload": {"n": n}})
    parent = fake.add_message("C1", "parent")
    fake.add_message("C1", "a reply, not listed", thread_ts=parent["ts"])

    first = client.conversations_history(channel="C1", limit=2, include_all_metadata=True)
    second = client.conversations_history(channel="C1", limit=2, cursor=first["response_metadata"]["next_cursor"])
    assert [m["text"] for m in first["messages"] + second["messages"]] == ["parent", "top 2", "top 1", "top 0"]
    assert first["messages"][1]["metadata"]["event_payload"] == {"n": 2} and "metadata" not in second["messages"][0]
    assert not second["has_more"]


def test_conversations_list_pages_the_channels_of_the_asked_types(fake: FakeSlack, client: WebClient) -> None:
    for n in range(3):
        fake.add_channel(f"public-{n}", f"C{n}")
    fake.add_channel("secret", "G1", private=True)
    fake.add_channel("old", "C9", archived=True)

    pages = [[c["name"] for c in page["channels"]]  # slack_sdk follows the cursor (one response object, refilled)
             for page in client.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                                   limit=2)]
    assert pages == [["public-0", "public-1"], ["public-2", "secret"]]
    assert [c["id"] for c in client.conversations_list()["channels"]] == ["C0", "C1", "C2", "C9"]


def test_views_open_takes_a_fresh_trigger_once_and_checks_the_modal(fake: FakeSlack, client: WebClient) -> None:
    modal = {"type": "modal", "callback_id": "form", "title": {"type": "plain_text", "text": "Use as example"},
             "blocks": [{"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "Why"},
                         "element": {"type": "plain_text_input", "action_id": "a"}}]}
    trigger = fake.slash_command_payload("examples", channel="C1")["trigger_id"]
    opened = client.views_open(trigger_id=trigger, view=modal)["view"]
    assert fake.opened_views() == [opened] and opened["callback_id"] == "form"
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id=trigger, view=modal)
    assert reused.value.response["error"] == "invalid_trigger_id"
    long_title = {**modal, "title": {"type": "plain_text", "text": "A title longer than Slack allows"}}
    with pytest.raises(SlackApiError) as refused:
        client.views_open(trigger_id=fake.slash_command_payload("x", channel="C1")["trigger_id"], view=long_title)
    assert refused.value.response["error"] == "invalid_arguments"

    submitted = fake.view_submission_payload(opened, {"b": {"a": "typed"}}, user="U2")
    assert submitted["view"]["state"]["values"] == {"b": {"a": {"type": "plain_text_input", "value": "typed"}}}
    assert submitted["user"]["id"] == "U2" and submitted["type"] == "view_submission"
