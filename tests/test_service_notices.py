"""The words the lab reads while the model service holds calls back, and the status page: pure."""
from __future__ import annotations

from bot.models import Waiting
from bot.service_notices import held_back, notice_text, with_progress_wait
from bot.service_state import OK, OUTAGE, RATE_LIMITED, Count, ServiceSnapshot
from bot.status import status_text

OPENAI = "gpt-4.1 at https://api.openai.com/v1"
LOCAL = "qwen at http://10.0.0.5:8000/v1"
NOW = 1_700_000_000.0  # 22:13:20 UTC


def service(state: str = OK, label: str = OPENAI, *, since: float | None = None, failure: str = "", wait: float = 0.0,
            tokens: float | None = None, requests: float | None = None,
            counts: dict[str, Count] | None = None) -> ServiceSnapshot:
    return ServiceSnapshot(service="abc:gpt-4.1", label=label, state=state, since=since, expected_wait=wait,
                           last_failure=failure, limit_tokens=tokens, limit_requests=requests, remaining_tokens=None,
                           remaining_requests=None, reset_tokens=None, reset_requests=None, stated_at=None,
                           counts=counts or {}, updated_at=NOW)


def test_a_rate_limit_is_told_with_the_images_waiting_and_how_long() -> None:
    waits = [Waiting("rate_limit", 13, NOW - 5, NOW + 118)]
    held = held_back(waits, [service(RATE_LIMITED, wait=30)])
    assert notice_text(held, NOW) == (":hourglass_flowing_sand: OpenAI is rate-limiting this key: 13 images wait, "
                                      "about 2 minutes. I will answer here by myself.")
    one = held_back([Waiting("rate_limit", 1, NOW, NOW + 20)], [service(RATE_LIMITED, LOCAL)])
    assert notice_text(one, NOW) == (":hourglass_flowing_sand: The model service (qwen at http://10.0.0.5:8000/v1) is "
                                     "rate-limiting this key: 1 image waits, under a minute. I will answer here by "
                                     "myself.")


def test_an_outage_outweighs_a_rate_limit_and_says_since_when() -> None:
    waits = [Waiting("outage", 2, NOW - 60, NOW + 30), Waiting("rate_limit", 3, NOW - 90, NOW + 600)]
    services = [service(OK, LOCAL), service(OUTAGE, since=NOW - 120, failure="HTTP 500", wait=20)]
    held = held_back(waits, services)
    assert (held.reason, held.waiting, held.label) == ("outage", 5, OPENAI)
    assert notice_text(held, NOW) == (":hourglass_flowing_sand: OpenAI is not answering since 22:11 UTC (HTTP 500): "
                                      "5 images wait. I will answer here when it is back.")
    assert notice_text(held, NOW, question=True).endswith("(HTTP 500): your question waits. I will answer here when "
                                                          "it is back.")


def test_without_a_known_service_the_words_still_read() -> None:
    held = held_back([Waiting("outage", 1, NOW - 60, NOW)], [])
    assert notice_text(held, NOW) == (":hourglass_flowing_sand: The model service is not answering since 22:12 UTC: "
                                      "1 image waits. I will answer here when it is back.")
    assert held_back([], [service()]) is None


def test_a_plates_progress_says_what_it_waits_for() -> None:
    progress = "Plate plate42: 37 of 96 classified"
    limited = held_back([Waiting("rate_limit", 59, NOW, NOW + 170)], [service(RATE_LIMITED)])
    assert with_progress_wait(progress, limited, NOW) == (
        "Plate plate42: 37 of 96 classified · waiting for OpenAI's rate limit, about 3 minutes")
    down = held_back([Waiting("outage", 59, NOW, NOW + 30)], [service(OUTAGE, LOCAL, since=NOW - 600)])
    assert with_progress_wait(progress, down, NOW) == (
        "Plate plate42: 37 of 96 classified · waiting for the model service, not answering since 22:03 UTC")
    assert with_progress_wait(progress, None, NOW) == progress


def test_the_status_shows_the_service_its_limits_its_requests_and_the_queue() -> None:
    counts = {"answered": Count(1204, 5_000_000, 90_000), "rate_limited": Count(17), "server_error": Count(2),
              "timeout": Count(1)}
    services = [service(RATE_LIMITED, since=NOW - 200, wait=100, tokens=30000, requests=500, counts=counts),
                service(OUTAGE, LOCAL, since=NOW - 60, failure="no connection", wait=40)]
    queue = {("image", "rate_limit"): 13, ("image", "running"): 2, ("question", "outage"): 1, ("image", "later"): 4}
    assert status_text(services, queue, NOW).split("\n") == [
        "*Model service*",
        "• *OpenAI (gpt-4.1 at https://api.openai.com/v1)*: rate-limiting this key since 22:10 UTC; requests go again "
        "in about 2 minutes.",
        "    Limits learned: 30,000 tokens and 500 requests a minute.",
        "    Requests so far: 1,204 answered · 17 refused for the rate limit (429) · 3 failed (5xx, timeouts, no "
        "connection, cut-off answers).",
        "• *The model service (qwen at http://10.0.0.5:8000/v1)*: not answering since 22:12 UTC (no connection); the "
        "next try in under a minute.",
        "    Limits: not learned yet (one request at a time until an answer tells them).",
        "    Requests so far: 0 answered.",
        "*Queue* (every channel)",
        "• Images: 13 waiting for the rate limit · 2 being worked on · 4 due later (a retry, or a plate at the Batch "
        "API)",
        "• Questions: 1 waiting for the service to answer",
    ]
    assert status_text([], {}, NOW).split("\n") == ["*Model service*", "No model request made yet.",
                                                   "*Queue* (every channel)",
                                                   "Nothing waiting: every image and question is answered."]


def test_the_services_state_says_why_when_the_marks_are_behind() -> None:
    marked_for_a_rate_limit = [Waiting("rate_limit", 2, NOW - 5, NOW + 1)]  # before the breaker opened
    held = held_back(marked_for_a_rate_limit, [service(OUTAGE, since=NOW - 30, failure="HTTP 502")])
    assert (held.reason, held.since, held.last_failure) == ("outage", NOW - 30, "HTTP 502")
    recovered = held_back([Waiting("outage", 2, NOW - 5, NOW + 1)], [service(OK)])
    assert (recovered.reason, recovered.label) == ("outage", OPENAI)
