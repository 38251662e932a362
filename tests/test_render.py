"""bot.render: the Slack text and Block Kit blocks for calls, failures, help, recent calls and stats."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.models import Call, Usage
from bot.prompt import Category, load_categories
from bot.render import (
    CONFIRM_ACTION,
    CORRECT_ACTION,
    FEEDBACK_MENU_ACTION,
    RecentCall,
    RecentPlate,
    answer_message,
    call_message,
    failure_message,
    feedback_menu,
    help_message,
    parse_feedback_value,
    parse_id,
    RETRY_ACTION,
    permalink,
    recent_message,
    recent_plate_line,
    stats_message,
)
from bot.models import ChannelStats, Feedback, Job

CATEGORIES_FILE = Path(__file__).resolve().parent.parent / "prompts" / "categories.toml"
CALL = Call(label="crystals", confidence=0.87, confidence_source="logprobs", observations="Sharp faceted edges.",
            explanation="Faceted, birefringent objects are crystals.", model="gpt-4.1",
            usage=Usage(4119, 1752, 44), cost_usd=0.005962, id=7)


@pytest.fixture(scope="module")
def categories() -> tuple[Category, ...]:
    return load_categories(CATEGORIES_FILE.parent)


def job(job_id: int = 42, state: str = "done", file_name: str = "drop.png", call_id: int | None = 7) -> Job:
    return Job(id=job_id, kind="image", attempts=1, channel="C1", message_ts="1700000000.000100", thread_ts="1700000000.000100",
               file_id="F1", file_name=file_name, user_id="U9", state=state, error=None, call_id=call_id,
               reply_ts=None)


def of_type(blocks, kind: str) -> list[dict]:
    return [block for block in blocks if block["type"] == kind]


def all_text(blocks) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [element["text"] for element in block.get("elements", []) if element.get("type") == "mrkdwn"]
    return "\n".join(parts)


def test_call_message_shows_label_file_confidence_and_explanation(categories):
    message = call_message(42, "plate3_A1.tif", CALL, categories)
    section = of_type(message.blocks, "section")[0]["text"]["text"]
    assert ":gem:" in section and "*crystals*" in section and "plate3_A1.tif" in section
    assert "87%" in section and "token probabilities" in section
    assert CALL.explanation in section
    assert "Sharp faceted edges." in all_text(message.blocks)


def test_call_message_has_confirm_button_and_a_menu_of_the_other_categories(categories):
    actions = of_type(call_message(42, "a.png", CALL, categories).blocks, "actions")
    assert len(actions) == 1
    button, menu = actions[0]["elements"]
    assert (button["type"], button["action_id"], button["value"]) == ("button", CONFIRM_ACTION, "42:crystals")
    assert "crystals" in button["text"]["text"]
    assert (menu["type"], menu["action_id"]) == ("static_select", CORRECT_ACTION)
    assert [o["value"] for o in menu["options"]] == ["42:clear", "42:precipitate", "42:other"]
    assert [o["text"]["text"] for o in menu["options"]] == ["clear", "precipitate", "other"]


def test_footer_gives_model_cost_and_tokens(categories):
    footer = of_type(call_message(42, "a.png", CALL, categories).blocks, "context")[-1]["elements"][0]["text"]
    assert "gpt-4.1" in footer and "$0.0060" in footer and "4,119" in footer and "1,752" in footer


def test_unknown_cost_says_so(categories):
    footer = all_text(call_message(42, "a.png", replace(CALL, cost_usd=None), categories).blocks)
    assert "cost unknown" in footer


def test_a_cached_call_says_it_came_from_the_cache(categories):
    footer = of_type(call_message(42, "a.png", replace(CALL, from_cache=True), categories).blocks,
                     "context")[-1]["elements"][0]["text"]
    assert "gpt-4.1" in footer and "cache" in footer and "$" not in footer


def test_confidence_sources_are_named(categories):
    model_own = all_text(call_message(1, "a.png", replace(CALL, confidence_source="model"), categories).blocks)
    assert "87% (the model's own estimate)" in model_own
    none = call_message(1, "a.png", replace(CALL, confidence=None, confidence_source="none"), categories)
    assert "unknown" in of_type(none.blocks, "section")[0]["text"]["text"]


def test_feedback_shows_who_confirmed_or_corrected(categories):
    confirmed = all_text(call_message(42, "a.png", CALL, categories, Feedback("U5", "confirmed", "crystals")).blocks)
    assert "Confirmed by <@U5>" in confirmed
    corrected = all_text(call_message(42, "a.png", CALL, categories, Feedback("U6", "corrected", "precipitate")).blocks)
    assert "Corrected to :hourglass: *precipitate* by <@U6>" in corrected
    assert "<@" not in all_text(call_message(42, "a.png", CALL, categories).blocks)


def test_text_fallback_names_the_call(categories):
    text = call_message(42, "a.png", CALL, categories).text
    assert "crystals" in text and "87%" in text and "a.png" in text and CALL.explanation in text


def test_a_long_explanation_is_clipped_within_slack_limits(categories):
    long = replace(CALL, explanation="word " * 1000, observations="seen " * 1000)
    message = call_message(42, "a.png", long, categories)
    for block in message.blocks:
        texts = [block["text"]["text"]] if "text" in block else []
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
        assert all(len(text) <= 3000 for text in texts)
    assert of_type(message.blocks, "section")[0]["text"]["text"].endswith("…")
    assert len(message.text) <= 3900
    assert of_type(message.blocks, "actions")  # the controls survive the clipping


def test_failure_message(categories):
    message = failure_message("scan.pdf", "scan.pdf is not an image (it looks like a PDF document)")
    assert "scan.pdf" in message.text and "PDF document" in message.text
    assert message.blocks[0]["text"]["text"] == message.text
    assert len(message.blocks) == 1  # no Retry: the same file would fail the same way


def test_failure_message_with_a_retry_button_names_the_job():
    message = failure_message("drop.jpg", "The model service failed (HTTP 500)", retry_job_id=7)
    (button,) = message.blocks[1]["elements"]
    assert (button["action_id"], button["value"], button["text"]["text"]) == (RETRY_ACTION, "7", "Retry")


def test_help_message_names_the_command_and_the_categories(categories):
    text = help_message("/crystals", categories).text
    assert "`/crystals recent`" in text and "`/crystals stats`" in text
    assert text.startswith("*Find the Crystals* classifies crystallization-drop images into *clear*, *crystals*, "
                           "*precipitate* or *other*.\n")
    lab = help_message("/crystals", load_categories(CATEGORIES_FILE.parent.parent / "prompts-labscores")).text
    assert "into *clear*, *precipitate*, *phase separation*, *skin*, *microcrystals* or *crystals*.\n" in lab


def test_recent_message_lists_calls_and_failures(categories):
    items = [RecentCall(job(42, file_name="a.png"), CALL, "https://lab.slack.com/archives/C1/p1"),
             RecentCall(job(43, state="failed", file_name="b.tif", call_id=None), None,
                        "https://lab.slack.com/archives/C1/p2")]
    text = recent_message(items, categories).text
    lines = text.splitlines()
    assert ":gem: *crystals* (87%) <https://lab.slack.com/archives/C1/p1|a.png>" in lines[1]
    assert "2023-11-14 22:13 UTC" in lines[1] and "<@U9>" in lines[1]
    assert ":warning: failed <https://lab.slack.com/archives/C1/p2|b.tif>" in lines[2]


def test_recent_message_when_empty(categories):
    assert "No images" in recent_message([], categories).text


def test_stats_message_counts_and_agreement(categories):
    stats = ChannelStats(calls_by_label={"crystals": 3, "clear": 1}, failed=2, confirmed=3, corrected=1)
    text = stats_message(stats, categories).text
    assert "*4 images classified in this channel* (2 could not be)" in text
    assert ":gem: crystals: 3" in text and ":droplet: clear: 1" in text and "precipitate: 0" in text
    assert "3 confirmed, 1 corrected: the team agreed with 75% of the calls it reviewed" in text


def test_stats_message_without_feedback_has_no_agreement(categories):
    text = stats_message(ChannelStats({"other": 2}, 0, 0, 0), categories).text
    assert "0 confirmed, 0 corrected." in text and "agreed" not in text and "could not be" not in text
    assert "No images" in stats_message(ChannelStats({}, 0, 0, 0), categories).text


def test_parse_feedback_value_takes_only_a_job_id_and_a_known_label():
    labels = ("clear", "crystals", "precipitate", "other")
    assert parse_feedback_value("42:precipitate", labels) == (42, "precipitate")
    for forged in ("x:clear", "42:<!channel>", "42", "", "-1:clear", "4 2:clear", "42:Clear"):
        assert parse_feedback_value(forged, labels) is None


def test_parse_job_id():
    assert parse_id("17") == 17
    assert [parse_id(value) for value in ("", "x", "-3", "1.5", "１７")] == [None] * 5


def test_permalink():
    assert permalink("https://lab.slack.com/", "C1", "1700000000.000100") == \
        "https://lab.slack.com/archives/C1/p1700000000000100"
    assert permalink("https://lab.slack.com", "C1", "1700000000.000100", "1699999999.000200") == \
        "https://lab.slack.com/archives/C1/p1700000000000100?thread_ts=1699999999.000200&cid=C1"
    assert permalink("https://lab.slack.com", "C1", "1700000000.000100", "1700000000.000100") == \
        "https://lab.slack.com/archives/C1/p1700000000000100"


def test_model_text_and_file_names_cannot_ping_or_link(categories):
    sneaky = replace(CALL, explanation="Crystals! <!channel> see <https://evil.example|here> & more",
                     observations="<@U123> look")
    message = call_message(1, "a`b<x>.png", sneaky, categories)
    text = all_text(message.blocks) + message.text
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt;" in text and "&amp; more" in text
    assert "`a'b&lt;x&gt;.png`" in text
    assert "&lt;!here&gt;" in answer_message("<!here> done").text


def test_a_call_whose_category_was_removed_still_renders(categories):
    message = call_message(1, "old.png", replace(CALL, label="skin"), categories)
    assert "*skin*" in all_text(message.blocks)


def test_a_menu_of_more_than_five_choices_is_a_select_as_slack_allows_at_most_five_in_an_overflow(categories):
    lab = load_categories(CATEGORIES_FILE.parent.parent / "prompts-labscores")
    assert feedback_menu(4, "crystals", categories)["type"] == "overflow"  # Confirm + 3 corrections
    menu = feedback_menu(4, "crystals", lab)
    assert (menu["type"], menu["action_id"], menu["placeholder"]["text"]) == (
        "static_select", FEEDBACK_MENU_ACTION, "Confirm or correct…")
    assert [o["value"] for o in menu["options"]] == ["4:crystals", "4:clear", "4:precipitate", "4:phase separation",
                                                     "4:skin", "4:microcrystals"]


def test_a_recent_plate_counts_every_hit_category_and_shows_the_emoji_of_those_found(categories):
    from bot.models import Inspection

    lab = load_categories(CATEGORIES_FILE.parent.parent / "prompts-labscores")
    inspection = Inspection(id=1, channel="C1", plate="plate42", plate_name="plate42", message_ts="1700000000.000100",
                            thread_ts="1700000000.000100", source="plate42.zip", user_id="U1", images=96, skipped={},
                            progress_ts=None, uploaded=True, map_file_id=None, created_at=0.0, finished_at=1.0)
    plate = RecentPlate(inspection, {"microcrystals": 2, "crystals": 1, "clear": 93}, "https://l/1")
    assert recent_plate_line(plate, lab).startswith("• :sparkles: :gem: *Plate plate42*: 3 crystal hits in 96 images")
    assert recent_plate_line(plate, categories).startswith("• :gem: *Plate plate42*: 1 crystal hit in 96 images")
    none = RecentPlate(inspection, {"clear": 96}, "https://l/1")
    assert recent_plate_line(none, lab).startswith("• :test_tube: *Plate plate42*: 0 crystal hits")
