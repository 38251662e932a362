"""HTTP mode's front door (bot/slack/http_guard.py): the checks as pure functions, then a real
`python -m bot http` process under attack: huge, stalled, unsigned, stale and malformed requests."""
from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bot.slack.http_guard import body_problem, signature_problem
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack, sign_request
from tests.helpers import API_KEY
from tests.test_processes import (SIGNING_SECRET, free_port, output_of, start_process,  # noqa: F401
                                  upload_event, wait_listening)

MARKER = "BODY-MARKER-7f3a"  # a rejected body must never reach the log


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_a_correctly_signed_fresh_request_passes() -> None:
    body = b'{"type":"event_callback"}'
    assert signature_problem(lowered(sign_request(body, "s3cret")), body, "s3cret", time.time()) is None


@pytest.mark.parametrize("change, problem", [
    (lambda h: h.pop("x-slack-request-timestamp"), "malformed X-Slack-Request-Timestamp"),
    (lambda h: h.update({"x-slack-request-timestamp": "soon"}), "malformed X-Slack-Request-Timestamp"),
    (lambda h: h.update({"x-slack-request-timestamp": "9" * 400}), "malformed X-Slack-Request-Timestamp"),
    (lambda h: h.update({"x-slack-request-timestamp": "١٢٣"}), "malformed X-Slack-Request-Timestamp"),
    (lambda h: h.update({"x-slack-request-timestamp": str(int(time.time()) - 301)}), "stale"),
    (lambda h: h.pop("x-slack-signature"), "bad X-Slack-Signature"),
    (lambda h: h.update({"x-slack-signature": "v0=é"}), "bad X-Slack-Signature"),
])
def test_unsigned_malformed_or_stale_requests_are_refused(change, problem: str) -> None:
    body = b'{"type":"event_callback"}'
    headers = lowered(sign_request(body, "s3cret"))
    change(headers)
    assert problem in (signature_problem(headers, body, "s3cret", time.time()) or "")


def test_a_signature_with_another_secret_or_over_another_body_is_refused() -> None:
    body = b'{"type":"event_callback"}'
    assert signature_problem(lowered(sign_request(body, "other")), body, "s3cret", time.time())
    assert signature_problem(lowered(sign_request(body, "s3cret")), body + b" ", "s3cret", time.time())


@pytest.mark.parametrize("content_type, body, ok", [
    ("application/json", b'{"type": "url_verification"}', True),
    ("application/json", b"not json", False),
    ("application/json", b"[1, 2]", False),
    ("application/json", b"\xff\xfe", False),
    ("application/x-www-form-urlencoded", b"command=%2Fcrystals&text=help", True),
    ("application/x-www-form-urlencoded", b"payload=%7B%22type%22%3A%22block_actions%22%7D", True),
    ("application/x-www-form-urlencoded", b"payload=%7Bbroken", False),
])
def test_bodies_bolt_cannot_parse_are_named(content_type: str, body: bytes, ok: bool) -> None:
    assert (body_problem(content_type, body) is None) is ok


# --- a real `python -m bot http` process ----------------------------------------------------------


@pytest.fixture
def http_bot(start_process, fake_slack: FakeSlack, fake_openai: FakeOpenAI):
    port = free_port()
    process = start_process("http", SLACK_APP_TOKEN="", HOST="127.0.0.1", PORT=str(port), SLACK_LISTENER_WORKERS="4")
    wait_listening(port, process)
    return port, process


def signed_event(slack: FakeSlack, secret: str = SIGNING_SECRET, **header_changes: str) -> tuple[bytes, dict]:
    body = json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": upload_event(slack),
                       "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time())}).encode()
    return body, {**sign_request(body, secret), "Content-Type": "application/json", **header_changes}


def raw_exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send `head` (and `body`), return the response's first bytes, without sending more."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head + body)
        return connection.recv(4096)


def test_a_huge_unsigned_body_is_refused_from_its_length_before_it_is_sent(http_bot) -> None:
    port, process = http_bot
    head = (b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 400000000\r\n\r\n")
    started = time.monotonic()
    answer = raw_exchange(port, head, MARKER.encode() * 10)  # 160 bytes of the promised 400 MB
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 3
    assert MARKER not in output_of(process)


def test_a_chunked_body_over_the_cap_is_refused_while_it_is_read(http_bot, fake_slack: FakeSlack) -> None:
    port, process = http_bot
    chunks = (MARKER.encode() * 1000 for _ in range(200))  # 3.2 MB, no Content-Length
    response = requests.post(f"http://127.0.0.1:{port}/slack/events", data=chunks, timeout=10,
                             headers=signed_event(fake_slack)[1])
    assert response.status_code == 413
    assert MARKER not in output_of(process)


def test_stalled_connections_do_not_keep_signed_requests_waiting(http_bot, fake_slack: FakeSlack,
                                                                 fake_openai: FakeOpenAI) -> None:
    port, process = http_bot
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    try:
        for i, connection in enumerate(stalled):  # half stop in the headers, half in the body
            connection.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n" if i % 2 else
                               b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")
        body, headers = signed_event(fake_slack)
        started = time.monotonic()
        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda _: requests.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                                            headers=headers, timeout=10).status_code, range(5)))
        assert answers == [200] * 5 and time.monotonic() - started < 3
    finally:
        for connection in stalled:
            connection.close()
    fake_openai.wait_for(lambda: fake_openai.responses_requests(), timeout=20)
    assert process.poll() is None


def test_refused_requests_get_401_or_400_never_act_and_never_log_their_body(http_bot, fake_slack: FakeSlack,
                                                                           fake_openai: FakeOpenAI) -> None:
    port, process = http_bot
    url = f"http://127.0.0.1:{port}/slack/events"
    body, headers = signed_event(fake_slack)
    marked = body.replace(b'"event_callback"', f'"event_callback", "note": "{MARKER}"'.encode())
    cases = {
        "unsigned": (marked, {"Content-Type": "application/json"}),
        "badly signed": (marked, signed_event(fake_slack, secret="not-the-secret")[1]),
        "stale": (marked, {**sign_request(marked, SIGNING_SECRET, int(time.time()) - 600),
                           "Content-Type": "application/json"}),
        "non-numeric timestamp": (marked, {**sign_request(marked, SIGNING_SECRET),
                                           "X-Slack-Request-Timestamp": "now", "Content-Type": "application/json"}),
        "non-JSON": (f"{MARKER} not json".encode(), {**sign_request(f"{MARKER} not json".encode(), SIGNING_SECRET),
                                                      "Content-Type": "application/json"}),
    }
    statuses = {name: requests.post(url, data=data, headers=h, timeout=10).status_code
                for name, (data, h) in cases.items()}
    assert statuses == {"unsigned": 401, "badly signed": 401, "stale": 401, "non-numeric timestamp": 401,
                        "non-JSON": 400}
    assert requests.get(url, timeout=10).status_code == 405
    time.sleep(1)
    assert fake_slack.calls_to("chat.postMessage") == [] and fake_slack.calls_to("reactions.add") == []
    assert fake_openai.responses_requests() == []
    out = output_of(process)
    assert MARKER not in out and "Traceback" not in out and SIGNING_SECRET not in out and API_KEY not in out
