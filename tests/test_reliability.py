"""Nothing lost, nothing doubled: the bot against a Slack that fails, drops connections and rate-limits,
on SQLite and PostgreSQL; clicks and questions that try to reach what they should not."""
from __future__ import annotations

import pytest

from bot.render import CONFIRM_ACTION
from bot.slack.intake import NOT_ALLOWED
from bot.slack.posting import JOB_EVENT_TYPE
from tests.helpers import content_items, image_bytes
from tests.slack_harness import CHANNEL, RunningBot, section_text

CRYSTALS = ("10.jpeg", image_bytes("crystals", 10))


@pytest.fixture
def bot(database_url, start_bot) -> RunningBot:  # the database outlives the bot
    bot = start_bot(DATABASE_URL=database_url, JOB_RETRY_SECONDS="0.1")
    bot.openai.label_image(bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg, "crystals")
    return bot


def bot_replies(bot: RunningBot, thread_ts: str) -> list[dict]:
    """The bot's messages in a thread as Slack holds them (not the requests it sent)."""
    return [m for m in bot.slack.messages(CHANNEL) if m.get("thread_ts") == thread_ts and m.get("user") == "UBOT"]


def test_a_503_on_the_post_is_retried_and_the_call_posted_once(bot: RunningBot) -> None:
    bot.slack.fail_next("chat.postMessage", 503)
    event = bot.upload(CRYSTALS)

    assert bot.wait_until_done(event) == {"gem"}
    assert [post.status for post in bot.thread_posts(event["ts"])] == [503, 200]
    (reply,) = bot_replies(bot, event["ts"])
    assert reply["text"].startswith("crystals (93%)")


def test_a_post_slack_accepted_before_the_connection_dropped_is_not_posted_again(bot: RunningBot) -> None:
    bot.slack.drop_after_accepting("chat.postMessage")
    event = bot.upload(CRYSTALS)

    assert bot.wait_until_done(event) == {"gem"}
    bot.drain()
    (reply,) = bot_replies(bot, event["ts"])
    assert reply["metadata"]["event_type"] == JOB_EVENT_TYPE
    assert len(bot.thread_posts(event["ts"])) == 1  # the retry looked in the thread instead of posting
    lookups = bot.slack.calls_to("conversations.replies")
    assert lookups and lookups[0].params["include_all_metadata"] in ("1", "true", True)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert (job.state, job.reply_ts, job.attempts) == ("done", reply["ts"], 2)


def test_failing_reactions_still_end_in_the_outcome(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)
    bot.slack.fail_next("reactions.add", 503, times=3)  # more than the client's own two retries

    assert bot.wait_until_done(event) == {"gem"}


def test_a_burst_against_slacks_rate_limit_answers_every_upload_exactly_once(database_url, start_bot) -> None:
    bot = start_bot(post_interval=1.0, DATABASE_URL=database_url)  # Slack's own pace, as in production
    bot.slack.limit_posts_per_channel(per_second=1.0, burst=1)  # stricter than the bot's own pacing
    events = [bot.upload((f"{n}.jpeg", image_bytes("clear", 236)), event_id=f"Ev{n}") for n in range(8)]

    for event in events:
        bot.wait_until_done(event, timeout=60)
    bot.drain()
    assert all(len(bot_replies(bot, event["ts"])) == 1 for event in events)
    assert 429 in [post.status for post in bot.slack.calls_to("chat.postMessage")]  # the limit did bite


def test_outside_allowed_channels_the_bot_is_silent_and_says_why_once(start_bot) -> None:
    bot = start_bot(ALLOWED_CHANNELS="C9")
    event = bot.upload(CRYSTALS)
    joined = {"type": "member_joined_channel", "user": "UBOT", "channel": CHANNEL, "channel_type": "C", "inviter": "U1"}
    envelopes = [bot.slack.push_event(joined) for _ in range(2)]
    bot.say(f"<@UBOT> what is in {event['ts']}?")
    for envelope in envelopes:
        bot.slack.wait_for_ack(envelope)
    bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postMessage"), what="the notice")
    bot.drain()

    assert bot.openai.requests == [] and bot.slack.downloads == []
    assert [post.params["text"] for post in bot.slack.calls_to("chat.postMessage")] == [NOT_ALLOWED]
    assert bot.slack.reactions(CHANNEL, event["ts"]) == set()


def test_forged_and_malformed_clicks_change_nothing(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    bot.wait_until_done(event)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    message = {**reply.params, "ts": reply.response["ts"]}

    envelopes = [bot.slack.push_interactive(bot.slack.block_actions_payload(CONFIRM_ACTION, value, message=message,
                                                                            channel=channel))
                 for value, channel in [(f"{job.id}:crystals", "C666"),  # a job of another channel
                                        ("DROP TABLE jobs:crystals", CHANNEL), (f"{job.id}:<!channel>", CHANNEL),
                                        (f"{job.id + 1000}:crystals", CHANNEL)]]
    for envelope in envelopes:
        bot.slack.wait_for_ack(envelope)  # every click is acknowledged, whatever its value
    bot.drain()
    assert bot.services.store.latest_feedback(job.id) is None
    assert bot.slack.calls_to("chat.update") == []


def test_confirming_with_another_label_counts_as_a_correction(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    message = {**reply.params, "ts": reply.response["ts"]}
    bot.slack.push_interactive(bot.slack.block_actions_payload(CONFIRM_ACTION, f"{job.id}:clear", message=message,
                                                               channel=CHANNEL))

    (update,) = bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"))
    assert "Corrected to :droplet: *clear*" in section_text(update)
    assert bot.services.store.channel_stats(CHANNEL).corrected == 1


def test_a_huge_question_and_a_long_thread_reach_the_model_bounded_and_latest_first(start_bot) -> None:
    bot = start_bot(MAX_QUESTION_CHARS="500", FOLLOW_UP_HISTORY_CHARS="3000")
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)
    for n in range(230):  # more than one page of conversations.replies
        bot.slack.add_message(CHANNEL, f"note {n}", thread_ts=event["ts"], user="U2")
    bot.say("why? " + "x" * 40_000, thread_ts=event["ts"])

    bot.wait_for_posts(event["ts"], 2)
    text = " ".join(item.get("text", "") for item in content_items(bot.openai.responses_requests()[-1]))
    assert "note 229" in text and "note 3 " not in text  # the latest messages, not the oldest
    question = text.split("The question to answer now:")[1]
    assert 400 < len(question) < 600


def test_the_same_image_posted_twice_at_once_costs_one_model_call(start_bot) -> None:
    bot = start_bot()
    bot.openai.delay = 1.0  # both jobs run while the first model call is out
    first, second = bot.upload(CRYSTALS), bot.upload(("copy-of-10.jpeg", CRYSTALS[1]))
    bot.wait_until_done(first)
    bot.wait_until_done(second)
    assert len(bot.openai.responses_requests()) == 1
    replies = [bot.wait_for_posts(event["ts"], 1)[0] for event in (first, second)]
    footers = sorted("from the cache" in r.params["blocks"][-1]["elements"][0]["text"] for r in replies)
    assert footers == [False, True]  # one paid call, the other answered from it
