"""The Slack bot end to end: real slack_bolt / slack_sdk / openai clients against the fake Slack
(Web API, file hosting, Socket Mode) and the fake OpenAI, all on 127.0.0.1."""
from __future__ import annotations

from typing import Callable

import pytest

from bot.render import CONFIRM_ACTION, CORRECT_ACTION, RETRY_ACTION
from bot.slack.files import SIGN_IN_HELP
from tests.helpers import API_KEY, content_items, image_bytes
from tests.slack_harness import CHANNEL, RunningBot, section_text

CRYSTALS = ("10.jpeg", image_bytes("crystals", 10))
CLEAR = ("236.jpeg", image_bytes("clear", 236))
PRECIPITATE = ("215.jpeg", image_bytes("precipitate", 215))


@pytest.fixture
def bot(start_bot: Callable[..., RunningBot]) -> RunningBot:
    bot = start_bot()
    bot.openai.label_image(bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg, "crystals")
    bot.openai.label_image(bot.normalised(PRECIPITATE[1], PRECIPITATE[0]).jpeg, "precipitate")
    return bot


def test_one_upload_gets_a_reaction_a_threaded_call_and_an_outcome(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS)

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert bot.wait_until_done(event) == {"gem"}
    text = section_text(reply)
    assert ":gem: *crystals* · `10.jpeg`" in text
    assert "*Confidence:* 93% (from the model's token probabilities)" in text
    assert "gpt-4.1 · $0.0" in text
    assert reply.params["text"].startswith("crystals (93%) for 10.jpeg")
    actions = next(b for b in reply.params["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [CONFIRM_ACTION, CORRECT_ACTION]
    first_reaction = bot.slack.calls_to("reactions.add")[0]
    assert first_reaction.params["name"] == "eyes" and first_reaction.params["timestamp"] == event["ts"]
    (download,) = bot.slack.downloads
    assert download.headers["Authorization"] == f"Bearer {bot.slack.bot_token}"
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert (job.state, job.reply_ts) == ("done", reply.response["ts"])


def test_an_upload_answered_before_its_eyes_reaction_lands_does_not_keep_it(bot: RunningBot) -> None:
    bot.slack.carry_out_late("reactions.add", 3.0, name="eyes")  # the listener's :eyes: lands after the answer
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)
    bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("reactions.add") if c.params["name"] == "eyes"],
                       what="the late :eyes:")
    assert bot.wait_until_done(event) == {"gem"}  # taken off again


def test_several_images_in_one_message_each_get_a_call(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS, CLEAR, PRECIPITATE)

    replies = bot.wait_for_posts(event["ts"], 3)
    assert bot.wait_until_done(event) == {"gem", "droplet", "hourglass"}
    calls = sorted(section_text(reply).splitlines()[0] for reply in replies)
    assert calls == [":droplet: *clear* · `236.jpeg`", ":gem: *crystals* · `10.jpeg`",
                     ":hourglass: *precipitate* · `215.jpeg`"]
    assert len(bot.openai.responses_requests()) == 3


def test_files_that_are_not_images_are_left_alone(bot: RunningBot) -> None:
    alone = bot.upload(("notes.pdf", b"%PDF-1.7 ..."), mimetype="application/pdf", filetype="pdf")
    mixed = bot.upload(bot.slack.add_file("notes.pdf", b"%PDF-1.7 ...", "application/pdf", "pdf"), CRYSTALS)

    bot.wait_for_posts(mixed["ts"], 1)
    bot.wait_until_done(mixed)
    assert bot.thread_posts(alone["ts"]) == [] and bot.slack.reactions(CHANNEL, alone["ts"]) == set()
    assert [d.path.rsplit("/", 1)[-1] for d in bot.slack.downloads] == ["10.jpeg"]


def test_the_same_event_delivered_twice_is_answered_once(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS, event_id="EvSAME")
    bot.slack.push_event(event, event_id="EvSAME", retry_attempt=1)
    bot.slack.push_event(event, event_id="EvOTHER")  # a second process on the token, a new event id

    bot.wait_until_done(event)
    bot.drain()
    assert len(bot.thread_posts(event["ts"])) == 1
    assert len(bot.openai.responses_requests()) == 1


def test_a_file_still_being_scanned_is_looked_up_then_classified(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS, pending_scan=True)

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert ":gem: *crystals* · `10.jpeg`" in section_text(reply)
    assert bot.slack.calls_to("files.info")


def test_a_sign_in_page_instead_of_the_file_says_to_reinstall_with_files_read(bot: RunningBot,
                                                                               caplog: pytest.LogCaptureFixture) -> None:
    hosted = bot.slack.add_file(*CRYSTALS)
    bot.slack.redirect_file_to(hosted["id"], f"{bot.slack.base_url}/signin?redir=x")
    event = bot.slack.add_message(CHANNEL, "", files=[hosted])
    bot.slack.push_event(event)

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert bot.wait_until_done(event) == {"warning"}
    assert "files:read" in reply.params["text"] and "reinstall" in reply.params["text"]
    assert section_text(reply) == f":warning: I could not classify `10.jpeg`: {SIGN_IN_HELP}"
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert job.state == "failed"
    assert bot.slack.bot_token not in caplog.text and API_KEY not in caplog.text


def test_a_redirect_to_another_host_never_gets_the_token(bot: RunningBot) -> None:
    hosted = bot.slack.add_file(*CRYSTALS)
    bot.slack.redirect_file_to(hosted["id"], bot.slack.elsewhere_url + "steal")
    event = bot.slack.add_message(CHANNEL, "", files=[hosted])
    bot.slack.push_event(event)

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert "led outside Slack" in reply.params["text"]
    assert not [d for d in bot.slack.downloads if "elsewhere" in d.path]


def test_a_corrupt_image_gets_a_clear_reply(bot: RunningBot) -> None:
    name, data = CRYSTALS
    event = bot.upload(("broken.jpeg", data[: len(data) // 3]))

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert "broken.jpeg is truncated or corrupt" in reply.params["text"]
    assert bot.openai.responses_requests() == []


@pytest.mark.parametrize(("switch", "message"), [
    (lambda fake: fake.fail_next(500, times=4, retry_after=0.01), "The model service failed (HTTP 500) after 1 retries"),
    (lambda fake: setattr(fake, "delay", 2.0), "The model did not answer in time (0.5 s)"),
])
def test_model_failures_are_retried_then_answered_with_a_retry_button_that_works(start_bot, switch, message) -> None:
    # a request that keeps failing while the service is not down (the breaker stays closed) spends attempts
    bot = start_bot(OPENAI_TIMEOUT="0.5", JOB_MAX_ATTEMPTS="2", JOB_RETRY_SECONDS="0.1", MODEL_BREAKER_FAILURES="10")
    switch(bot.openai)
    event = bot.upload(CRYSTALS)

    (reply,) = bot.wait_for_posts(event["ts"], 1)
    assert message in reply.params["text"]
    assert bot.wait_until_done(event) == {"warning"}
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert (job.state, job.attempts) == ("failed", 2) and message in job.error
    actions = next(b for b in reply.params["blocks"] if b["type"] == "actions")
    assert actions["elements"][0]["action_id"] == RETRY_ACTION

    bot.openai.delay = 0.0  # the model service is back
    failure = {**reply.params, "ts": reply.response["ts"]}
    bot.slack.push_interactive(bot.slack.block_actions_payload(RETRY_ACTION, str(job.id), message=failure,
                                                               channel=CHANNEL))
    (update,) = bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"), what="the failure replaced")
    assert update.params["ts"] == reply.response["ts"] and ":droplet: *clear*" in section_text(update)
    bot.slack.wait_for(lambda: bot.slack.reactions(CHANNEL, event["ts"]) == {"droplet"}, what=":warning: replaced")
    assert len(bot.thread_posts(event["ts"])) == 1


def test_a_slack_429_is_waited_out(bot: RunningBot) -> None:
    bot.slack.rate_limit_next("chat.postMessage", retry_after=0)
    event = bot.upload(CRYSTALS)

    bot.wait_until_done(event)
    posts = bot.thread_posts(event["ts"])
    assert [p.status for p in posts] == [429, 200]


def test_a_question_in_the_thread_is_answered_with_the_image_and_the_call(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)
    bot.openai.follow_up_text = "The sharp straight edges are crystal faces; precipitate would be grainy."

    bot.say("why not precipitate?", thread_ts=event["ts"])

    answer = bot.wait_for_posts(event["ts"], 2)[1]
    assert answer.params["text"] == "The sharp straight edges are crystal faces; precipitate would be grainy."
    request = bot.openai.responses_requests()[-1]
    assert "follow-up question" in request["instructions"] and "precipitate: precipitate observed" in request["instructions"]
    items = content_items(request)
    assert items[0]["text"].startswith("Image 10.jpeg: your call was crystals (confidence 93%)")
    assert items[1]["type"] == "input_image"
    assert "<@U1>: why not precipitate?" in items[-1]["text"]
    assert "you (the bot): crystals (93%) for 10.jpeg" in items[-2]["text"]
    assert "text" not in request or request["text"].get("format", {}).get("type") != "json_schema"
    bot.drain()
    ((cost,),) = bot.services.store.dump("follow_ups")  # the answer's tokens and cost are kept like a call's
    assert cost["model"] == "gpt-4.1" and cost["input_tokens"] > 765 and cost["cost_usd"] > 0


def test_the_bot_ignores_threads_it_has_no_part_in_and_itself(bot: RunningBot) -> None:
    parent = bot.say("our plate 7 looks odd")
    bot.say("anyone?", thread_ts=parent["ts"])
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)
    bot.say("a note from myself", thread_ts=event["ts"], user=bot.slack.bot_user_id)

    mention = bot.say(f"<@{bot.slack.bot_user_id}> what is MARCO?", thread_ts=parent["ts"])

    bot.wait_for_posts(parent["ts"], 1)
    bot.drain()
    assert len(bot.thread_posts(parent["ts"])) == 1  # only the mention was answered
    assert len(bot.thread_posts(event["ts"])) == 1  # the bot did not answer itself
    assert "what is MARCO?" in content_items(bot.openai.responses_requests()[-1])[-1]["text"]
    assert mention["ts"] != parent["ts"]


def test_confirm_and_correct_update_the_message_and_are_stored(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    message = {**reply.params, "ts": reply.response["ts"]}
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])

    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CONFIRM_ACTION, f"{job.id}:crystals", message=message, channel=CHANNEL, user="U7"))
    confirmed = bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"))[0]
    assert confirmed.params["ts"] == reply.response["ts"]
    assert ":white_check_mark: Confirmed by <@U7>" in section_text(confirmed)

    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CORRECT_ACTION, None, message=message, channel=CHANNEL, user="U8",
        selected_option_value=f"{job.id}:precipitate"))
    corrected = bot.slack.wait_for(lambda: len(bot.slack.calls_to("chat.update")) == 2 and bot.slack.calls_to("chat.update"))[1]
    assert ":pencil2: Corrected to :hourglass: *precipitate* by <@U8>" in section_text(corrected)
    assert "Confirmed" not in section_text(corrected)
    feedback = bot.services.store.latest_feedback(job.id)
    assert (feedback.user_id, feedback.verdict, feedback.label) == ("U8", "corrected", "precipitate")


def test_a_click_before_the_bot_has_heard_back_that_its_reply_is_posted_is_not_lost(start_bot) -> None:
    bot = start_bot(JOB_RETRY_SECONDS="0.1")
    bot.openai.label_image(bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg, "crystals")
    bot.slack.answer_late("chat.postMessage", 2.0)  # the reply is in the channel; the bot hears its ts 2 s later
    event = bot.upload(CRYSTALS)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert job.reply_ts is None  # the click comes in that moment
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CONFIRM_ACTION, f"{job.id}:crystals", message={**reply.params, "ts": reply.response["ts"]}, channel=CHANNEL,
        user="U7"))

    (confirmed,) = bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"), timeout=20)
    assert confirmed.params["ts"] == reply.response["ts"]
    assert ":white_check_mark: Confirmed by <@U7>" in section_text(confirmed)
    assert bot.services.store.latest_feedback(job.id).verdict == "confirmed"


def test_slash_commands_answer_only_the_person_who_asked(bot: RunningBot) -> None:
    event = bot.upload(CRYSTALS, CLEAR)
    bot.wait_until_done(event)

    answers = {}
    for verb in ("help", "recent", "stats"):
        envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload(verb, channel=CHANNEL))
        answers[verb] = bot.slack.wait_for_ack(envelope)
    assert all(a["response_type"] == "ephemeral" for a in answers.values())
    assert "`/crystals recent`" in answers["help"]["text"]
    assert "<https://lab.slack.com/archives/C1/p" in answers["recent"]["text"]
    assert "10.jpeg>" in answers["recent"]["text"] and "236.jpeg>" in answers["recent"]["text"]
    assert "*2 images classified in this channel*" in answers["stats"]["text"]
    assert ":gem: crystals: 1" in answers["stats"]["text"] and ":droplet: clear: 1" in answers["stats"]["text"]


def test_after_a_restart_follow_ups_buttons_and_stats_still_work(start_bot: Callable[..., RunningBot]) -> None:
    first = start_bot()
    event = first.upload(CRYSTALS)
    (reply,) = first.wait_for_posts(event["ts"], 1)
    first.wait_until_done(event)
    first.stop()

    second = start_bot()
    second.say("and now?", thread_ts=event["ts"])
    second.wait_for_posts(event["ts"], 2)
    assert content_items(second.openai.responses_requests()[-1])[1]["type"] == "input_image"
    (job,) = second.services.store.jobs_of_message(CHANNEL, event["ts"])
    message = {**reply.params, "ts": reply.response["ts"]}
    second.slack.push_interactive(second.slack.block_actions_payload(
        CONFIRM_ACTION, f"{job.id}:clear", message=message, channel=CHANNEL))
    second.slack.wait_for(lambda: second.slack.calls_to("chat.update"))
    assert second.services.store.channel_stats(CHANNEL).confirmed == 1
