"""bot.render for team features: a call shared in the hits channel, this month's spend, budget notices."""
from __future__ import annotations

from dataclasses import replace

from bot.budget import BudgetState
from bot.models import Feedback, MonthSpend
from bot.render import (CONFIRM_ACTION, budget_notice, budget_spent_reason, hit_message, shows_in_slack,
                        spend_text, stats_message)
from bot.models import ChannelStats
from tests.test_render import CALL, all_text, categories, job, of_type  # noqa: F401 (fixture)

LINK = "https://lab.slack.com/archives/C1/p1700000001000000?thread_ts=1700000000.000100&cid=C1"


def test_a_hit_shows_the_image_the_call_the_uploader_and_links_the_thread(categories):
    message = hit_message(job(file_name="A1.png"), CALL, categories, None, LINK)
    text = all_text(message.blocks)
    assert ":gem: *crystals* · `A1.png` · 87% · from <@U9> in <#C1>" in text and CALL.explanation in text
    assert f"<{LINK}|Open the thread>" in text
    (image,) = of_type(message.blocks, "image")
    assert image == {"type": "image", "slack_file": {"id": "F1"}, "alt_text": "crystals: A1.png"}
    (actions,) = of_type(message.blocks, "actions")
    assert actions["elements"][0]["action_id"] == CONFIRM_ACTION and actions["elements"][0]["value"] == "42:crystals"
    assert message.text.startswith("crystals (87%) for A1.png from <@U9>")


def test_a_hit_shows_the_teams_verdict(categories):
    message = hit_message(job(), CALL, categories, Feedback("U5", "corrected", "precipitate"), LINK)
    assert ":pencil2: Corrected to :hourglass: *precipitate* by <@U5>" in all_text(message.blocks)


def test_only_images_slack_can_show_get_an_image_block(categories):
    assert [shows_in_slack(name) for name in ("a.PNG", "a.jpeg", "a.jpg", "a.gif", "a.tif", "a.bmp", "a.webp")] == \
        [True, True, True, True, False, False, False]
    assert of_type(hit_message(job(file_name="plate.tif"), CALL, categories, None, LINK).blocks, "image") == []


def test_a_hit_cannot_ping_or_link_through_the_model_or_the_file_name(categories):
    call = replace(CALL, explanation="<!channel> see <http://evil|here>")
    text = all_text(hit_message(job(file_name="<!here>.png"), call, categories, None, LINK).blocks)
    assert "<!channel>" not in text and "<!here>" not in text and "<http://evil" not in text


def test_spend_in_all_in_this_channel_against_the_budget_and_per_channel():
    spend = MonthSpend("2026-11", 12.5, {"C2": 2.0, "C1": 10.0}, 50.0)
    text = spend_text(spend, "C1")
    assert text.startswith("*Model spend in 2026-11* (estimated): $12.50 in all, $10.00 in this channel; "
                           "the monthly budget is $50.00 (25%).")
    assert text.endswith("\n• <#C1>: $10.00\n• <#C2>: $2.00")
    assert "budget" not in spend_text(replace(spend, budget_usd=None), "C3")
    assert "$0.00 in this channel" in spend_text(spend, "C3")


def test_stats_show_the_spend_even_before_any_image(categories):
    text = stats_message(ChannelStats({}, 0, 0, 0), categories, MonthSpend("2026-11", 0.0, {}, None), "C1").text
    assert text == "No images have been classified in this channel yet.\n" \
                   "*Model spend in 2026-11* (estimated): $0.00 in all, $0.00 in this channel."


def test_budget_messages_say_what_happens_and_who_can_change_it():
    warning = budget_notice(BudgetState.WARNING, 8.4, 10.0).text
    assert "80% of this month's model budget is spent ($8.40 of $10.00)" in warning
    spent = budget_notice(BudgetState.SPENT, 10.2, 10.0).text
    assert "budget ($10.00) is spent" in spent and "still answered" in spent
    reason = budget_spent_reason(10.0)
    assert all("An admin can raise MONTHLY_BUDGET_USD" in text for text in (warning, spent, reason))


def test_stats_show_the_agreement_per_category_and_what_calls_were_corrected_to(categories):
    from bot.agreement import agreement
    from tests.test_agreement import reviewed

    verdicts = agreement([reviewed("crystals", "crystals"), reviewed("crystals", "precipitate"),
                          reviewed("clear", "clear")], [c.name for c in categories])
    message = stats_message(ChannelStats({"crystals": 2, "clear": 1}, 0, 2, 1), categories, None, "C1", verdicts)
    section = message.blocks[1]["text"]["text"]
    assert section.startswith("*Agreement with the team* (3 calls reviewed, 67% confirmed")
    assert "crystals: 2 reviewed, 1 confirmed (50%), 1 corrected" in section
    assert "clear: 1 reviewed, 1 confirmed (100%), 0 corrected" in section and "precipitate: 0" not in section
    assert "• crystals → precipitate: 1" in section and section in message.text


def test_stats_keep_the_corrections_table_short(categories):
    from bot.agreement import Agreement, CategoryAgreement

    corrections = tuple((f"said{i}", f"right{i}", 1) for i in range(20))
    verdicts = Agreement((CategoryAgreement("crystals", 20, 0),), corrections)
    section = stats_message(ChannelStats({"crystals": 20}, 0, 0, 20), categories, None, "C1", verdicts).blocks[1]
    assert "said7 → right7" in section["text"]["text"] and "said8" not in section["text"]["text"]
    assert "… and 12 more kinds of correction" in section["text"]["text"]


def test_with_two_hit_categories_stats_count_the_hits_and_the_agreement_keeps_a_hit_across_them():
    from bot.agreement import agreement
    from bot.prompt import load_categories
    from tests.test_agreement import reviewed
    from tests.test_render import CATEGORIES_FILE

    lab = load_categories(CATEGORIES_FILE.parent.parent / "prompts-labscores")
    verdicts = agreement([reviewed("microcrystals", "crystals"), reviewed("crystals", "crystals"),
                          reviewed("crystals", "precipitate"), reviewed("skin", "microcrystals"),
                          reviewed("clear", "clear")], [c.name for c in lab])
    stats = ChannelStats({"microcrystals": 2, "crystals": 3, "clear": 4}, 0, 2, 3)
    text = stats_message(stats, lab, None, "C1", verdicts).text
    assert "• :sparkles: microcrystals: 2\n• :gem: crystals: 3\n• hits (microcrystals + crystals): 5" in text
    assert ("*Hits* (microcrystals + crystals): 3 of my hits reviewed, 2 kept as hits (67%); "
            "1 more found by the team among my other calls") in text
    default = stats_message(stats, categories_of_marco(), None, "C1", verdicts).text
    assert "hits (" not in default and "*Hits*" not in default  # one hit category: its own line says it


def categories_of_marco():
    from bot.prompt import load_categories
    from tests.test_render import CATEGORIES_FILE

    return load_categories(CATEGORIES_FILE.parent)
