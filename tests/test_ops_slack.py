"""GET /healthz and /metrics end to end: the bot in Socket Mode with HEALTH_PORT (in this process, and as
`python -m bot`), and `python -m bot http` on its own port, against the fake Slack and the fake OpenAI
with the real clients. /healthz says 503 and names the part when the Slack socket is down or the
database does not answer; /metrics, parsed as Prometheus parses it, counts what the fakes saw."""
from __future__ import annotations

import json
import socket
from typing import Any

from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.provider import snapshots
from tests.fakes.tcp_relay import TcpRelay
from tests.slack_harness import CHANNEL, RunningBot
from tests.test_processes import free_port, start_process, upload_event, wait_listening  # noqa: F401
from tests.test_provider_slack import FAST, real_image

LOCAL = {"HOST": "127.0.0.1", "HEALTH_PORT": "0"}


def get(port: int, path: str, **headers: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=15)


def health(bot: RunningBot) -> tuple[int, dict[str, str]]:
    answer = get(bot.health.port, "/healthz")
    assert answer.headers["content-type"] == "application/json"
    return answer.status_code, answer.json()


def metrics(port: int, **headers: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, as Prometheus reads /metrics."""
    answer = get(port, "/metrics", **headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def of(values: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples that have these labels (0 if none)."""
    return sum(value for (sample, have), value in values.items()
               if sample == name and set(labels.items()) <= set(have))


def test_healthz_is_200_while_well_and_503_naming_slack_while_the_socket_is_down(start_bot) -> None:
    assert start_bot().health is None  # HEALTH_PORT unset: no server in Socket Mode
    bot = start_bot(**LOCAL)
    assert health(bot) == (200, {"status": "ok", "process": "ok", "database": "ok", "slack": "ok"})

    bot.slack.fail_next("apps.connections.open", status=503, times=1000)  # no new socket either
    bot.slack.drop_connections()
    status, body = bot.slack.wait_for(lambda: (answer := health(bot))[0] == 503 and answer, 15,
                                      what="/healthz to say 503")
    assert body == {"status": "unwell", "process": "ok", "database": "ok",
                    "slack": "the Socket Mode connection is down"}

    bot.slack.fail_next("apps.connections.open", times=0)  # Slack is back: the client reconnects by itself
    bot.slack.wait_for(lambda: health(bot)[0] == 200, 60, what="/healthz to say 200 again")


def test_healthz_is_503_naming_the_database_while_it_does_not_answer(start_bot, postgres_url: str) -> None:
    database = urlsplit(postgres_url)
    with TcpRelay(database.hostname, database.port) as relay:
        bot = start_bot(DATABASE_URL=database._replace(netloc=f"{database.username}@127.0.0.1:{relay.port}").geturl(),
                        **LOCAL)
        assert health(bot)[0] == 200
        relay.pause()  # the database host hangs: connections stay open, nothing answers
        status, body = health(bot)
        assert (status, body) == (503, {"status": "unwell", "process": "ok", "database": "no answer within 3 s",
                                        "slack": "ok"})
        relay.resume()
        bot.slack.wait_for(lambda: health(bot)[0] == 200, 30, what="/healthz to say 200 again")
        event = bot.upload(real_image(0))
        bot.wait_until_done(event, timeout=30)  # nothing was lost meanwhile
        bot.stop()


def test_metrics_count_the_jobs_model_calls_429s_tokens_and_spend(start_bot) -> None:
    bot = start_bot(**LOCAL)
    bot.openai.fail_next(429, times=3, retry_after=0.05)
    event = bot.upload(real_image(0), real_image(2))
    bot.wait_until_done(event, timeout=30)
    bot.drain()

    values = metrics(bot.health.port)
    (service,) = snapshots(bot.services.store)
    model = {"service": service.service, "model": "gpt-4.1"}
    assert bot.openai.rate_limited == 3
    assert of(values, "crystals_model_rate_limited_total", **model) == 3
    assert of(values, "crystals_model_requests_total", outcome="rate_limited", **model) == 3
    assert of(values, "crystals_model_requests_total", outcome="answered", **model) == 2
    assert of(values, "crystals_model_requests_total") == len(bot.openai.responses_requests()) == 5
    calls = [bot.services.store.call(job.call_id) for job in bot.services.store.jobs_of_message(CHANNEL, event["ts"])]
    assert of(values, "crystals_model_tokens_total", type="input") == sum(c.usage.input_tokens for c in calls) > 0
    assert of(values, "crystals_model_tokens_total", type="output") == sum(c.usage.output_tokens for c in calls) > 0
    spend = sum(c.cost_usd for c in calls)
    assert spend > 0 and of(values, "crystals_model_spend_usd_total") == pytest.approx(spend)
    assert of(values, "crystals_model_spend_month_usd") == pytest.approx(spend)
    assert of(values, "crystals_model_service_state", **model) == 0

    assert of(values, "crystals_job_duration_seconds_count", kind="image", state="done") == 2
    assert of(values, "crystals_job_duration_seconds_bucket", kind="image", state="done", le="+Inf") == 2
    assert of(values, "crystals_job_duration_seconds_count", kind="outcome", state="done") == 1
    assert of(values, "crystals_job_duration_seconds_count", state="failed") == 0
    assert of(values, "crystals_queue_jobs") == 0
    assert of(values, "process_resident_memory_bytes") > 0  # this process's own, beside the shared figures


def test_metrics_show_the_outage_and_the_images_waiting_for_it(start_bot) -> None:
    bot = start_bot(**LOCAL, **FAST)
    bot.openai.outage(500)
    event = bot.upload(real_image(0), real_image(1), real_image(2))
    waiting = bot.slack.wait_for(
        lambda: of(values := metrics(bot.health.port), "crystals_queue_jobs_waiting_for_model",
                   kind="image", reason="outage") == 3 and values, 60, what="3 images waiting for the service")
    assert of(waiting, "crystals_model_service_state") == 2
    assert of(waiting, "crystals_queue_jobs", kind="image") == 3
    assert of(waiting, "crystals_model_requests_total", outcome="server_error") == bot.openai.status_counts[500] > 0

    bot.openai.outage(None)
    bot.wait_until_done(event, timeout=30)
    after = metrics(bot.health.port)
    assert of(after, "crystals_model_service_state") == 0 and of(after, "crystals_queue_jobs_waiting_for_model") == 0
    assert of(after, "crystals_job_duration_seconds_count", kind="image", state="done") == 3


def test_python_m_bot_http_answers_healthz_and_metrics_on_its_own_port(start_process) -> None:
    port = free_port()
    process = start_process("http", SLACK_APP_TOKEN="", HOST="127.0.0.1", PORT=str(port), METRICS_TOKEN="s3cret")
    wait_listening(port, process)
    answer = get(port, "/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "process": "ok", "database": "ok",
                                                           "slack": "ok"}
    assert get(port, "/metrics").status_code == 401
    assert get(port, "/metrics", Authorization="Bearer wrong").status_code == 401
    values = metrics(port, Authorization="Bearer s3cret")
    assert of(values, "crystals_model_spend_usd_total") == 0 and of(values, "crystals_queue_jobs") == 0
    assert requests.post(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 405
    assert get(port, "/slack/events").status_code == 405  # Slack's path is still Slack's


def test_python_m_bot_in_socket_mode_answers_healthz_on_health_port(start_process, fake_slack) -> None:
    port = free_port()
    process = start_process(HOST="127.0.0.1", HEALTH_PORT=str(port))
    fake_slack.wait_connected(timeout=30)
    wait_listening(port, process)
    answer: Any = fake_slack.wait_for(lambda: (got := get(port, "/healthz")).status_code == 200 and got, 30,
                                      what="/healthz to say 200")
    assert json.loads(answer.text)["slack"] == "ok"
    fake_slack.push_event(upload_event(fake_slack))
    fake_slack.wait_for(lambda: fake_slack.calls_to("chat.postMessage"), 30, what="the answer")
    fake_slack.wait_for(lambda: of(metrics(port), "crystals_job_duration_seconds_count", kind="image") == 1, 30,
                        what="the image job counted")


def test_a_health_port_in_use_stops_socket_mode_with_a_clear_message(start_process) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = start_process(HOST="127.0.0.1", HEALTH_PORT=str(port))
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"HEALTH_PORT: cannot listen on 127.0.0.1 port {port}" in out
    assert "Could not reach Slack" not in out and "Traceback" not in out
