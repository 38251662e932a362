"""The App Home dashboard, end to end against the fake Slack and the fake OpenAI: opening the Home tab
publishes the counts, the team's agreement, the spend and the weekly chart (a PNG shared with the person
and shown by file id, the current week so far included, drawn at most once a day); opening it again
within a minute publishes nothing more."""
from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from PIL import Image as PILImage

import bot.slack.intake as intake_module
import bot.slack.team as team_module
import bot.slack.workflow as workflow_module
from bot.dashboard import DAY, monday
from tests.fakes.slack_server import ApiCall
from tests.slack_harness import CHANNEL, RunningBot
from tests.test_team import CRYSTALS, PRECIPITATE, give_verdicts, label_images

USER = "U5"


def open_home(bot: RunningBot, user: str = USER) -> None:
    bot.slack.push_event({"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home",
                          "event_ts": f"{time.time():.6f}"})


def published(bot: RunningBot, count: int) -> list:
    return bot.slack.wait_for(lambda: len(ok := [c for c in bot.slack.calls_to("views.publish") if c.status == 200
                                                 and c.response.get("ok")]) == count and ok,
                              what=f"{count} home views published")


def text_of(view: dict) -> str:
    return "\n".join(block["text"]["text"] for block in view["blocks"] if block["type"] == "section")


def test_opening_the_home_tab_a_week_later_publishes_counts_agreement_spend_and_the_chart(database_url, start_bot,
                                                                                         monkeypatch) -> None:
    bot = label_images(start_bot(DATABASE_URL=database_url))
    give_verdicts(bot)  # crystals (corrected to precipitate) and clear (confirmed), this week
    later = time.time() + 8 * DAY  # this week is a whole week in the chart by then
    for module in (workflow_module, team_module):
        monkeypatch.setattr(module, "time", SimpleNamespace(time=lambda: later))

    open_home(bot)
    (publish,) = published(bot, 1)

    assert publish.params["user_id"] == USER
    view = publish.params["view"]
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    text = text_of(view)
    assert "*Calls in the last 7 days · 30 days* (0 · 2)" in text
    assert ":gem: crystals: 0 · 1" in text and ":droplet: clear: 0 · 1" in text
    assert f"|10.jpeg> in <#{CHANNEL}>" in text and f"https://lab.slack.com/archives/{CHANNEL}/p" in text
    assert "*Agreement with the team* (2 calls reviewed, 50% confirmed" in text
    assert "crystals: 1 reviewed, 0 confirmed (0%), 1 corrected" in text and "• crystals → precipitate: 1" in text
    assert "*Model spend in" in text and "in this channel" not in text

    (image,) = [block for block in view["blocks"] if block["type"] == "image"]
    (chart,) = [u for u in bot.slack.uploads if u.filename == "calls-per-week.png"]
    assert image["slack_file"] == {"id": chart.file_id} and image["alt_text"]
    assert chart.channel == f"D{USER}"  # shared with the person, so the image block may show it
    with PILImage.open(io.BytesIO(chart.data)) as picture:
        assert picture.format == "PNG" and picture.width >= 600
        assert len(picture.convert("RGB").getcolors(1 << 16)) > 10  # bars, not a blank picture


def test_calls_made_today_show_on_the_chart_and_opening_again_within_a_minute_publishes_once(start_bot) -> None:
    bot = label_images(start_bot())
    bot.wait_until_done(bot.upload(CRYSTALS))

    open_home(bot)
    open_home(bot)
    (publish,) = published(bot, 1)
    bot.drain()
    assert len(bot.slack.calls_to("views.publish")) == 1
    view = publish.params["view"]
    assert "*Calls in the last 7 days · 30 days* (1 · 1)" in text_of(view)
    assert "No call has been confirmed or corrected yet" in text_of(view)
    (image,) = [block for block in view["blocks"] if block["type"] == "image"]  # the week so far, from day one
    (chart,) = bot.slack.uploads
    assert image["slack_file"] == {"id": chart.file_id} and chart.channel == f"D{USER}"
    with PILImage.open(io.BytesIO(chart.data)) as picture:
        assert len(picture.convert("RGB").getcolors(1 << 16)) > 10

    open_home(bot, "U6")  # someone else: their own tab, and the chart shared with them too
    assert published(bot, 2)[1].params["user_id"] == "U6"
    assert [upload.channel for upload in bot.slack.uploads] == [f"D{USER}", "DU6"]


def monday_noon_in_two_weeks() -> float:
    """A moment whose day (UTC) stays the same for minutes: the calls made now are before it."""
    day = monday(time.time()) + timedelta(weeks=2)
    return datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp()


def chart_ids(publish: ApiCall) -> list[str]:
    return [block["slack_file"]["id"] for block in publish.params["view"]["blocks"] if block["type"] == "image"]


def test_the_chart_counts_the_calls_up_to_the_days_first_look_and_takes_in_later_ones_the_next_day(
        start_bot, monkeypatch) -> None:
    bot = label_images(start_bot())
    bot.wait_until_done(bot.upload(CRYSTALS))
    first_look = time.time()
    chart_clock, minute_clock = SimpleNamespace(time=lambda: first_look), SimpleNamespace(time=lambda: first_look)
    monkeypatch.setattr(team_module, "time", chart_clock)
    monkeypatch.setattr(intake_module, "time", minute_clock)

    open_home(bot)
    (first,) = published(bot, 1)
    (chart,) = bot.slack.uploads
    bot.wait_until_done(bot.upload(PRECIPITATE))  # a call after the day's first look
    minute_clock.time = lambda: first_look + 61  # a minute on, the same day
    open_home(bot)
    second = published(bot, 2)[1]
    assert "*Calls in the last 7 days · 30 days* (2 · 2)" in text_of(second.params["view"])  # up to date
    assert chart_ids(second) == chart_ids(first) == [chart.file_id] and len(bot.slack.uploads) == 1

    chart_clock.time = minute_clock.time = lambda: first_look + DAY  # the next day: both calls on the chart
    open_home(bot)
    third = published(bot, 3)[2]
    (_, redrawn) = bot.slack.uploads
    assert chart_ids(third) == [redrawn.file_id] and redrawn.data != chart.data and redrawn.channel == f"D{USER}"


def test_a_chart_drawn_today_is_drawn_again_at_once_when_its_person_leaves_a_channel(start_bot,
                                                                                     monkeypatch) -> None:
    bot = label_images(start_bot())
    bot.wait_until_done(bot.upload(CRYSTALS))
    bot.wait_until_done(bot.upload(PRECIPITATE, channel="C2"))
    minute_clock = SimpleNamespace(time=time.time)
    monkeypatch.setattr(intake_module, "time", minute_clock)

    open_home(bot)
    published(bot, 1)
    (chart,) = bot.slack.uploads
    bot.slack.wait_for_ack(bot.slack.push_event(bot.slack.leave(USER, "C2")))
    bot.drain()
    minute_clock.time = lambda: time.time() + 61
    open_home(bot)
    again = published(bot, 2)[1]
    (_, redrawn) = bot.slack.uploads  # the calls of C2 are no longer theirs to see, on the chart either
    assert chart_ids(again) == [redrawn.file_id] and redrawn.data != chart.data
    assert "*Calls in the last 7 days · 30 days* (1 · 1)" in text_of(again.params["view"])


def test_the_chart_is_not_uploaded_again_after_a_restart_and_a_deleted_chart_is_replaced(start_bot,
                                                                                      monkeypatch) -> None:
    bot = label_images(start_bot())
    give_verdicts(bot)
    later = iter(monday_noon_in_two_weeks() + 61 * n for n in range(100))  # each opening a minute apart
    clock = SimpleNamespace(time=lambda: next(later))
    monkeypatch.setattr(workflow_module, "time", clock)
    monkeypatch.setattr(team_module, "time", clock)
    monkeypatch.setattr(intake_module, "time", clock)

    open_home(bot)
    published(bot, 1)
    bot.stop()
    bot = start_bot()  # the same database
    open_home(bot)
    (again,) = published(bot, 2)[1:]
    (chart,) = bot.slack.uploads  # shown again by the id the database kept
    assert [b["slack_file"]["id"] for b in again.params["view"]["blocks"] if b["type"] == "image"] == [chart.file_id]

    bot.slack.delete_file(chart.file_id)  # someone deleted it from their DM with the bot
    open_home(bot)
    (without,) = published(bot, 3)[2:]
    assert not [b for b in without.params["view"]["blocks"] if b["type"] == "image"]
    assert "*Calls in the last 7 days" in text_of(without.params["view"])
    open_home(bot)
    (renewed,) = published(bot, 4)[3:]
    (new_chart,) = bot.slack.uploads
    assert new_chart.file_id != chart.file_id
    assert [b["slack_file"]["id"] for b in renewed.params["view"]["blocks"] if b["type"] == "image"] == [
        new_chart.file_id]
