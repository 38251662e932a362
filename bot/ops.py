"""What GET /healthz and GET /metrics say, decided from what was read. Pure.

Health: a `Check` per part of the bot (the process, its database, its Slack connection); 200 when every
part is well, 503 naming the parts that are not. The body is a short JSON object of fixed words and
exception class names only: never a URL, a token or an exception's text.

Metrics: `metric_families(reading)` turns one `Reading` (taken from the database at scrape time by
bot/ops_server.py) into Prometheus metric families, for prometheus_client's `Collector`. Everything
comes from the shared database, so every process on it reports the same figures: scrape one, or
aggregate with max(), not sum(). docs/drafts/provider-ops.md lists every metric.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from bot.service_state import OK, OUTAGE, RATE_LIMITED, ServiceSnapshot
from bot.store.ops import Durations, QueueCount

HEALTHY, UNWELL = 200, 503
PREFIX = "crystals"
# Seconds from a job being queued to its end: a question takes seconds, a plate minutes, an outage hours.
DURATION_BOUNDS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
STATE_VALUES = {OK: 0, RATE_LIMITED: 1, OUTAGE: 2}


@dataclass(frozen=True)
class Check:
    part: str  # process, database, slack
    ok: bool
    problem: str = ""  # fixed words for people and monitors: never an exception's text


def health(checks: Sequence[Check]) -> tuple[int, str]:
    """The status and JSON body of GET /healthz: `{"status": "unwell", "database": "no answer within 3 s",
    "process": "ok", "slack": "ok"}`."""
    well = all(check.ok for check in checks)
    body = {"status": "ok" if well else "unwell", **{c.part: "ok" if c.ok else c.problem for c in checks}}
    return (HEALTHY if well else UNWELL), json.dumps(body)


def process_check(queue_running: bool) -> Check:
    return Check("process", queue_running, "" if queue_running else "the job queue is not running")


def socket_mode_check(connected: bool) -> Check:
    return Check("slack", connected, "" if connected else "the Socket Mode connection is down")


def http_mode_check() -> Check:
    """In HTTP mode Slack calls in: a process that answers this request can take Slack's too (the token
    was checked with auth.test at start)."""
    return Check("slack", True)


def database_check(error: BaseException | None, waited: float) -> Check:
    if error is None:
        return Check("database", True)
    if isinstance(error, TimeoutError):
        return Check("database", False, f"no answer within {waited:g} s")
    return Check("database", False, f"error ({type(error).__name__})")


@dataclass(frozen=True)
class Reading:
    """What the database says at one scrape."""

    queue: Sequence[QueueCount]
    durations: Sequence[Durations]  # counted into `duration_bounds`
    services: Sequence[ServiceSnapshot]
    spend_usd: float  # estimated, every call ever recorded
    month_spend_usd: float  # this calendar month (UTC)
    month_budget_usd: float | None  # MONTHLY_BUDGET_USD
    duration_bounds: Sequence[float] = DURATION_BOUNDS


def _name(name: str) -> str:
    return f"{PREFIX}_{name}"


def queue_families(queue: Iterable[QueueCount]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(_name("queue_jobs"), "Jobs not finished yet, by kind and state",
                              labels=["kind", "state"])
    waiting = GaugeMetricFamily(_name("queue_jobs_waiting_for_model"),
                                "Open jobs waiting for the model service, by kind and reason (rate_limit, outage)",
                                labels=["kind", "reason"])
    by_state: dict[tuple[str, str], int] = {}
    by_reason: dict[tuple[str, str], int] = {}
    for count in queue:
        by_state[count.kind, count.state] = by_state.get((count.kind, count.state), 0) + count.jobs
        if count.waiting:
            by_reason[count.kind, count.waiting] = by_reason.get((count.kind, count.waiting), 0) + count.jobs
    for labels, jobs in sorted(by_state.items()):
        depth.add_metric(labels, jobs)
    for labels, jobs in sorted(by_reason.items()):
        waiting.add_metric(labels, jobs)
    yield depth
    yield waiting


def duration_family(durations: Iterable[Durations], bounds: Sequence[float]) -> Metric:
    family = HistogramMetricFamily(
        _name("job_duration_seconds"),
        "Finished jobs by kind and end state (done, failed): seconds from being queued to their end",
        labels=["kind", "state"])
    for row in sorted(durations):
        buckets = [(floatToGoString(bound), within) for bound, within in zip(bounds, row.within)] + [("+Inf", row.jobs)]
        family.add_metric([row.kind, row.state], buckets, row.seconds)
    return family


def _service_labels(snapshot: ServiceSnapshot) -> list[str]:
    """[service id, model]: the id is a hash of the base URL and the key (never the key) and the model."""
    return [snapshot.service, snapshot.service.split(":", 1)[-1]]


def _per_service(family: type[Metric], name: str, documentation: str, *more_labels: str) -> Metric:
    return family(_name(name), documentation, labels=["service", "model", *more_labels])


def service_families(services: Sequence[ServiceSnapshot]) -> Iterator[Metric]:
    requests = _per_service(CounterMetricFamily, "model_requests", "Requests to the model service, by outcome",
                            "outcome")
    rate_limited = _per_service(CounterMetricFamily, "model_rate_limited",
                                "429 rate-limit answers the model service served (not a spent quota)")
    tokens = _per_service(CounterMetricFamily, "model_tokens", "Tokens the model service counted, input or output",
                          "type")
    state = _per_service(GaugeMetricFamily, "model_service_state",
                         "The model service as the bot sees it: 0 ok, 1 rate-limited, 2 outage (breaker open)")
    wait = _per_service(GaugeMetricFamily, "model_service_wait_seconds",
                        "Seconds until requests go again (rate limit) or the next probe (outage); 0 when ok")
    limit_tokens = _per_service(GaugeMetricFamily, "model_limit_tokens_per_minute",
                                "The key's tokens per minute, as learned from the service's headers")
    limit_requests = _per_service(GaugeMetricFamily, "model_limit_requests_per_minute",
                                  "The key's requests per minute, as learned from the service's headers")
    for snapshot in services:
        service = _service_labels(snapshot)
        for outcome, count in sorted(snapshot.counts.items()):
            requests.add_metric([*service, outcome], count.requests)
        rate_limited.add_metric(service, snapshot.rate_limited_total)
        tokens.add_metric([*service, "input"], sum(c.input_tokens for c in snapshot.counts.values()))
        tokens.add_metric([*service, "output"], sum(c.output_tokens for c in snapshot.counts.values()))
        state.add_metric(service, STATE_VALUES[snapshot.state])
        wait.add_metric(service, snapshot.expected_wait)
        if snapshot.limit_tokens is not None:
            limit_tokens.add_metric(service, snapshot.limit_tokens)
        if snapshot.limit_requests is not None:
            limit_requests.add_metric(service, snapshot.limit_requests)
    yield from (requests, rate_limited, tokens, state, wait, limit_tokens, limit_requests)


def spend_families(reading: Reading) -> Iterator[Metric]:
    yield CounterMetricFamily(_name("model_spend_usd"),
                              "Estimated model spend in US dollars, every call recorded (bot/prices.toml)",
                              value=reading.spend_usd)
    yield GaugeMetricFamily(_name("model_spend_month_usd"),
                            "Estimated model spend this calendar month (UTC), in US dollars",
                            value=reading.month_spend_usd)
    if reading.month_budget_usd is not None:
        yield GaugeMetricFamily(_name("model_budget_month_usd"), "MONTHLY_BUDGET_USD",
                                value=reading.month_budget_usd)


def metric_families(reading: Reading) -> list[Metric]:
    return [*queue_families(reading.queue), duration_family(reading.durations, reading.duration_bounds),
            *service_families(reading.services), *spend_families(reading)]


class ReadingCollector(Collector):
    """A prometheus_client collector that takes a fresh `Reading` at every scrape."""

    def __init__(self, read: Callable[[], Reading]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        return metric_families(self.read())

    def describe(self) -> Iterable[Metric]:
        return []  # nothing read at registration; the names are checked by the tests
