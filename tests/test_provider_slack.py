"""The model service as it really behaves, end to end: the bot (real Bolt, slack_sdk and openai
clients) against the fake Slack and a fake OpenAI that enforces tokens and requests per minute,
answers 429 as OpenAI does, goes down, and cuts answers off. What it must show: a plate drains at the
key's rate with few 429s and one request per image; a 429 or an outage costs no image and no click;
a lasting error ends with a Retry button; a user never reads Python's exception text."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any, Callable

import pytest

from bot.provider import snapshots
from bot.render import RETRY_ACTION
from bot.service_state import OK, OUTAGE
from tests.fakes.openai_server import query_image_sha256
from tests.fakes.slack_server import ApiCall
from tests.helpers import image_bytes
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_plates_slack import ZIP, drop_jpeg, make_zip, plate_members, summary_post, teach

EXCEPTION_TEXT = re.compile(r"Traceback|\b\w*(Error|Exception)\b|line \d+ column \d+|\(char \d+\)")
IMAGES = [("crystals", 10), ("crystals", 25), ("clear", 236), ("clear", 220), ("other", 1254), ("other", 1401)]
FAST = {"MODEL_PROBE_SECONDS": "0.3", "MODEL_WAIT_IN_WORKER_SECONDS": "0.2", "JOB_RETRY_SECONDS": "0.1",
        "MODEL_BREAKER_FAILURES": "2", "OPENAI_MAX_RETRIES": "1"}


def real_image(number: int) -> tuple[str, bytes]:
    label, picture = IMAGES[number]
    return f"{picture}.jpeg", image_bytes(label, picture)


def shown(bot: RunningBot) -> list[ApiCall]:
    """Every message the bot posted or updated."""
    return bot.slack.calls_to("chat.postMessage") + bot.slack.calls_to("chat.update")


def exception_text(bot: RunningBot) -> list[str]:
    texts = [text for call in shown(bot) for text in (call.params.get("text", ""), section_text(call))]
    return [text for text in texts if EXCEPTION_TEXT.search(text)]


def retry_buttons(call: ApiCall) -> list[dict[str, Any]]:
    return [element for block in call.params.get("blocks") or [] if block["type"] == "actions"
            for element in block["elements"] if element.get("action_id") == RETRY_ACTION]


def request_cost(bot: RunningBot, name: str, data: bytes) -> int:
    """What one classification request counts against the fake's token limit."""
    return bot.openai.estimated_tokens(bot.services.classifier.request(bot.normalised(data, name)))


def first_reply(bot: RunningBot, event: dict[str, Any], timeout: float = 30.0) -> ApiCall:
    return bot.wait_for_posts(event["ts"], 1, timeout)[0]


def rate_limited_plate(start_bot: Callable[..., RunningBot],
                       minute: float) -> tuple[RunningBot, dict[str, bytes], int]:
    """A bot whose key allows three requests per `minute` seconds, a 12-image plate taught to the fake, and
    what one of its requests costs."""
    bot = start_bot(MODEL_WAIT_IN_WORKER_SECONDS="0.5")  # longer waits go back to the queue, their time kept
    members, label_of = plate_members({"A5": "crystals"})
    members = dict(list(members.items())[:12])
    teach(bot, members, label_of)
    cost = request_cost(bot, "x.jpg", next(iter(members.values())))
    bot.openai.set_rate_limits(tokens=3 * cost, requests=1000, minute=minute)
    return bot, members, cost


def sent_sha256(bot: RunningBot, name: str, data: bytes) -> str:
    """The sha256 of an image as the bot sends it to the model."""
    return hashlib.sha256(bot.normalised(data, name.rsplit("/", 1)[-1]).jpeg).hexdigest()


def test_a_plate_drains_at_the_keys_rate_with_few_429s_and_one_request_per_image(start_bot) -> None:
    bot, members, cost = rate_limited_plate(start_bot, minute=2.0)  # three requests per 2 s

    event = bot.upload(("plate9.zip", make_zip(members)), **ZIP)

    bot.wait_until_done(event, timeout=90)
    assert summary_post(bot, event["ts"]).params["text"] == "Plate plate9: 1 crystal hit in 12 images"
    served_429 = bot.openai.rate_limited
    assert served_429 <= 2  # paced to the key's rate; without the budget most of the 12 would be refused
    assert len(bot.openai.responses_requests()) == 12 + served_429  # one request per image, plus the refused
    jobs = [job for job in bot.services.store.inspection_jobs(1)]
    assert len(jobs) == 12 and {(job.state, job.attempts) for job in jobs} == {("done", 1)}
    (service,) = snapshots(bot.services.store)
    assert service.limit_tokens == 3 * cost and service.counts["answered"].requests == 12


def answered_order(bot: RunningBot) -> list[str]:
    """What each request to the fake asked about (an image's sha256, or "question"), in the order they were
    answered: a request refused with a 429 counts where it was sent again."""
    asked = ["question" if "why is it clear?" in json.dumps(body) else query_image_sha256(body) or ""
             for body in bot.openai.responses_requests()]
    return [what for index, what in enumerate(asked) if what not in asked[index + 1:]]


def test_a_question_and_a_single_image_go_ahead_of_a_draining_plate(start_bot) -> None:
    bot, members, _ = rate_limited_plate(start_bot, minute=9.0)  # three requests per 9 s: the plate takes 36 s,
    # so a loaded machine still has the question and the image sent while 8 wells wait
    earlier = bot.upload(real_image(2))
    first_reply(bot, earlier)
    plate = bot.upload(("plate9.zip", make_zip(members)), **ZIP)
    bot.openai.wait_for(lambda: len(bot.openai.responses_requests()) >= 1 + 4, timeout=60)  # draining

    single = bot.upload(real_image(0))
    bot.say("why is it clear?", thread_ts=earlier["ts"])

    assert first_reply(bot, single, timeout=60).params["text"]
    assert bot.wait_for_posts(earlier["ts"], 2, timeout=60)[1].params["text"] == bot.openai.follow_up_text
    bot.wait_until_done(plate, timeout=120)
    assert summary_post(bot, plate["ts"]).params["text"] == "Plate plate9: 1 crystal hit in 12 images"
    wells = {sent_sha256(bot, name, data) for name, data in members.items()}
    order = answered_order(bot)
    wells_after = [len([what for what in order[order.index(asked) + 1:] if what in wells])
                   for asked in ("question", sent_sha256(bot, *real_image(0)))]
    assert min(wells_after) >= 4  # both answered while the plate's last images still waited
    # still paced (unpaced, most of the plate is refused); a 9 s "minute" on a busy machine sees a few 429s
    assert bot.openai.rate_limited <= len(members) // 2
    assert {job.state for job in bot.services.store.inspection_jobs(1)} == {"done"}


def test_a_429_is_waited_out_without_spending_an_attempt(start_bot) -> None:
    bot = start_bot(JOB_MAX_ATTEMPTS="2")
    bot.openai.fail_next(429, times=5, retry_after=0.05)
    event = bot.upload(real_image(0))

    reply = first_reply(bot, event)
    assert reply.params["text"].startswith("clear") and not retry_buttons(reply)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert job.attempts == 1 and bot.openai.rate_limited == 5 and len(bot.openai.responses_requests()) == 6


def test_a_server_without_rate_limit_headers_is_learned_from_its_429s(start_bot) -> None:
    bot = start_bot(MODEL_WAIT_IN_WORKER_SECONDS="0.5")
    bot.openai.rate_limit_headers = False
    cost = request_cost(bot, *real_image(0))
    bot.openai.set_rate_limits(tokens=2 * cost, minute=2.0)
    event = bot.upload(*[real_image(n) for n in range(6)])

    bot.wait_until_done(event, timeout=90)
    jobs = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert {(job.state, job.attempts) for job in jobs} == {("done", 1)} and len(jobs) == 6
    assert 0 < bot.openai.rate_limited < 6 * 4  # it did bite, and was waited out
    assert snapshots(bot.services.store)[0].limit_tokens == 2 * cost  # learned from the 429s' messages alone


def test_the_limits_learned_survive_a_restart(start_bot) -> None:
    bot = start_bot()
    first = bot.upload(real_image(0))
    bot.wait_until_done(first)
    bot.stop()
    again = start_bot(DATABASE_URL=bot.services.settings.database_url)
    assert snapshots(again.services.store)[0].limit_tokens == bot.openai.limit_tokens
    again.openai.reset()
    again.openai.hold_until_in_flight = 4  # no answer before 4 requests are out at once
    event = again.upload(*[real_image(n) for n in range(1, 5)])

    again.wait_until_done(event, timeout=30)
    assert again.openai.max_in_flight == 4  # not blind: not one at a time until an answer tells the limits


@pytest.mark.parametrize("down", [500, "drop"])
def test_every_image_is_answered_after_an_outage_with_no_click(start_bot, down) -> None:
    bot = start_bot(JOB_MAX_ATTEMPTS="2", **FAST)  # far fewer attempts than the waits it takes
    members, label_of = plate_members({"A2": "crystals"}, offset=300)
    members = dict(list(members.items())[:6])
    teach(bot, members, label_of)
    bot.openai.outage(down)
    singles = [bot.upload(real_image(n)) for n in range(3)]
    plate = bot.upload(("plate3.zip", make_zip(members)), **ZIP)
    store = bot.services.store

    bot.slack.wait_for(lambda: sum(w.jobs for w in store.provider_waits() if w.reason == "outage") == 9, 60,
                       what="3 images and 6 wells waiting for the service")
    assert snapshots(store)[0].state == OUTAGE
    status = 500 if down == 500 else "dropped"
    failed_so_far, started = bot.openai.status_counts[status], time.monotonic()
    bot.slack.wait_for(lambda: bot.openai.status_counts[status] >= failed_so_far + 3, 30, what="three probes")
    assert time.monotonic() - started >= 2 * 0.3  # one probe at a time, 0.3-0.6 s apart, not 9 jobs retrying
    assert not [call for call in shown(bot) if call.params.get("text", "").startswith(":warning:")]

    bot.openai.outage(None)
    for event in singles:
        bot.wait_until_done(event, timeout=30)
    bot.wait_until_done(plate, timeout=30)
    for event in singles:
        (reply,) = bot.thread_posts(event["ts"])
        assert not reply.params["text"].startswith(":warning:")
    assert summary_post(bot, plate["ts"]).params["text"] == "Plate plate3: 1 crystal hit in 6 images"
    jobs = [*(job for event in singles for job in store.jobs_of_message(CHANNEL, event["ts"])),
            *store.inspection_jobs(1)]
    assert len(jobs) == 9 and {job.state for job in jobs} == {"done"} and max(job.attempts for job in jobs) <= 2
    assert not any(retry_buttons(call) for call in shown(bot)) and exception_text(bot) == []
    assert snapshots(store)[0].state == OK
    assert len(bot.slack.downloads) == 4  # each file once: an image waiting keeps its copy


def test_past_the_outage_max_an_image_ends_with_a_retry_button_that_works(start_bot) -> None:
    bot = start_bot(MODEL_OUTAGE_MAX="1s", **FAST)
    bot.openai.outage(503)
    event = bot.upload(real_image(0))

    reply = first_reply(bot, event)
    bot.wait_until_done(event)
    text = reply.params["text"]
    assert re.search(r"has not been answering since \d\d:\d\d UTC \(HTTP 503\)\. I stopped waiting after", text)
    assert "press Retry once it is back" in text and exception_text(bot) == []
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert job.state == "failed" and job.attempts == 1

    bot.openai.outage(None)
    message = {**reply.params, "ts": reply.response["ts"]}
    bot.slack.push_interactive(bot.slack.block_actions_payload(RETRY_ACTION, retry_buttons(reply)[0]["value"],
                                                               message=message, channel=CHANNEL))
    update = bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"), what="the failure replaced")[-1]
    assert update.params["ts"] == reply.response["ts"] and "*clear*" in section_text(update)


LASTING = {
    "401": (lambda fake: fake.fail_next(401, times=9), "refused the API key (401)", 1),
    "quota": (lambda fake: setattr(fake, "quota_exhausted", True), "out of credit (insufficient_quota)", 1),
    "no model": (lambda fake: fake.fail_next(404, times=9, code="model_not_found",
                                             message="The model `gpt-4.1` does not exist or you do not have access "
                                                     "to it."), "(HTTP 404): The model `gpt-4.1` does not exist", 1),
    "400 twice": (lambda fake: fake.fail_next(400, times=9), "(HTTP 400): Invalid request.", 2),
    "too large": (lambda fake: fake.set_rate_limits(tokens=1000), "more than the key's limit of 1,000 tokens per "
                  "minute: ask about fewer images, or raise the limit.", 1),
}


@pytest.mark.parametrize("case", LASTING)
def test_a_lasting_error_ends_at_once_with_a_retry_button(start_bot, case: str) -> None:
    switch, words, requests = LASTING[case]
    bot = start_bot(**FAST)
    switch(bot.openai)
    event = bot.upload(real_image(0))

    reply = first_reply(bot, event)
    bot.wait_until_done(event)  # the reply is posted before the job is marked failed
    assert words in reply.params["text"] and retry_buttons(reply)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert (job.state, job.attempts) == ("failed", 1) and len(bot.openai.responses_requests()) == requests
    assert exception_text(bot) == []


def test_a_cut_off_answer_is_tried_again_and_never_shown(start_bot, caplog: pytest.LogCaptureFixture) -> None:
    bot = start_bot()
    bot.openai.label_image(bot.normalised(*reversed(real_image(0))).jpeg, "crystals")
    bot.openai.truncate_next()
    with caplog.at_level(logging.INFO):
        event = bot.upload(real_image(0))
        reply = first_reply(bot, event)
    assert reply.params["text"].startswith("crystals") and len(bot.openai.responses_requests()) == 2
    assert exception_text(bot) == [] and "Traceback" not in caplog.text
    (line,) = [record for record in caplog.records if "could not be read" in record.getMessage()]
    assert line.exc_info is None and "(JSONDecodeError: " in line.getMessage()  # for the operator, in one line


def test_answers_that_stay_broken_end_with_words_for_people(start_bot, caplog: pytest.LogCaptureFixture) -> None:
    bot = start_bot(JOB_MAX_ATTEMPTS="2", JOB_RETRY_SECONDS="0.1", MODEL_BREAKER_FAILURES="10")
    bot.openai.truncate_next(times=4)  # every try of both attempts
    event = bot.upload(real_image(0))

    reply = first_reply(bot, event)
    assert "sent answers that were cut off or empty after 1 retries" in reply.params["text"] and retry_buttons(reply)
    assert exception_text(bot) == [] and "Traceback" not in caplog.text


def test_a_question_in_an_outage_waits_and_a_lasting_error_is_told_in_words(start_bot) -> None:
    bot = start_bot(**FAST)
    event = bot.upload(real_image(0))
    first_reply(bot, event)
    bot.openai.outage(502)
    bot.say("why is it clear?", thread_ts=event["ts"])
    bot.slack.wait_for(lambda: bot.services.store.provider_waits(), 30, what="the question waiting")
    bot.openai.outage(None)
    answer = bot.wait_for_posts(event["ts"], 2, timeout=30)[1]
    assert answer.params["text"] == bot.openai.follow_up_text

    bot.openai.fail_next(401, times=9)
    bot.say("and the edges?", thread_ts=event["ts"])
    failure = bot.wait_for_posts(event["ts"], 3, timeout=30)[2]
    assert failure.params["text"].startswith(":warning: I could not answer: The model service refused the API key")
    assert retry_buttons(failure) and exception_text(bot) == []


def test_a_plates_wells_with_a_lasting_error_are_listed_in_words(start_bot) -> None:
    bot = start_bot()
    members = {f"plate5/5_A{n}_1.jpg": drop_jpeg(700 + n) for n in range(1, 4)}
    bot.openai.fail_next(401, times=9)
    event = bot.upload(("plate5.zip", make_zip(members)), **ZIP)

    bot.wait_until_done(event, timeout=30)
    text = section_text(summary_post(bot, event["ts"]))
    assert "A1, A2, A3: The model service refused the API key (401)" in text and exception_text(bot) == []


def test_two_bots_on_one_postgresql_database_share_the_keys_budget(postgres_url: str,
                                                                    start_bot: Callable[..., RunningBot]) -> None:
    first = start_bot(DATABASE_URL=postgres_url, MODEL_WAIT_IN_WORKER_SECONDS="0.5")
    second = start_bot(DATABASE_URL=postgres_url, MODEL_WAIT_IN_WORKER_SECONDS="0.5")
    first.slack.round_robin = True
    cost = request_cost(first, *real_image(0))
    first.openai.set_rate_limits(tokens=3 * cost, requests=1000, minute=2.0)
    events = [first.upload((f"{n}.jpg", drop_jpeg(900 + n))) for n in range(12)]

    for event in events:
        first.wait_until_done(event, timeout=90)
    served_429 = first.openai.rate_limited
    assert served_429 <= 3  # one budget: two processes did not double the rate
    assert len(first.openai.responses_requests()) == 12 + served_429
    assert all(len(first.thread_posts(event["ts"])) == 1 for event in events)
    assert second.services.store.open_jobs() == 0
