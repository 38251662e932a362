"""Working as a team, end to end against the fake Slack and the fake OpenAI: the monthly budget, answering
in threads only when asked, the hits channel and the CSV export (on SQLite and PostgreSQL where the store
decides)."""
from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from PIL import Image as PILImage
from slack_sdk import WebClient

from bot.budget import month_name
from bot.models import Usage
from bot.render import CONFIRM_ACTION, CORRECT_ACTION, RETRY_ACTION
from tests.fakes.slack_server import ApiCall
from tests.helpers import content_items, image_bytes
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_cli import run_bot

CRYSTALS = ("10.jpeg", image_bytes("crystals", 10))
CLEAR = ("236.jpeg", image_bytes("clear", 236))
PRECIPITATE = ("215.jpeg", image_bytes("precipitate", 215))
OTHER = ("1254.jpeg", image_bytes("other", 1254))
HITS = "CHITS"


def label_images(bot: RunningBot) -> RunningBot:
    bot.openai.label_image(bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg, "crystals")
    bot.openai.label_image(bot.normalised(PRECIPITATE[1], PRECIPITATE[0]).jpeg, "precipitate")
    return bot


def spend_elsewhere(bot: RunningBot, usd: float) -> None:
    """Model spend this month that Slack did not see (an eval run from the terminal, say)."""
    bot.services.store.record_follow_up(0, "gpt-4.1", Usage(), usd)


def channel_posts(bot: RunningBot, channel: str) -> list[ApiCall]:
    """The bot's top-level posts in a channel (not thread replies), that Slack accepted."""
    return [c for c in bot.slack.calls_to("chat.postMessage")
            if c.params["channel"] == channel and not c.params.get("thread_ts") and c.status == 200]


def message_updates(bot: RunningBot, count: int) -> list[ApiCall]:
    return bot.slack.wait_for(lambda: len(bot.slack.calls_to("chat.update")) == count and bot.slack.calls_to("chat.update"),
                              what=f"{count} messages updated")


def answered(bot: RunningBot, event: dict) -> str:
    """The text of the bot's one reply to an upload, once the upload is done."""
    bot.wait_until_done(event)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    return reply.params["text"]


# --- the monthly budget ---------------------------------------------------------------------------


def test_at_80_percent_the_channel_is_warned_once_and_at_the_budget_the_model_is_not_called(database_url,
                                                                                           start_bot) -> None:
    bot = label_images(start_bot(DATABASE_URL=database_url, MONTHLY_BUDGET_USD="1", JOB_RETRY_SECONDS="0.1"))
    spend_elsewhere(bot, 0.85)

    first = bot.upload(CRYSTALS)
    assert answered(bot, first).startswith("crystals (93%)")
    assert answered(bot, bot.upload(CLEAR)).startswith("clear")
    bot.drain()
    (warning,) = channel_posts(bot, CHANNEL)
    assert "80% of this month's model budget is spent ($0.8" in warning.params["text"]
    assert "of $1.00" in warning.params["text"] and "MONTHLY_BUDGET_USD" in warning.params["text"]
    assert len(bot.openai.responses_requests()) == 2

    spend_elsewhere(bot, 0.2)
    refused = [bot.upload(PRECIPITATE), bot.upload(OTHER)]
    for event in refused:
        text = answered(bot, event)
        assert "this month's model budget ($1.00) is spent" in text and "An admin can raise MONTHLY_BUDGET_USD" in text
        assert bot.wait_until_done(event) == {"warning"}
    cached = bot.upload(("again.jpeg", CRYSTALS[1]))
    assert answered(bot, cached).startswith("crystals (93%)")  # seen before: answered from the cache
    bot.say("why crystals?", thread_ts=first["ts"])
    (_, refusal) = bot.wait_for_posts(first["ts"], 2)
    bot.drain()

    assert "I could not answer: this month's model budget ($1.00) is spent" in refusal.params["text"]
    assert len(bot.openai.responses_requests()) == 2  # nothing reached the model once the budget was spent
    warning, spent = channel_posts(bot, CHANNEL)  # each told once, however many uploads
    assert spent.params["text"].startswith(":money_with_wings: This month's model budget ($1.00) is spent")
    retry = next(b for b in bot.thread_posts(refused[0]["ts"])[0].params["blocks"] if b["type"] == "actions")
    assert retry["elements"][0]["action_id"] == RETRY_ACTION  # once an admin raises the budget


def test_stats_show_this_months_spend_in_all_and_per_channel(start_bot) -> None:
    bot = label_images(start_bot(MONTHLY_BUDGET_USD="50"))
    bot.wait_until_done(bot.upload(CRYSTALS, CLEAR))
    spend_elsewhere(bot, 1.0)
    spent_here = sum(bot.services.store.spend_by_channel_since(0).values())

    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("stats", channel=CHANNEL))
    text = bot.slack.wait_for_ack(envelope)["text"]

    assert f"*Model spend in {month_name(time.time())}* (estimated): ${1 + spent_here:.2f} in all, " \
           f"${spent_here:.2f} in this channel; the monthly budget is $50.00 (2%)." in text
    assert f"• <#{CHANNEL}>: ${spent_here:.2f}" in text and 0 < spent_here < 0.1


def give_verdicts(bot: RunningBot) -> None:
    """Crystals and clear classified; the team corrects the crystals call twice (to other, then to
    precipitate) and confirms the clear one, with the buttons."""
    event = bot.upload(CRYSTALS, CLEAR)
    bot.wait_until_done(event)
    replies = bot.wait_for_posts(event["ts"], 2)
    jobs = {j.file_name: j for j in bot.services.store.jobs_of_message(CHANNEL, event["ts"])}
    for action, file_name, label, user in [(CORRECT_ACTION, "10.jpeg", "other", "U7"),
                                           (CORRECT_ACTION, "10.jpeg", "precipitate", "U8"),
                                           (CONFIRM_ACTION, "236.jpeg", "clear", "U7")]:
        (reply,) = [r for r in replies if r.response["ts"] == jobs[file_name].reply_ts]
        value = f"{jobs[file_name].id}:{label}"
        updated = len(bot.slack.calls_to("chat.update"))  # counted before the click: its update may come at once
        bot.slack.push_interactive(bot.slack.block_actions_payload(
            action, None if action == CORRECT_ACTION else value, message={**reply.params, "ts": reply.response["ts"]},
            channel=CHANNEL, user=user, **({"selected_option_value": value} if action == CORRECT_ACTION else {})))
        message_updates(bot, updated + 1)


def test_stats_show_the_teams_agreement_per_category_from_the_latest_verdicts(database_url, start_bot) -> None:
    bot = label_images(start_bot(DATABASE_URL=database_url))
    give_verdicts(bot)

    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("stats", channel=CHANNEL))
    text = bot.slack.wait_for_ack(envelope)["text"]

    assert "*Agreement with the team* (2 calls reviewed, 50% confirmed" in text
    assert "crystals: 1 reviewed, 0 confirmed (0%), 1 corrected" in text
    assert "clear: 1 reviewed, 1 confirmed (100%), 0 corrected" in text
    assert "• crystals → precipitate: 1" in text and "→ other" not in text  # U8's later verdict counts


def test_eval_feedback_scores_the_bot_against_the_teams_verdicts_in_the_database(database_url, start_bot,
                                                                                 test_environ, tmp_path) -> None:
    bot = label_images(start_bot(DATABASE_URL=database_url))
    give_verdicts(bot)

    result = run_bot("eval", "--feedback", "--out", "feedback", environ={
        **test_environ, "DATABASE_URL": database_url, "OPENAI_API_KEY": ""}, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "accuracy                           0.50         2" in result.stdout
    rows = list(csv.DictReader((tmp_path / "feedback/results.csv").open()))
    assert [(row["file"], row["truth"], row["prediction"]) for row in rows] == [
        (f"{CHANNEL}/10.jpeg", "precipitate", "crystals"), (f"{CHANNEL}/236.jpeg", "clear", "clear")]
    with PILImage.open(tmp_path / "feedback/confusion_matrix.png") as picture:
        assert picture.format == "PNG"
    assert (tmp_path / "feedback/report.txt").read_text().startswith(result.stdout.split("\n")[0])


def test_eval_feedback_says_when_there_is_nothing_to_score(test_environ, tmp_path) -> None:
    result = run_bot("eval", "--feedback", environ=test_environ, cwd=tmp_path)
    assert result.returncode == 1 and "has not confirmed or corrected any call yet" in result.stderr


# --- answering in threads only when asked ----------------------------------------------------------


def test_chatter_in_a_call_thread_is_left_alone_and_questions_and_mentions_are_answered(start_bot) -> None:
    bot = label_images(start_bot())
    event = bot.upload(CRYSTALS)
    bot.wait_for_posts(event["ts"], 1)

    bot.say("nice one!", thread_ts=event["ts"], user="U2")
    bot.say("let's set up an optimisation screen for this", thread_ts=event["ts"], user="U3")
    bot.say("could the edges be salt", thread_ts=event["ts"])
    bot.wait_for_posts(event["ts"], 2)
    bot.drain()
    assert len(bot.thread_posts(event["ts"])) == 2 and len(bot.openai.responses_requests()) == 2
    assert "could the edges be salt" in content_items(bot.openai.responses_requests()[-1])[-1]["text"]

    bot.say(f"thanks <@{bot.slack.bot_user_id}>, great call", thread_ts=event["ts"])
    bot.wait_for_posts(event["ts"], 3)
    bot.drain()
    assert len(bot.thread_posts(event["ts"])) == 3  # a mention is always answered


# --- the hits channel ------------------------------------------------------------------------------


def test_a_crystals_call_is_shared_in_the_hits_channel_and_feedback_in_either_place_shows_in_both(
        database_url, start_bot) -> None:
    bot = label_images(start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS))
    crystals_file = bot.slack.add_file(*CRYSTALS)
    event = bot.upload(crystals_file, bot.slack.add_file(*CLEAR))
    bot.wait_until_done(event)
    bot.drain()

    (hit,) = channel_posts(bot, HITS)  # the clear call is not a hit
    reply = next(r for r in bot.thread_posts(event["ts"]) if "crystals" in r.params["text"])
    text = section_text(hit)
    assert ":gem: *crystals* · `10.jpeg` · 93% · from <@U1> in <#C1>" in text
    (image,) = [b for b in hit.params["blocks"] if b["type"] == "image"]
    assert image["slack_file"] == {"id": crystals_file["id"]} and image["alt_text"]
    link = re.search(r"<(\S+)\|Open the thread>", text).group(1)
    permalink = WebClient(token=bot.slack.bot_token, base_url=bot.slack.api_url).chat_getPermalink(
        channel=CHANNEL, message_ts=reply.response["ts"])["permalink"]
    assert link == f"{permalink}?thread_ts={event['ts']}&cid={CHANNEL}"
    assert any(m["ts"] == reply.response["ts"] and m["thread_ts"] == event["ts"] for m in bot.slack.messages(CHANNEL))

    hit_message = {**hit.params, "ts": hit.response["ts"]}
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CONFIRM_ACTION, next(b for b in hit.params["blocks"] if b["type"] == "actions")["elements"][0]["value"],
        message=hit_message, channel=HITS, user="U7"))
    confirmed = message_updates(bot, 2)
    assert {(u.params["channel"], u.params["ts"]) for u in confirmed} == {(CHANNEL, reply.response["ts"]),
                                                                          (HITS, hit.response["ts"])}
    assert all(":white_check_mark: Confirmed by <@U7>" in section_text(u) for u in confirmed)

    (job,) = [j for j in bot.services.store.jobs_of_message(CHANNEL, event["ts"]) if j.file_name == "10.jpeg"]
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CORRECT_ACTION, None, message={**reply.params, "ts": reply.response["ts"]}, channel=CHANNEL, user="U8",
        selected_option_value=f"{job.id}:precipitate"))
    updates = message_updates(bot, 4)
    assert {u.params["channel"] for u in updates[2:]} == {CHANNEL, HITS}
    assert all(":pencil2: Corrected to :hourglass: *precipitate* by <@U8>" in section_text(u) for u in updates[2:])


def test_a_click_in_the_hits_channel_on_a_call_never_shared_there_changes_nothing(start_bot) -> None:
    bot = label_images(start_bot(HITS_CHANNEL=HITS))
    event = bot.upload(CLEAR)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    bot.wait_until_done(event)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])

    envelope = bot.slack.push_interactive(bot.slack.block_actions_payload(
        CONFIRM_ACTION, f"{job.id}:clear", message={**reply.params, "ts": reply.response["ts"]}, channel=HITS))
    bot.slack.wait_for_ack(envelope)
    bot.drain()
    assert bot.services.store.latest_feedback(job.id) is None and bot.slack.calls_to("chat.update") == []


def test_a_hit_slack_accepted_before_the_connection_dropped_is_not_posted_again(start_bot) -> None:
    bot = label_images(start_bot(HITS_CHANNEL=HITS, JOB_RETRY_SECONDS="0.1"))
    bot.slack.drop_after_accepting("chat.postMessage", times=2)  # the thread reply, then the hit
    event = bot.upload(CRYSTALS)

    bot.wait_until_done(event)
    bot.slack.wait_for(lambda: bot.slack.calls_to("conversations.history"), what="the hit looked for")
    bot.drain()
    assert len([m for m in bot.slack.messages(HITS) if m.get("user") == bot.slack.bot_user_id]) == 1
    assert len([m for m in bot.slack.messages(CHANNEL) if m.get("thread_ts") == event["ts"]
                and m.get("user") == bot.slack.bot_user_id]) == 1
    (hit_job,) = [j for j in (bot.services.store.job(n) for n in range(1, 10)) if j and j.kind == "hit"]
    assert (hit_job.state, hit_job.attempts) == ("done", 2) and hit_job.reply_ts


def test_the_hits_channel_outside_allowed_channels_is_not_told_that_the_bot_stays_quiet(start_bot) -> None:
    bot = start_bot(ALLOWED_CHANNELS=CHANNEL, HITS_CHANNEL=HITS)
    joined = {"type": "member_joined_channel", "user": "UBOT", "channel": HITS, "channel_type": "C", "inviter": "U1"}
    bot.slack.wait_for_ack(bot.slack.push_event(joined))
    bot.drain()
    assert bot.slack.calls_to("chat.postMessage") == []


# --- /crystals export --------------------------------------------------------------------------------


def exported(bot: RunningBot, text: str, user: str) -> tuple[str, list[dict[str, str]], ApiCall]:
    """Run `/crystals <text>`; the ephemeral answer, the CSV's rows and the upload's completion."""
    before = len(bot.slack.calls_to("files.completeUploadExternal"))
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload(text, channel=CHANNEL, user=user))
    answer = bot.slack.wait_for_ack(envelope)["text"]
    complete = bot.slack.wait_for(lambda: bot.slack.calls_to("files.completeUploadExternal")[before:],
                                  what="the CSV uploaded")[0]
    (shared,) = json.loads(complete.params["files"])
    rows = list(csv.DictReader(io.StringIO(bot.slack.file_content(shared["id"]).decode("utf-8"))))
    return answer, rows, complete


def test_export_sends_the_channels_calls_and_verdicts_as_csv_in_a_direct_message(database_url, start_bot) -> None:
    bot = label_images(start_bot(DATABASE_URL=database_url))
    event = bot.upload(CRYSTALS, CLEAR)
    bot.wait_until_done(event)
    elsewhere = bot.slack.add_message("C2", "", files=[bot.slack.add_file(*PRECIPITATE)])
    bot.slack.push_event(elsewhere)
    bot.wait_for_posts(elsewhere["ts"], 1)
    crystals_job = next(j for j in bot.services.store.jobs_of_message(CHANNEL, event["ts"]) if j.file_name == "10.jpeg")
    reply = next(r for r in bot.thread_posts(event["ts"]) if "crystals" in r.params["text"])
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CORRECT_ACTION, None, message={**reply.params, "ts": reply.response["ts"]}, channel=CHANNEL, user="U8",
        selected_option_value=f"{crystals_job.id}:precipitate"))
    bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"), what="the correction shown")
    bot.drain()

    answer, rows, complete = exported(bot, "export", user="U5")

    assert "CSV of this channel's calls of all time" in answer and "direct message" in answer
    assert complete.params["channel_id"] == "DU5"
    assert bot.slack.calls_to("conversations.open")[0].params["users"] == "U5"
    (dm,) = bot.slack.messages("DU5")
    assert dm["text"] == f"The 2 classified images in <#{CHANNEL}> of all time, with the team's latest verdicts."
    assert [(r["file"], r["category"], r["uploader"]) for r in rows] == [("10.jpeg", "crystals", "U1"),
                                                                         ("236.jpeg", "clear", "U1")]
    crystals = rows[0]
    verdict = (crystals["team_verdict"], crystals["team_label"], crystals["verdict_by"])
    assert verdict == ("corrected", "precipitate", "U8")
    assert crystals["confidence"] == "0.930" and crystals["explanation"]
    reply_ts = reply.response["ts"].replace(".", "")
    assert crystals["thread_link"] == f"https://lab.slack.com/archives/{CHANNEL}/p{reply_ts}?thread_ts={event['ts']}&cid={CHANNEL}"
    assert rows[1]["team_verdict"] == "" and rows[1]["time_utc"].startswith("20")

    later, none, _ = exported(bot, "export from 2099-01-01", user="U5")
    assert "since 2099-01-01" in later and none == []


def test_an_export_with_a_bad_date_says_how_to_write_one_and_sends_nothing(start_bot) -> None:
    bot = start_bot()
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("export from yesterday", channel=CHANNEL))
    answer = bot.slack.wait_for_ack(envelope)
    bot.drain()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == ("`yesterday` is not a date like 2026-11-30. "
                              "Write `/crystals export [from YYYY-MM-DD] [to YYYY-MM-DD]`.")
    assert bot.slack.calls_to("conversations.open") == [] and bot.slack.calls_to("files.getUploadURLExternal") == []


def test_the_hits_channel_may_be_given_by_name(fake_slack, start_bot) -> None:
    fake_slack.add_channel("general", "C0GENERAL")
    fake_slack.add_channel("crystal-hits", "C0HITS", private=True)
    bot = label_images(start_bot(HITS_CHANNEL="#crystal-hits"))
    bot.wait_until_done(bot.upload(CRYSTALS))
    bot.drain()
    (hit,) = channel_posts(bot, "C0HITS")
    assert "*crystals*" in section_text(hit)


def test_a_hits_channel_name_the_bot_cannot_see_is_logged_and_the_calls_still_made(start_bot, caplog) -> None:
    bot = label_images(start_bot(HITS_CHANNEL="nowhere"))
    event = bot.upload(CRYSTALS)
    assert answered(bot, event).startswith("crystals")
    bot.drain()
    assert "there is no channel #nowhere that the bot can see" in caplog.text
    assert [c for c in bot.slack.calls_to("chat.postMessage") if not c.params.get("thread_ts")] == []
