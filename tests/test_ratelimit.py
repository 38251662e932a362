"""bot/ratelimit.py: reading what the provider says, and the pacing decisions, with the time passed in."""
from __future__ import annotations

import pytest

from bot.ratelimit import (Bucket, Limit, Mark, Pace, Queued, RateHeaders, Refusal, concurrency, grown,
                           parse_duration, read_headers, refusal_limit, retry_after, shrunk)

MINUTE_60K = {"x-ratelimit-limit-tokens": "60000", "x-ratelimit-remaining-tokens": "55700",
              "x-ratelimit-reset-tokens": "4.3s", "x-ratelimit-limit-requests": "500",
              "x-ratelimit-remaining-requests": "499", "x-ratelimit-reset-requests": "120ms"}


@pytest.mark.parametrize(("text", "seconds"), [
    ("12ms", 0.012), ("2.5s", 2.5), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("0s", 0.0), ("150us", 0.00015),
    ("20", 20.0), ("0.5", 0.5), ("6h", 21600.0), ("90m", 5400.0)])
def test_durations_are_read_as_the_headers_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "2.5s later", "m", "-3s"])
def test_anything_else_is_no_duration(text: str) -> None:
    assert parse_duration(text) is None


def test_headers_give_both_limits() -> None:
    stated = read_headers(MINUTE_60K)
    assert stated == RateHeaders(tokens=Limit(60000, 55700, 4.3), requests=Limit(500, 499, 0.12))


@pytest.mark.parametrize("headers", [{}, {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1"},
                                     {"x-ratelimit-limit-tokens": "0", "x-ratelimit-remaining-tokens": "0"},
                                     {"x-ratelimit-limit-tokens": "lots", "x-ratelimit-remaining-tokens": "3"}])
def test_servers_without_usable_headers_state_nothing(headers: dict[str, str]) -> None:
    assert read_headers(headers) is None


@pytest.mark.parametrize(("headers", "message", "seconds"), [
    ({"retry-after-ms": "2500", "retry-after": "3"}, "", 2.5),  # the finer one first
    ({"retry-after": "7"}, "", 7.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, "", 10.0),
    ({}, "Rate limit reached ... Please try again in 2.5s. Visit https://platform.openai.com", 2.5),
    ({}, "Rate limit reached ... Please try again in 6m0s.", 360.0),
    ({}, "Rate limit reached ... Please try again in 120ms.", 0.12),
    ({}, "Requests to the ChatCompletions_Create Operation have exceeded the limit. Please retry after 20 seconds.",
     20.0),
])
def test_a_429_says_how_long_to_wait_in_any_of_its_ways(headers, message, seconds) -> None:
    now = 1445412500.0  # 30 s before the date above... minus 20: 07:28:20 GMT
    assert retry_after(headers, message, now) == pytest.approx(seconds)


def test_a_429_that_says_nothing_of_when() -> None:
    assert retry_after({}, "Rate limit reached for requests. Please try again shortly.", 0.0) is None


def test_the_message_says_which_limit_and_how_much_was_used() -> None:
    message = ("Rate limit reached for gpt-4.1 in organization org-x on tokens per min (TPM): Limit 60000, "
               "Used 58000, Requested 4250. Please try again in 2.5s.")
    assert refusal_limit(message) == Refusal("tokens", 60000, 58000, 4250)
    assert refusal_limit("... on requests per min (RPM): Limit 500, Used 500, Requested 1. ...") == \
        Refusal("requests", 500, 500, 1)
    assert refusal_limit("Request too large for gpt-4.1 in organization org-x on tokens per min (TPM): "
                         "Limit 30000, Requested 45000.") == Refusal("tokens", 30000, None, 45000)
    assert refusal_limit("You exceeded your current quota") is None


def test_a_bucket_refills_continuously_up_to_its_limit() -> None:
    bucket = Bucket(limit=600, rate=10, level=0, at=100.0)
    assert bucket.at_time(130.0).level == 300
    assert bucket.at_time(1000.0).level == 600
    after, ready = Bucket(600, 10, 50, 100.0).take(80, 100.0)
    assert after.level == -30 and ready == pytest.approx(103.0)  # promised 30 tokens: it may go in 3 s


def known(tokens: float = 60_000, requests: float = 10_000, now: float = 0.0) -> Pace:
    """A pace that has been told its limits (full buckets, per minute)."""
    return Pace(tokens=Bucket(tokens, tokens / 60, tokens, now), requests=Bucket(requests, requests / 60, requests, now))


def test_a_full_budget_lets_a_burst_through_then_paces_at_the_keys_rate() -> None:
    pace, times = known(), []
    for _ in range(20):
        pace, go_at, _ = pace.reserve(0.0, 4300)
        times.append(go_at)
    assert times[:13] == [0.0] * 13  # 13 x 4,300 fit in 60,000
    gaps = [later - earlier for earlier, later in zip(times[13:], times[14:])]
    assert gaps == pytest.approx([4.3] * 6)  # then one request per 4,300 tokens at 1,000 tokens a second
    assert pace.waiting_since == 0.0 and pace.clear_at(0.0) == pytest.approx(times[-1])


def test_requests_per_minute_pace_small_requests() -> None:
    pace, times = known(tokens=1_000_000, requests=6), []
    for _ in range(8):
        pace, go_at, _ = pace.reserve(0.0, 10)
        times.append(go_at)
    assert times == pytest.approx([0.0] * 6 + [10.0, 20.0])


def test_an_answer_lowers_the_level_to_what_the_provider_has_left_minus_what_came_after() -> None:
    pace, _, first = known().reserve(0.0, 4000)
    pace, _, _ = pace.reserve(0.0, 4000)  # reserved after the first: not in the provider's count yet
    told = RateHeaders(tokens=Limit(60000, 40000, None), requests=None)  # someone else spent from the key too
    learned = pace.learn_answer(0.0, told, first)
    assert learned.tokens.level == 36000
    assert known().learn_answer(0.0, RateHeaders(Limit(60000, 59000, None), None), Mark()).tokens.level == 59000


def test_an_answer_never_raises_the_level_above_the_plan() -> None:
    pace, _, mark = known().reserve(0.0, 50000)
    told = RateHeaders(tokens=Limit(60000, 59000, None), requests=None)  # the provider counted less than we did
    assert pace.learn_answer(0.0, told, mark).tokens.level == 10000


def test_the_first_answer_teaches_the_limits_and_the_refill_rate() -> None:
    told = RateHeaders(tokens=Limit(20000, 15700, 0.5), requests=Limit(500, 499, 0.12))  # a 2-second window
    learned = Pace().learn_answer(10.0, told, Mark())
    assert learned.known and learned.tokens.limit == 20000 and learned.tokens.rate == pytest.approx(8600)
    assert learned.requests.rate == pytest.approx(500 / 60)  # too little used to measure: per minute
    assert learned.stated == told and learned.stated_at == 10.0


def test_an_answer_without_headers_marks_a_server_that_sends_none() -> None:
    assert Pace().learn_answer(0.0, None, Mark()).no_headers
    assert not known().learn_answer(0.0, None, Mark()).no_headers  # limits once learned stay


def test_a_429_blocks_until_its_retry_after_with_jitter_and_moves_the_plan() -> None:
    pace, _, mark = known().reserve(0.0, 4300)
    told = RateHeaders(tokens=Limit(60000, 1000, 59.0), requests=None)  # another user of the key spent it all
    refused, shift = pace.learn_refusal(0.0, told, 3.3, None, 4300, mark, jitter=1.0)
    assert refused.blocked_until == pytest.approx(3.3 * 1.25)
    assert refused.tokens.level == 1000 and shift == pytest.approx((55700 - 1000) / 1000)
    assert refused.refusals == 1 and refused.waiting_since == 0.0
    _, go_at, _ = refused.reserve(0.0, 4300)
    assert go_at == refused.blocked_until  # the bucket has room again after 3.3 s; the block (with jitter) is later
    assert refused.learn_answer(5.0, None, mark).refusals == 0


def test_a_429_from_a_server_without_headers_backs_off_and_doubles() -> None:
    first, shift = Pace(no_headers=True).learn_refusal(0.0, None, None, None, 4300, Mark(), jitter=0.0)
    assert first.blocked_until == 1.0 and shift == 1.0
    second, _ = first.learn_refusal(1.0, None, None, None, 4300, Mark(), jitter=0.0)
    assert second.blocked_until == 3.0  # 2 s after the second 429
    told, _ = Pace().learn_refusal(0.0, None, None, Refusal("tokens", 30000, 28000, 4250), 4250, Mark(), 0.0)
    assert told.tokens.limit == 30000 and told.tokens.level == 2000
    assert told.blocked_until == pytest.approx(2250 / 500)  # the message says enough to know when
    timed, _ = Pace().learn_refusal(0.0, None, 0.5, Refusal("requests", 3, 3, 1), 4250, Mark(), 0.0)
    assert timed.requests.limit == 3 and timed.requests.rate == pytest.approx(2.0)  # short 1 request for 0.5 s


def test_a_request_beyond_the_whole_limit_is_too_large() -> None:
    assert known(tokens=30000).too_large(30001) and not known(tokens=30000).too_large(30000)
    assert not Pace().too_large(10 ** 9)


def test_the_tokens_the_provider_counts_per_estimated_token_are_learned_from_usage() -> None:
    pace = Pace()
    assert pace.cost(4000, 112) == 4112
    for _ in range(6):
        pace = pace.calibrated(4000, 4600)  # the provider counts 15 % more than the estimate
    assert pace.scale == pytest.approx(1.15, abs=0.01) and pace.cost(4000, 112) == pytest.approx(4712, abs=40)
    assert Pace().calibrated(4000, 0) == Pace() and Pace().calibrated(100, 10 ** 6).scale == 2.5  # at most 4
    assert Pace().calibrated(4000, 2000).scale == 1.0  # a request that counted less makes no other look cheaper


def test_reservations_never_used_are_given_back() -> None:
    pace, _, _ = known().reserve(0.0, 60000)
    assert pace.refund(60000, 1).tokens.level == 60000


def test_one_request_at_a_time_until_the_limits_are_known() -> None:
    assert concurrency(Pace(), window=10, ceiling=64) == 1
    assert concurrency(known(), window=1, ceiling=64) == 64
    assert concurrency(Pace(no_headers=True), window=5.5, ceiling=64) == 5


def test_a_server_without_headers_gets_a_window_that_grows_and_halves() -> None:
    window = 1.0
    for _ in range(10):
        window = grown(window, ceiling=8)
    assert window == 8
    assert shrunk(window) == 4 and shrunk(1.0) == 1.0


def draining(held: int, queued: int, cost: float = 1000) -> tuple[Pace, list[float], list[float]]:
    """An empty bucket of 1,000 tokens a second at time 0 and a plate reserved first come first served: the
    first `held` requests wait in place, the next `queued` went back to the queue (bulk tickets)."""
    pace, times = Pace(tokens=Bucket(60_000, 1000, 0, 0.0), requests=Bucket(10_000, 10_000 / 60, 10_000, 0.0)), []
    for _ in range(held + queued):
        pace, go_at, _ = pace.reserve(0.0, cost)
        times.append(go_at)
    return pace, times[:held], times[held:]


def overspent(sent: list[tuple[float, float]], rate: float) -> bool:
    """Whether a schedule of (time, tokens) from an empty bucket at time 0 ever sends more than has refilled."""
    total = 0.0
    for when, tokens in sorted(sent):
        total += tokens
        if total > rate * when + 1e-6:
            return True
    return False


def test_an_interactive_request_goes_ahead_of_the_bulk_tickets_which_move_by_its_cost() -> None:
    pace, held, tickets = draining(held=2, queued=8)
    assert tickets == pytest.approx([3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])  # first come, first served

    pace, go_at, mark, shift = pace.reserve_ahead(0.5, 500, Queued(tokens=8000, requests=8))

    assert go_at == pytest.approx(2.5)  # after the two waiting in place, ahead of every ticket
    assert shift == pytest.approx(0.5)  # 500 tokens at 1,000 a second
    moved = [ticket + shift for ticket in tickets]
    assert pace.clear_at(0.5) == pytest.approx(moved[-1])  # the plate ends later by its cost, no more
    assert pace.waiting_since == 0.0  # the plate still waits
    assert mark == Mark(tokens=2500, requests=3)  # the tickets it overtook count as reserved after it
    assert not overspent([(t, 1000) for t in held + moved] + [(go_at, 500)], rate=1000)
    assert overspent([(t, 1000) for t in held + tickets] + [(go_at, 500)], rate=1000)  # had they not moved


def test_interactive_requests_go_first_come_first_served_among_themselves() -> None:
    pace, held, tickets = draining(held=2, queued=8)
    pace, first, _, shift_first = pace.reserve_ahead(0.5, 500, Queued(8000, 8))
    pace, second, _, shift_second = pace.reserve_ahead(0.6, 1500, Queued(8000, 8))
    assert (first, second) == pytest.approx((2.5, 4.0))  # the second after the first
    moved = [ticket + shift_first + shift_second for ticket in tickets]
    assert moved[0] == pytest.approx(5.0) and pace.clear_at(0.6) == pytest.approx(moved[-1])
    assert not overspent([(t, 1000) for t in held + moved] + [(first, 500), (second, 1500)], rate=1000)


def test_an_interactive_request_with_nothing_queued_is_reserved_as_any_other() -> None:
    pace, _, _ = draining(held=3, queued=0)
    assert pace.reserve_ahead(0.0, 500, Queued()) == (*pace.reserve(0.0, 500), 0.0)


def test_the_bulk_tickets_move_by_what_the_tighter_limit_needs() -> None:
    pace = Pace(tokens=Bucket(1_000_000, 1_000_000 / 60, 0, 0.0), requests=Bucket(60, 1, 0, 0.0))
    for _ in range(5):
        pace, _, _ = pace.reserve(0.0, 10)  # one request a second: 1.0 ... 5.0
    pace, go_at, _, shift = pace.reserve_ahead(0.0, 10, Queued(tokens=40, requests=4))
    assert go_at == pytest.approx(2.0) and shift == pytest.approx(1.0)  # one request's worth of the minute's 60

