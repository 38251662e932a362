"""bot/ops.py (what /healthz and /metrics say, from what was read), the store's queries behind them, and
HEALTH_PORT's parser. The endpoints themselves, end to end: tests/test_ops_slack.py."""
from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, load_settings
from bot.ops import (HEALTHY, UNWELL, Check, Reading, ReadingCollector, database_check, health, process_check,
                     socket_mode_check)
from bot.service_state import Count, ServiceSnapshot
from bot.store import open_store
from bot.store.ops import Durations, QueueCount


def test_every_part_well_is_200_and_one_part_unwell_is_503_naming_it() -> None:
    well = [process_check(True), database_check(None, 3), socket_mode_check(True)]
    assert health(well) == (HEALTHY, json.dumps({"status": "ok", "process": "ok", "database": "ok", "slack": "ok"}))
    status, body = health([process_check(True), database_check(TimeoutError(), 3), socket_mode_check(False)])
    assert status == UNWELL
    assert json.loads(body) == {"status": "unwell", "process": "ok", "database": "no answer within 3 s",
                                "slack": "the Socket Mode connection is down"}
    assert health([process_check(False)])[0] == UNWELL


def test_a_database_error_is_named_by_its_class_never_its_text() -> None:
    error = ConnectionError('connection to "db.example.org" failed: password=hunter2 for user "lab"')
    check = database_check(error, 3)
    assert check == Check("database", False, "error (ConnectionError)")
    assert "hunter2" not in health([check])[1] and "example.org" not in health([check])[1]


def snapshot(service: str, state: str, counts: dict[str, Count], limit_tokens: float | None) -> ServiceSnapshot:
    return ServiceSnapshot(service=service, label="", state=state, since=None, expected_wait=12.5 if state != "ok" else 0,
                           last_failure="", limit_tokens=limit_tokens, limit_requests=None, remaining_tokens=None,
                           remaining_requests=None, reset_tokens=None, reset_requests=None, stated_at=None,
                           counts=counts, updated_at=0)


READING = Reading(
    queue=[QueueCount("image", "received", "", 2), QueueCount("image", "received", "rate_limit", 3),
           QueueCount("plate_image", "downloaded", "outage", 4)],
    durations=[Durations("image", "done", (1, 4, 5), 6, 400.0), Durations("plate", "failed", (0, 0, 0), 1, 7200.0)],
    services=[snapshot("abc123:gpt-4.1", "rate_limited",
                       {"answered": Count(5, 20_000, 500), "rate_limited": Count(7, 0, 0)}, 30_000),
              snapshot("def456:llama3:8b", "outage", {"server_error": Count(3, 0, 0)}, None)],
    spend_usd=1.25, month_spend_usd=0.5, month_budget_usd=None, duration_bounds=(1.0, 10.0, 60.0))


def scraped(reading: Reading) -> dict[tuple[str, tuple], float]:
    """What Prometheus would read: (sample name, sorted labels) -> value."""
    registry = CollectorRegistry()
    registry.register(ReadingCollector(lambda: reading))
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_metrics_read_as_prometheus_reads_them() -> None:
    values = scraped(READING)
    assert values[("crystals_queue_jobs", (("kind", "image"), ("state", "received")))] == 5
    assert values[("crystals_queue_jobs", (("kind", "plate_image"), ("state", "downloaded")))] == 4
    assert values[("crystals_queue_jobs_waiting_for_model", (("kind", "image"), ("reason", "rate_limit")))] == 3
    assert values[("crystals_queue_jobs_waiting_for_model", (("kind", "plate_image"), ("reason", "outage")))] == 4
    assert ("crystals_queue_jobs_waiting_for_model", (("kind", "image"), ("reason", ""))) not in values

    image = (("kind", "image"), ("state", "done"))
    assert [values[("crystals_job_duration_seconds_bucket", tuple(sorted((*image, ("le", le)))))]
            for le in ("1.0", "10.0", "60.0", "+Inf")] == [1, 4, 5, 6]
    assert values[("crystals_job_duration_seconds_count", image)] == 6
    assert values[("crystals_job_duration_seconds_sum", image)] == 400.0
    assert values[("crystals_job_duration_seconds_count", (("kind", "plate"), ("state", "failed")))] == 1

    gpt = (("model", "gpt-4.1"), ("service", "abc123:gpt-4.1"))
    llama = (("model", "llama3:8b"), ("service", "def456:llama3:8b"))
    assert values[("crystals_model_requests_total", tuple(sorted((*gpt, ("outcome", "answered")))))] == 5
    assert values[("crystals_model_requests_total", tuple(sorted((*gpt, ("outcome", "rate_limited")))))] == 7
    assert values[("crystals_model_rate_limited_total", gpt)] == 7
    assert values[("crystals_model_rate_limited_total", llama)] == 0
    assert values[("crystals_model_tokens_total", tuple(sorted((*gpt, ("type", "input")))))] == 20_000
    assert values[("crystals_model_tokens_total", tuple(sorted((*gpt, ("type", "output")))))] == 500
    assert values[("crystals_model_service_state", gpt)] == 1
    assert values[("crystals_model_service_state", llama)] == 2
    assert values[("crystals_model_service_wait_seconds", gpt)] == 12.5
    assert values[("crystals_model_limit_tokens_per_minute", gpt)] == 30_000
    assert ("crystals_model_limit_tokens_per_minute", llama) not in values  # not learned: no figure, not 0
    assert values[("crystals_model_spend_usd_total", ())] == 1.25
    assert values[("crystals_model_spend_month_usd", ())] == 0.5
    assert not any(name == "crystals_model_budget_month_usd" for name, _ in values)


def test_a_monthly_budget_is_a_gauge_beside_the_months_spend() -> None:
    values = scraped(Reading([], [], [], 0.0, 0.0, 25.0))
    assert values[("crystals_model_budget_month_usd", ())] == 25.0
    assert values[("crystals_model_spend_usd_total", ())] == 0.0


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


def test_the_store_counts_open_jobs_and_the_durations_of_finished_ones(store) -> None:
    ids = [store.enqueue(kind, "C1", f"1.{n}", f"1.{n}", f"F{n}", "x.png", "U1", {})
           for n, kind in enumerate(["image", "image", "image", "question", "plate_image"])]
    store.update_job(ids[1], "downloaded")
    store.wait_job(ids[2], 60, "outage", "the model service is down")
    store.finish_job(ids[3], "done")
    store.finish_job(ids[4], "failed", "broken")
    store.ping()

    assert sorted(store.queue_depth()) == [QueueCount("image", "downloaded", "", 1),
                                           QueueCount("image", "received", "", 1),
                                           QueueCount("image", "received", "outage", 1)]
    durations = {(d.kind, d.state): d for d in store.job_durations((-1.0, 3600.0))}
    assert set(durations) == {("question", "done"), ("plate_image", "failed")}
    question = durations["question", "done"]
    assert question.within == (0, 1) and question.jobs == 1 and 0 <= question.seconds < 3600


def test_a_closed_database_fails_the_ping(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'crystals.db'}")
    store.close()
    with pytest.raises(Exception):
        store.ping()


@pytest.mark.parametrize("value, port", [("", None), ("0", 0), ("9090", 9090), (" 65535 ", 65535)])
def test_health_port_is_optional_and_a_port(tmp_path, value: str, port: int | None) -> None:
    assert load_settings(environ={"HEALTH_PORT": value}, env_file=tmp_path / ".env").health_port == port


@pytest.mark.parametrize("value", ["65536", "-1", "http", "9090.5", "٩٠٩٠"])
def test_a_bad_health_port_is_refused(tmp_path, value: str) -> None:
    with pytest.raises(ConfigError, match=f"HEALTH_PORT={value!r}: must be a port number from 1 to 65535"):
        load_settings(environ={"HEALTH_PORT": value}, env_file=tmp_path / ".env")
