"""A plate once this month's model budget is spent, end to end through the fake Slack and the fake OpenAI:
no image reaches the model (nor the Batch API), each well is "not classified" with the budget's words
and Retry failed wells, the channel is told once; images seen before are still answered from the cache."""
from __future__ import annotations

from typing import Callable

import pytest

from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_plate_batch_slack import batches_created
from tests.test_plates_retry_slack import first_wells, retry_value
from tests.test_plates_slack import ZIP, make_zip, summary_post, teach
from tests.test_team import channel_posts, spend_elsewhere


@pytest.mark.parametrize("batch", [False, True], ids=["direct", "batch api"])
def test_a_plate_past_the_budget_calls_no_model_and_says_why_in_each_well(
        start_bot: Callable[..., RunningBot], batch: bool) -> None:
    bot = start_bot(MONTHLY_BUDGET_USD="1", PLATE_BATCH=str(batch).lower(), PLATE_BATCH_POLL_SECONDS="0.2")
    members, label_of = first_wells(4, {"A2": "crystals"})
    teach(bot, members, label_of)
    seen = next(iter(members))
    bot.wait_until_done(bot.upload((seen, members[seen])))  # seen before the budget ran out: cached
    requests = len(bot.openai.responses_requests())
    spend_elsewhere(bot, 1.0)

    event = bot.upload(("plate42.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)
    bot.drain()

    summary = summary_post(bot, event["ts"])
    assert summary.params["text"] == "Plate plate42: 0 crystal hits in 4 images · 3 not classified"
    text = section_text(summary)
    assert "this month's model budget ($1.00) is spent" in text and "could not be read" not in text.lower()
    assert retry_value(summary)  # Retry failed wells, for once an admin has raised the budget
    assert len(bot.openai.responses_requests()) == requests and batches_created(bot) == []
    (spent,) = [p for p in channel_posts(bot, CHANNEL) if "is spent" in p.params["text"]]
    assert spent.params["text"].startswith(":money_with_wings: This month's model budget ($1.00) is spent")
