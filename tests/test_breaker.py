"""bot/breaker.py and bot/service_state.py: the circuit breaker and the shared state's snapshot, the time passed in."""
from __future__ import annotations

import pytest

from bot.breaker import Breaker, BreakerPolicy
from bot.ratelimit import Bucket, Limit, Pace, RateHeaders
from bot.service_state import (OK, OUTAGE, RATE_LIMITED, Count, ServiceState, about, outage_given_up_text, snapshot,
                               span, state_from_json, state_to_json)

POLICY = BreakerPolicy(failures=3, probe_every=30.0, probe_lease=65.0)


def failed(breaker: Breaker, now: float, times: int = 1, *, probe: bool = False) -> Breaker:
    for _ in range(times):
        breaker = breaker.failed(now, "HTTP 500", POLICY, spread=0.5, probe=probe)
    return breaker


def test_it_opens_after_the_failures_in_a_row_and_not_before() -> None:
    assert not failed(Breaker(), 10.0, 2).is_open
    opened = failed(Breaker(), 10.0, 3)
    assert opened.is_open and opened.open_since == 10.0 and opened.failing_since == 10.0
    assert opened.next_probe == 10.0 + 45.0  # within 30-60 s
    assert not failed(Breaker(), 10.0, 2).succeeded().failed(11.0, "HTTP 500", POLICY, 0.0, probe=False).is_open


def test_closed_everything_goes() -> None:
    assert Breaker().admit(0.0, POLICY, 0.0) == (Breaker(), 0.0, False)


def test_open_it_lets_one_probe_through_at_the_probe_time() -> None:
    opened = failed(Breaker(), 0.0, 3)
    _, wait, probe = opened.admit(20.0, POLICY, 0.0)
    assert (wait, probe) == (25.0, False)
    probing, wait, probe = opened.admit(45.0, POLICY, 0.9)
    assert (wait, probe) == (0.0, True)
    assert probing.probe_until == 45.0 + 65.0 and probing.next_probe == pytest.approx(45.0 + 57.0)
    _, wait, probe = probing.admit(46.0, POLICY, 0.0)
    assert not probe and wait == pytest.approx(64.0)  # one probe at a time, until it is heard of
    lost = probing.admit(45.0 + 65.0, POLICY, 0.0)
    assert lost[2]  # a probe whose process died no longer blocks the next


def test_a_failed_probe_frees_the_next_and_an_answer_closes() -> None:
    probing, _, _ = failed(Breaker(), 0.0, 3).admit(45.0, POLICY, 0.0)
    after = failed(probing, 46.0, probe=True)
    assert after.is_open and after.probe_until == 0.0 and after.next_probe == 75.0 and after.failing_since == 0.0
    assert after.succeeded() == Breaker()


def test_the_state_survives_json_and_ignores_what_a_newer_bot_added() -> None:
    state = ServiceState(Pace(tokens=Bucket(60000, 1000, -300.5, 12.0), blocked_until=3.0,
                              stated=RateHeaders(Limit(60000, 100, 2.5), None), stated_at=11.0),
                         failed(Breaker(), 0.0, 3))
    assert state_from_json(state_to_json(state)) == state
    newer = state_to_json(state).replace('"refusals"', '"unheard_of":1,"refusals"')
    assert state_from_json(newer) == state
    assert state_from_json("") == ServiceState()


def test_the_snapshot_says_ok_rate_limited_or_outage_with_since_and_wait() -> None:
    ok = snapshot("k:gpt-4.1", "gpt-4.1 at x", ServiceState(), {}, 5.0, now=10.0)
    assert (ok.state, ok.since, ok.expected_wait) == (OK, None, 0.0)

    pace = Pace(tokens=Bucket(60000, 1000, -120000, 100.0), waiting_since=90.0,
                stated=RateHeaders(Limit(60000, 0, 60.0), Limit(500, 10, 1.0)), stated_at=99.0)
    limited = snapshot("k:gpt-4.1", "gpt-4.1 at x", ServiceState(pace), {"rate_limited": Count(7)}, 99.0, now=100.0)
    assert (limited.state, limited.since, limited.expected_wait) == (RATE_LIMITED, 90.0, pytest.approx(120.0))
    assert (limited.limit_tokens, limited.remaining_tokens, limited.reset_tokens) == (60000, 0, 60.0)
    assert (limited.remaining_requests, limited.limit_requests) == (10, None)
    assert limited.rate_limited_total == 7

    down = ServiceState(breaker=failed(Breaker(), 50.0, 3))
    outage = snapshot("k:gpt-4.1", "gpt-4.1 at x", down, {}, 60.0, now=60.0)
    assert (outage.state, outage.since, outage.last_failure) == (OUTAGE, 50.0, "HTTP 500")
    assert outage.expected_wait == pytest.approx(35.0)  # until the next probe


def test_what_people_read_of_an_outage() -> None:
    down = failed(Breaker(), 1_700_000_000.0, 3)  # 22:13 UTC
    text = outage_given_up_text("gpt-4.1 at https://api.openai.com/v1", down, 6 * 3600)
    assert text == ("OpenAI has not been answering since 22:13 UTC (HTTP 500). I stopped waiting after 6 hours: "
                    "press Retry once it is back.")
    elsewhere = outage_given_up_text("llama at http://10.0.0.5:8000/v1", down, 90)
    assert elsewhere.startswith("The model service (llama at http://10.0.0.5:8000/v1) has not been answering since")
    assert [about(s) for s in (5, 100, 3000, 7200)] == ["under a minute", "about 2 minutes", "about 50 minutes",
                                                        "about 2 hours"]
    assert [span(s) for s in (1, 45, 60, 1200, 21600)] == ["1 second", "45 seconds", "1 minute", "20 minutes",
                                                            "6 hours"]
