"""Plates through OpenAI's Batch API, end to end through the fake Slack and the fake OpenAI with the real
clients: queued at OpenAI (the progress message says since when), polled by a job queued again, finished
as any plate (hit replies, summary, map, CSV, hits channel, reactions), priced at the batch rate; a
restart mid-batch goes on polling the same batch; lines the batch failed are not classified, with Retry."""
from __future__ import annotations

import json
import re
from typing import Callable

import pytest

from bot.plates.retry import RETRY_WELLS_ACTION
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_plates_retry_slack import click, first_wells, hit_replies, retry_value, updates_of
from tests.test_plates_slack import ZIP, csv_rows, make_zip, progress_posts, summary_post, teach, uploads_in
from tests.test_team import HITS, channel_posts

QUEUED = re.compile(r"^Plate plate42: (\d+) images queued at OpenAI \(Batch API, half price\) since "
                    r"<!date\^(\d+)\^\{date_short_pretty\} at \{time\}\|[-0-9: ]+UTC>\. The results come within 24 h; "
                    r"I post them here\.$")


def batches_created(bot: RunningBot) -> list[dict]:
    return bot.openai.bodies("/v1/batches")


def batch_polls(bot: RunningBot) -> int:
    return sum(1 for r in bot.openai.requests if r.method == "GET" and r.path.startswith("/v1/batches/"))


def queued_progress(bot: RunningBot, thread_ts: str) -> re.Match:
    (progress,) = bot.slack.wait_for(lambda: progress_posts(bot, thread_ts), 30, what="the progress message")
    return bot.slack.wait_for(lambda: next((m for u in updates_of(bot, progress)
                                            if (m := QUEUED.match(u.params["text"]))), None), 30,
                              what="the progress message saying the plate is queued at OpenAI")


def test_a_plate_with_batch_in_its_message_goes_through_the_batch_api_at_half_price(
        database_url: str, start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS, PLATE_BATCH_POLL_SECONDS="0.2")
    bot.openai.batches_complete = False
    members, label_of = first_wells(12, {"A3": "crystals", "A7": "precipitate"})
    teach(bot, members, label_of)

    zipped = bot.slack.add_file("plate42_2026-11-26.zip", make_zip(members), pending_scan=True, **ZIP)
    event = bot.upload(zipped, text="plate42 batch")  # a zip Slack had not scanned yet: known for a zip later

    queued = queued_progress(bot, event["ts"])
    assert queued.group(1) == "12"
    bot.openai.wait_for(lambda: batch_polls(bot) >= 3, 30)  # polled again and again, the job queued each time
    (created,) = batches_created(bot)
    assert created["completion_window"] == "24h" and created["endpoint"] == "/v1/responses"
    assert created["metadata"]["plate"] == "plate42"
    lines = [json.loads(line) for line in bot.openai.file_bytes(created["input_file_id"]).decode().splitlines()]
    assert len(lines) == 12 and all(line["url"] == "/v1/responses" for line in lines)
    assert bot.openai.responses_requests() == [] and hit_replies(bot, event["ts"]) == []
    assert "eyes" in bot.slack.reactions(CHANNEL, event["ts"])

    bot.openai.batches_complete = True

    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    assert bot.openai.responses_requests() == []  # every call came from the batch
    (hit,) = hit_replies(bot, event["ts"])
    assert "`A3 · " in section_text(hit)
    summary = summary_post(bot, event["ts"])
    assert summary.params["text"] == "Plate plate42: 1 crystal hit in 12 images"
    (progress,) = progress_posts(bot, event["ts"])
    assert updates_of(bot, progress)[-1].params["text"] == "Plate plate42: 12 of 12 classified · done"
    rows = csv_rows(uploads_in(bot, event["ts"])["csv"])
    assert {r["file"]: r["category"] for r in rows} == label_of
    assert len(channel_posts(bot, HITS)) == 1
    store, prices = bot.services.store, bot.services.prices
    inspection = store.thread_inspection(CHANNEL, event["ts"])
    calls = [store.call(j.call_id) for j in store.inspection_jobs(inspection.id)]
    assert all(c.cost_usd == pytest.approx(prices.cost(c.model, c.usage, batch=True)) and c.cost_usd > 0 for c in calls)
    assert store.spend_since(0) == pytest.approx(sum(prices.cost(c.model, c.usage) for c in calls) / 2)
    assert store.open_jobs() == 0


def test_a_restart_mid_batch_goes_on_polling_the_same_batch(database_url: str,
                                                          start_bot: Callable[..., RunningBot]) -> None:
    settings = {"DATABASE_URL": database_url, "PLATE_BATCH": "true", "PLATE_BATCH_POLL_SECONDS": "0.2"}
    first = start_bot(**settings)
    first.openai.batches_complete = False
    members, label_of = first_wells(6, {"A2": "crystals"})
    teach(first, members, label_of)
    event = first.upload(("plate42.zip", make_zip(members)), **ZIP)
    queued_progress(first, event["ts"])
    first.stop()

    first.openai.batches_complete = True
    second = start_bot(**settings)

    assert second.wait_until_done(event, timeout=60) == {"gem"}
    second.drain()
    assert len(batches_created(second)) == 1 and second.openai.responses_requests() == []
    assert summary_post(second, event["ts"]).params["text"] == "Plate plate42: 1 crystal hit in 6 images"
    assert len(hit_replies(second, event["ts"])) == 1


def test_a_batch_whose_answer_was_lost_is_found_at_openai_and_not_sent_again(
        start_bot: Callable[..., RunningBot], caplog: pytest.LogCaptureFixture) -> None:
    bot = start_bot(PLATE_BATCH_POLL_SECONDS="0.2", OPENAI_MAX_RETRIES="3", JOB_RETRY_SECONDS="0.2")
    members, label_of = first_wells(6, {"A2": "crystals"})
    teach(bot, members, label_of)
    bot.openai.lose_batch_answers(1)  # OpenAI starts the batch; the bot never hears back

    event = bot.upload(("plate42.zip", make_zip(members)), text="plate42 batch", **ZIP)

    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    (batch,) = bot.openai.batches()  # one batch, billed once: not posted again by the client or the job
    assert [b["metadata"]["key"] for b in batches_created(bot)] == [batch["metadata"]["key"]]
    assert f"batch {batch['id']} was sent before but not recorded" in caplog.text
    assert bot.openai.responses_requests() == []
    assert summary_post(bot, event["ts"]).params["text"] == "Plate plate42: 1 crystal hit in 6 images"
    assert len(hit_replies(bot, event["ts"])) == 1


def test_images_a_batch_failed_or_that_expired_are_not_classified_and_retried_directly(
        start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(PLATE_BATCH_POLL_SECONDS="0.2")
    members = {f"{well}.jpg": data for well, data in zip(
        ["A1", "A2", "A3", "A4", "A5", "A6"], first_wells(6, {})[0].values())}
    teach(bot, members, {"A1.jpg": "clear", "A2.jpg": "crystals", "A3.jpg": "crystals", "A4.jpg": "clear",
                         "A5.jpg": "other", "A6.jpg": "crystals"})
    bot.openai.fail_in_batches(bot.normalised(members["A3.jpg"], "A3.jpg").jpeg, 500)
    bot.openai.batch_expire_after = 4  # A5 and A6 expire unanswered

    event = bot.upload(*members.items(), text="plate7 batch")  # loose images named by well

    assert bot.wait_until_done(event, timeout=60) == {"gem", "warning"}
    bot.drain()
    summary = summary_post(bot, event["ts"])
    text = section_text(summary)
    assert summary.params["text"] == "Plate plate7: 1 crystal hit in 6 images · 3 not classified"
    assert ("• A3: OpenAI's batch could not answer it: The server had an error while processing your request. "
            "Sorry about that!") in text
    assert ("• A5, A6: OpenAI's batch could not answer it: This request could not be executed before the completion "
            "window expired.") in text
    assert bot.openai.responses_requests() == []

    bot.openai.batch_expire_after = None
    click(bot, summary, RETRY_WELLS_ACTION, retry_value(summary))
    bot.slack.wait_for(lambda: bot.slack.reactions(CHANNEL, event["ts"]) == {"gem"}, 60, what=":warning: gone")
    bot.drain()
    assert len(bot.openai.responses_requests()) == 3 and len(batches_created(bot)) == 1  # retried directly
    assert updates_of(bot, summary)[-1].params["text"] == "Plate plate7: 3 crystal hits in 6 images"
    assert len(hit_replies(bot, event["ts"])) == 3
