"""`python -m bot` (Socket Mode) and `python -m bot http` (gunicorn) as real processes, configured by
environment variables only, against the fake Slack and the fake OpenAI."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from bot.config import PROJECT_ROOT
from bot.store import MIGRATIONS
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack, sign_request
from tests.helpers import API_KEY, MARCO, image_bytes
from tests.slack_harness import CHANNEL, slack_environ

SIGNING_SECRET = "test-signing-secret"
MARCO_IMAGE = MARCO / "crystals" / "10.jpeg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def start_process(tmp_path: Path, test_environ: dict[str, str],
                  fake_slack: FakeSlack) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, **extra: str) -> subprocess.Popen[str]:
        env = {key: value for key, value in os.environ.items()
               if "PROXY" not in key.upper() and not key.startswith(("OPENAI_", "SLACK_"))}
        env.update({**test_environ, **slack_environ(fake_slack), "PYTHONPATH": str(PROJECT_ROOT), **extra})
        process = subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, cwd=tmp_path, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def output_of(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    return out


def upload_event(slack: FakeSlack) -> dict:
    return slack.add_message(CHANNEL, "", files=[slack.add_file("10.jpeg", image_bytes("crystals", 10))])


def test_python_m_bot_answers_an_upload_in_socket_mode(start_process, fake_slack: FakeSlack,
                                                       fake_openai: FakeOpenAI) -> None:
    process = start_process()
    fake_slack.wait_connected(timeout=30)
    event = upload_event(fake_slack)
    fake_slack.push_event(event)

    reply = fake_slack.wait_for(lambda: [c for c in fake_slack.calls_to("chat.postMessage")
                                         if c.params.get("thread_ts") == event["ts"]], timeout=30)[0]
    assert "*clear* · `10.jpeg`" in reply.params["blocks"][0]["text"]["text"]
    fake_slack.wait_for(lambda: "droplet" in fake_slack.reactions(CHANNEL, event["ts"]))
    out = output_of(process)
    assert process.returncode == 0, out
    assert "running in Socket Mode" in out
    assert API_KEY not in out and fake_slack.bot_token not in out and fake_slack.app_token not in out


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_a_wrong_slack_token_stops_with_a_clear_message(start_process, mode: str) -> None:
    process = start_process(mode, SLACK_BOT_TOKEN="xoxb-wrong", HOST="127.0.0.1", PORT=str(free_port()))
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "check SLACK_BOT_TOKEN" in out and "Traceback" not in out


def wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # not bound yet, or still loading the app
            time.sleep(0.1)
    raise AssertionError("the HTTP server did not start")


def test_http_mode_handles_a_signed_event_and_refuses_a_bad_signature(start_process, fake_slack: FakeSlack,
                                                                       fake_openai: FakeOpenAI) -> None:
    port = free_port()
    process = start_process("http", SLACK_APP_TOKEN="", HOST="127.0.0.1", PORT=str(port))
    wait_listening(port, process)
    url = f"http://127.0.0.1:{port}/slack/events"
    event = upload_event(fake_slack)
    body = json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": event,
                       "event_id": "EvHTTP1", "event_time": int(time.time())}).encode()

    forged = requests.post(url, data=body, headers={**sign_request(body, "not-the-secret"),
                                                     "Content-Type": "application/json"}, timeout=10)
    stale = requests.post(url, data=body, headers={**sign_request(body, SIGNING_SECRET, int(time.time()) - 600),
                                                    "Content-Type": "application/json"}, timeout=10)
    signed = requests.post(url, data=body, headers={**sign_request(body, SIGNING_SECRET),
                                                     "Content-Type": "application/json"}, timeout=10)

    assert (forged.status_code, stale.status_code, signed.status_code) == (401, 401, 200)
    reply = fake_slack.wait_for(lambda: [c for c in fake_slack.calls_to("chat.postMessage")
                                         if c.params.get("thread_ts") == event["ts"]], timeout=30)
    assert len(reply) == 1 and "`10.jpeg`" in reply[0].params["text"] + reply[0].params["blocks"][0]["text"]["text"]
    assert len(fake_openai.responses_requests()) == 1
    out = output_of(process)
    assert SIGNING_SECRET not in out and API_KEY not in out


def bot_replies(slack: FakeSlack, thread_ts: str) -> list[dict]:
    return [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == thread_ts and m.get("user") == slack.bot_user_id]


def wait_for_model_request(openai: FakeOpenAI, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while len(openai.responses_requests()) < count:
        assert time.monotonic() < deadline, "the model was never asked"
        time.sleep(0.05)


def test_a_process_killed_during_a_model_call_has_its_image_answered_once_by_the_next(
        database_url: str, start_process, fake_slack: FakeSlack, fake_openai: FakeOpenAI) -> None:
    fake_openai.delay = 30.0
    first = start_process(DATABASE_URL=database_url, JOB_LEASE_SECONDS="2")
    fake_slack.wait_connected(timeout=30)
    event = upload_event(fake_slack)
    fake_slack.push_event(event)
    wait_for_model_request(fake_openai)
    first.kill()  # kill -9: no chance to hand anything back
    first.wait()
    fake_openai.delay = 0.0

    start_process(DATABASE_URL=database_url, JOB_LEASE_SECONDS="2")
    fake_slack.wait_for(lambda: bot_replies(fake_slack, event["ts"]), timeout=60, what="the recovered reply")
    fake_slack.wait_for(lambda: "eyes" not in fake_slack.reactions(CHANNEL, event["ts"]), timeout=30)
    assert len(bot_replies(fake_slack, event["ts"])) == 1
    assert fake_slack.reactions(CHANNEL, event["ts"]) == {"droplet"}


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_sigterm_lets_the_running_job_finish_before_the_process_ends(
        mode: str, start_process, fake_slack: FakeSlack, fake_openai: FakeOpenAI) -> None:
    fake_openai.delay = 1.5
    port = free_port()
    process = start_process(mode, HOST="127.0.0.1", PORT=str(port))
    if mode == "http":
        wait_listening(port, process)
        event = upload_event(fake_slack)
        body = json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": event,
                           "event_id": "EvTERM", "event_time": int(time.time())}).encode()
        requests.post(f"http://127.0.0.1:{port}/slack/events", data=body, timeout=10,
                      headers={**sign_request(body, SIGNING_SECRET), "Content-Type": "application/json"})
    else:
        fake_slack.wait_connected(timeout=30)
        event = upload_event(fake_slack)
        fake_slack.push_event(event)
    wait_for_model_request(fake_openai)

    out = output_of(process)  # SIGTERM while the model is still thinking

    assert process.returncode == 0, out
    assert len(bot_replies(fake_slack, event["ts"])) == 1, out
    assert "finishing the jobs in progress" in out


def test_two_processes_on_postgresql_answer_each_upload_once(postgres_url: str, start_process,
                                                            fake_slack: FakeSlack, fake_openai: FakeOpenAI) -> None:
    fake_openai.delay = 0.3
    for _ in range(2):
        start_process(DATABASE_URL=postgres_url)
    fake_slack.wait_for(lambda: len(fake_slack._open_sockets()) == 2, timeout=30, what="two connections")
    fake_slack.round_robin = True
    events = [fake_slack.add_message(CHANNEL, "", files=[fake_slack.add_file(f"{n}.jpeg", image_bytes("clear", 236))])
              for n in range(10)]
    for n, event in enumerate(events):
        fake_slack.push_event(event, event_id=f"EvTwo{n}")
        fake_slack.push_event(event, event_id=f"EvTwo{n}", retry_attempt=1)  # Slack's retry reaches the other one

    for event in events:
        fake_slack.wait_for(lambda: "eyes" not in fake_slack.reactions(CHANNEL, event["ts"])
                            and fake_slack.reactions(CHANNEL, event["ts"]), timeout=60, what="all answered")
    assert [len(bot_replies(fake_slack, event["ts"])) for event in events] == [1] * 10


def test_migrate_and_copy_db_move_a_sqlite_history_into_postgresql(tmp_path: Path, postgres_url: str,
                                                                 test_environ: dict[str, str]) -> None:
    sqlite_url = test_environ["DATABASE_URL"]
    env = {**os.environ, **test_environ, "PYTHONPATH": str(PROJECT_ROOT)}

    def bot(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], env={**env, **extra}, cwd=tmp_path, text=True,
                              capture_output=True, timeout=120)

    migrated = bot("migrate")
    assert migrated.returncode == 0 and f"schema version {len(MIGRATIONS)}" in migrated.stdout, migrated.stderr
    assert bot("classify", str(MARCO_IMAGE)).returncode == 0
    copied = bot("copy-db", sqlite_url, postgres_url)
    assert copied.returncode == 0, copied.stderr
    assert "1 images, 1 calls" in copied.stdout
    again = bot("classify", "--json", str(MARCO_IMAGE), DATABASE_URL=postgres_url)
    assert json.loads(again.stdout)["from_cache"] is True  # PostgreSQL answers from the copied history
    refused = bot("copy-db", sqlite_url, postgres_url)
    assert refused.returncode == 1 and "empty" in refused.stderr
    unreachable = bot("migrate", DATABASE_URL="postgresql://lab:SECRET-pw@127.0.0.1:1/x?connect_timeout=1",
                      DATABASE_WAIT_SECONDS="0.5")
    assert unreachable.returncode == 2 and "SECRET-pw" not in unreachable.stdout + unreachable.stderr
