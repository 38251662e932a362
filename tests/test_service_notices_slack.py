"""The lab hears what the model service is doing, early and once (issue 15, item 3), end to end: the bot
(real Bolt, slack_sdk and openai clients) against the fake Slack and the fake OpenAI, which rate-limits
and goes down as OpenAI does. What it must show: an upload (or a question) whose calls wait gets one
notice in its thread, never a second one (not across a restart either; a new wait after Retry gets a
new one) and nothing outside threads; the answers take its place (it is deleted); a plate's progress
says what it waits for; `/crystals status` and the Home tab show the service, its limits and the queue."""
from __future__ import annotations

import re
from typing import Any

from bot.provider import snapshots
from bot.render import RETRY_ACTION
from bot.service_state import OUTAGE
from tests.fakes.slack_server import ApiCall
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_home import open_home, published, text_of
from tests.test_plates_slack import ZIP, drop_jpeg, make_zip, plate_members, summary_post, teach
from tests.test_provider_slack import FAST, first_reply, real_image, request_cost, retry_buttons

NOTICE = {"SERVICE_NOTICE_DELAY_SECONDS": "0.3", "SERVICE_NOTICE_CHECK_SECONDS": "0.2"}
RATE_LIMIT_WORDS = re.compile(r"^:hourglass_flowing_sand: The model service \(gpt-4\.1 at http://127\.0\.0\.1:\d+/v1\) "
                              r"is rate-limiting this key: \d+ images? waits?, (under a minute|about \d+ minutes?)\. "
                              r"I will answer here by myself\.$")
OUTAGE_WORDS = re.compile(r"^:hourglass_flowing_sand: The model service \(gpt-4\.1 at http://127\.0\.0\.1:\d+/v1\) "
                          r"is not answering since \d\d:\d\d UTC \(HTTP 500\): (\d+ images? waits?|your question "
                          r"waits)\. I will answer here when it is back\.$")


def notices(bot: RunningBot, thread_ts: str) -> list[ApiCall]:
    """The notices posted in a thread."""
    return [call for call in bot.thread_posts(thread_ts) if call.params["text"].startswith(":hourglass")]


def wait_for_notice(bot: RunningBot, thread_ts: str, timeout: float = 30.0) -> ApiCall:
    return bot.slack.wait_for(lambda: notices(bot, thread_ts), timeout, what=f"a notice in {thread_ts}")[0]


def deleted(bot: RunningBot, notice: ApiCall, timeout: float = 30.0) -> None:
    bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("chat.delete")
                                if c.params.get("ts") == notice.response["ts"] and c.response.get("ok")],
                       timeout, what="the notice deleted")


def shown_text(bot: RunningBot, notice: ApiCall) -> str:
    """A notice's text as it reads now (it is updated as the waiting images change)."""
    updates = [c for c in bot.slack.calls_to("chat.update") if c.params.get("ts") == notice.response["ts"]]
    return (updates or [notice])[-1].params["text"]


def top_level_posts(bot: RunningBot) -> list[ApiCall]:
    return [call for call in bot.slack.calls_to("chat.postMessage") if not call.params.get("thread_ts")]


def answers(bot: RunningBot, thread_ts: str) -> list[ApiCall]:
    return [call for call in bot.thread_posts(thread_ts) if not call.params["text"].startswith(":hourglass")]


def test_a_rate_limited_upload_gets_one_notice_which_the_answers_replace(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    images = [(f"{n}.jpg", drop_jpeg(400 + n)) for n in range(6)]
    bot.openai.set_rate_limits(tokens=2 * request_cost(bot, *images[0]), minute=4.0)  # two requests per 4 s
    event = bot.upload(*images)

    notice = wait_for_notice(bot, event["ts"])
    assert RATE_LIMIT_WORDS.match(notice.params["text"]), notice.params["text"]
    assert len(answers(bot, event["ts"])) < 6  # told while images still waited
    bot.wait_until_done(event, timeout=60)
    deleted(bot, notice)
    bot.drain(timeout=30)

    assert len(notices(bot, event["ts"])) == 1 and len(answers(bot, event["ts"])) == 6
    assert top_level_posts(bot) == []


def test_a_rate_limited_plates_progress_says_it_waits_for_the_rate_limit(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    members = {f"plate8/8_A{n}_1.jpg": drop_jpeg(600 + n) for n in range(1, 7)}
    bot.openai.set_rate_limits(tokens=2 * request_cost(bot, "x.jpg", drop_jpeg(601)), minute=4.0)
    event = bot.upload(("plate8.zip", make_zip(members)), **ZIP)

    waiting = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("chat.update") if re.fullmatch(
        r"Plate plate8: [0-5] of 6 classified · waiting for the model service's rate limit, (under a minute|about \d+ "
        r"minutes?)", c.params.get("text", ""))], 60, what="the plate's progress saying it waits")
    assert waiting
    bot.wait_until_done(event, timeout=60)
    deleted(bot, wait_for_notice(bot, event["ts"]))
    assert [c.params["text"] for c in bot.slack.calls_to("chat.update")
            if c.params["ts"] == waiting[0].params["ts"]][-1] == "Plate plate8: 6 of 6 classified · done"
    assert len(notices(bot, event["ts"])) == 1 and top_level_posts(bot) == []


def test_an_outage_gets_one_notice_per_upload_and_a_plates_progress_says_it_waits(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    members, label_of = plate_members({"A2": "crystals"}, offset=500)
    members = dict(list(members.items())[:4])
    teach(bot, members, label_of)
    bot.openai.outage(500)
    singles = [bot.upload(real_image(0), real_image(1)), bot.upload(real_image(2))]
    plate = bot.upload(("plate7.zip", make_zip(members)), **ZIP)

    found = {event["ts"]: wait_for_notice(bot, event["ts"]) for event in [*singles, plate]}
    for notice in found.values():
        assert OUTAGE_WORDS.match(notice.params["text"]), notice.params["text"]
    for ts, words in ((singles[0]["ts"], "2 images wait"), (plate["ts"], "4 images wait")):  # once all are queued
        bot.slack.wait_for(lambda: words in shown_text(bot, found[ts]), 30, what=words)
    progress = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("chat.update") if re.fullmatch(
        r"Plate plate7: 0 of 4 classified · waiting for the model service, not answering since \d\d:\d\d UTC",
        c.params.get("text", ""))], 30, what="the plate's progress saying it waits")
    assert progress
    probes = bot.openai.status_counts[500]
    bot.slack.wait_for(lambda: bot.openai.status_counts[500] >= probes + 3, 30, what="three more probes")
    assert all(len(notices(bot, ts)) == 1 for ts in found)  # checked again and again, posted once

    bot.openai.outage(None)
    for event in [*singles, plate]:
        bot.wait_until_done(event, timeout=30)
    for notice in found.values():
        deleted(bot, notice)
    bot.drain(timeout=30)
    assert all(len(notices(bot, ts)) == 1 for ts in found) and top_level_posts(bot) == []
    assert [len(answers(bot, event["ts"])) for event in singles] == [2, 1]
    assert summary_post(bot, plate["ts"]).params["text"] == "Plate plate7: 1 crystal hit in 4 images"
    final = [c for c in bot.slack.calls_to("chat.update") if c.params["ts"] == progress[-1].params["ts"]][-1]
    assert final.params["text"] == "Plate plate7: 4 of 4 classified · done"


def test_a_notice_is_never_posted_twice_across_a_restart(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    bot.openai.outage(500)
    event = bot.upload(real_image(0))
    notice = wait_for_notice(bot, event["ts"])
    bot.stop()

    again = start_bot(DATABASE_URL=bot.services.settings.database_url, **FAST, **NOTICE)
    probes = again.openai.status_counts[500]
    again.slack.wait_for(lambda: again.openai.status_counts[500] >= probes + 2, 30, what="the new process probing")
    again.openai.outage(None)
    again.wait_until_done(event, timeout=30)
    deleted(again, notice)
    again.drain(timeout=30)
    assert len(notices(again, event["ts"])) == 1 and len(answers(again, event["ts"])) == 1


def test_after_retry_a_new_wait_gets_a_new_notice(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    bot.openai.outage(500)
    event = bot.upload(real_image(0))
    first = wait_for_notice(bot, event["ts"])
    bot.openai.outage(None)
    bot.openai.quota_exhausted = True  # the wait ends in a lasting error: a failure with Retry
    failure = bot.slack.wait_for(lambda: [c for c in answers(bot, event["ts"]) if retry_buttons(c)], 30,
                                 what="the failure with Retry")[0]
    deleted(bot, first)

    bot.openai.quota_exhausted = False
    bot.openai.outage(500)  # down again when Retry is pressed
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        RETRY_ACTION, retry_buttons(failure)[0]["value"], message={**failure.params, "ts": failure.response["ts"]},
        channel=CHANNEL))
    second = bot.slack.wait_for(lambda: notices(bot, event["ts"])[1:], 30, what="a second notice")[0]
    assert OUTAGE_WORDS.match(second.params["text"]), second.params["text"]
    bot.openai.outage(None)
    bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("chat.update") if c.params["ts"] == failure.response["ts"]
                                and "*clear*" in section_text(c)], 30, what="the failure replaced by the answer")
    deleted(bot, second)
    bot.drain(timeout=30)
    assert len(notices(bot, event["ts"])) == 2 and top_level_posts(bot) == []


def test_a_question_waiting_for_the_service_gets_its_own_notice(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    event = bot.upload(real_image(0))
    first_reply(bot, event)
    bot.openai.outage(500)
    bot.say("why is it clear?", thread_ts=event["ts"])

    notice = wait_for_notice(bot, event["ts"])
    assert OUTAGE_WORDS.match(notice.params["text"]) and "your question waits" in notice.params["text"]
    bot.openai.outage(None)
    bot.slack.wait_for(lambda: [c for c in answers(bot, event["ts"]) if c.params["text"] == bot.openai.follow_up_text],
                       30, what="the answer")
    deleted(bot, notice)
    bot.drain(timeout=30)
    assert len(notices(bot, event["ts"])) == 1 and top_level_posts(bot) == []


def test_a_short_wait_gets_no_notice(start_bot) -> None:
    bot = start_bot(**FAST, SERVICE_NOTICE_DELAY_SECONDS="30")
    bot.openai.outage(500)
    event = bot.upload(real_image(0))
    bot.slack.wait_for(lambda: bot.services.store.provider_waits(), 30, what="the image waiting")
    bot.openai.outage(None)
    bot.wait_until_done(event, timeout=30)
    assert notices(bot, event["ts"]) == [] and len(answers(bot, event["ts"])) == 1
    assert bot.services.store.open_jobs() == 0  # its notice, due in 30 s, ended with the upload's work


def status(bot: RunningBot, user: str = "U1") -> dict[str, Any]:
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("status", channel=CHANNEL, user=user))
    return bot.slack.wait_for_ack(envelope)


def test_status_and_the_home_tab_show_the_service_its_limits_and_the_queue(start_bot) -> None:
    bot = start_bot(**FAST, **NOTICE)
    bot.wait_until_done(bot.upload(real_image(0)))  # the limits are learned from the answer's headers
    bot.openai.outage(500)
    bot.upload(real_image(1), real_image(2))
    bot.slack.wait_for(lambda: sum(w.jobs for w in bot.services.store.provider_waits()) == 2, 30,
                       what="two images waiting")
    assert snapshots(bot.services.store)[0].state == OUTAGE

    ack = status(bot, user="U9")  # anyone: counts only, no channel named
    text = ack["text"]
    assert ack["response_type"] == "ephemeral"
    assert re.search(r"\*The model service \(gpt-4\.1 at http://127\.0\.0\.1:\d+/v1\)\*: not answering since "
                     r"\d\d:\d\d UTC \(HTTP 500\); the next try in under a minute\.", text), text
    assert (f"Limits learned: {bot.openai.limit_tokens:,.0f} tokens and {bot.openai.limit_requests:,.0f} requests a "
            "minute.") in text
    assert re.search(r"Requests so far: 1 answered · \d+ failed \(5xx", text), text
    assert "• Images: 2 waiting for the service to answer" in text and CHANNEL not in text

    open_home(bot)
    (view,) = published(bot, 1)
    home = text_of(view.params["view"])
    assert "not answering since" in home and "• Images: 2 waiting for the service to answer" in home
    bot.openai.outage(None)
