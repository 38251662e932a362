"""A lab's own categories end to end (PROMPTS_DIR=prompts-labscores: clear, precipitate, phase separation,
skin, microcrystals, crystals; microcrystals and crystals are hits), through the real Slack and OpenAI
clients against the fakes: the schema's enum and the prompt sent, the buttons, hits in the thread and
the hits channel, a plate with two hit categories (map, summary, CSV, re-inspection), stats, export,
the Home tab's chart and `eval` in the lab's categories or in MARCO's classes."""
from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image as PILImage

import bot.slack.team as team_module
import bot.slack.workflow as workflow_module
from bot.config import PROJECT_ROOT
from bot.dashboard import DAY
from bot.prompt import load_categories
from bot.render import CONFIRM_ACTION, CORRECT_ACTION, FEEDBACK_MENU_ACTION
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import MARCO, content_items, image_bytes
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_cli import run_bot
from tests.test_home import open_home, published, text_of
from tests.test_plates_slack import (ZIP, csv_rows, make_zip, plate_members, summary_post, teach, uploads_in)
from tests.test_team import HITS, channel_posts, exported, message_updates

LAB_DIR = PROJECT_ROOT / "prompts-labscores"
LAB = load_categories(LAB_DIR)
COLOUR = {c.name: c.colour for c in LAB}
LAB_NAMES = ["clear", "precipitate", "phase separation", "skin", "microcrystals", "crystals"]
NEEDLES = ("10.jpeg", image_bytes("crystals", 10))
FILM = ("1254.jpeg", image_bytes("other", 1254))


@pytest.fixture
def lab_bot(start_bot) -> RunningBot:
    return start_bot(PROMPTS_DIR=str(LAB_DIR), HITS_CHANNEL=HITS)


def stats_text(bot: RunningBot) -> str:
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("stats", channel=CHANNEL))
    return bot.slack.wait_for_ack(envelope)["text"]


def test_single_images_get_the_lab_s_categories_buttons_reactions_and_hits(lab_bot: RunningBot) -> None:
    bot = lab_bot
    bot.openai.label_image(bot.normalised(NEEDLES[1], NEEDLES[0]).jpeg, "microcrystals")
    bot.openai.label_image(bot.normalised(FILM[1], FILM[0]).jpeg, "skin")
    event = bot.upload(NEEDLES, FILM)

    assert bot.wait_until_done(event) == {"sparkles", "scroll"}
    bot.drain()
    requests = bot.openai.responses_requests()
    assert len(requests) == 2
    for request in requests:
        assert request["text"]["format"]["schema"]["properties"]["label"]["enum"] == LAB_NAMES
        prompt = content_items(request)[0]["text"]
        assert "[clear, precipitate, phase separation, skin, microcrystals, crystals]" in prompt
        assert "phase separation: the drop has separated into two liquid phases" in prompt
        assert "Any crystal beats\neverything else" in prompt
        images = [item for item in content_items(request) if item["type"] == "input_image"]
        assert len(images) == 4  # the three MARCO examples with a category here (not "other"), then the drop
        labels = [item["text"] for item in content_items(request)
                  if item["type"] == "input_text" and item["text"].startswith("Label: ")]
        assert [label.splitlines()[0] for label in labels] == ["Label: crystals", "Label: clear", "Label: precipitate"]

    replies = {r.params["text"].split(" ")[0]: r for r in bot.thread_posts(event["ts"])}
    hit = replies["microcrystals"]
    assert section_text(hit).startswith(":sparkles: *microcrystals* · `10.jpeg`")
    button, menu = next(b for b in hit.params["blocks"] if b["type"] == "actions")["elements"]
    assert button["text"]["text"] == "Confirm microcrystals"
    assert [o["text"]["text"] for o in menu["options"]] == ["clear", "precipitate", "phase separation", "skin",
                                                            "crystals"]
    assert section_text(replies["skin"]).startswith(":scroll: *skin* · `1254.jpeg`")

    (shared,) = channel_posts(bot, HITS)  # the microcrystals call; skin is no hit
    assert section_text(shared).startswith(":sparkles: *microcrystals* · `10.jpeg` · 93% · from <@U1>")

    jobs = {j.file_name: j for j in bot.services.store.jobs_of_message(CHANNEL, event["ts"])}
    bot.slack.push_interactive(bot.slack.block_actions_payload(  # the team: that skin hides crystals
        CORRECT_ACTION, None, message={**replies["skin"].params, "ts": replies["skin"].response["ts"]},
        channel=CHANNEL, user="U7", selected_option_value=f"{jobs['1254.jpeg'].id}:crystals"))
    message_updates(bot, 1)
    bot.slack.push_interactive(bot.slack.block_actions_payload(  # and the needles are crystals, from the hits channel
        CORRECT_ACTION, None, message={**shared.params, "ts": shared.response["ts"]}, channel=HITS, user="U8",
        selected_option_value=f"{jobs['10.jpeg'].id}:crystals"))
    updates = message_updates(bot, 3)
    assert {u.params["channel"] for u in updates[1:]} == {CHANNEL, HITS}
    assert all(":pencil2: Corrected to :gem: *crystals* by <@U8>" in section_text(u) for u in updates[1:])

    text = stats_text(bot)
    assert "• :sparkles: microcrystals: 1\n• :gem: crystals: 0\n• hits (microcrystals + crystals): 1" in text
    assert ("*Hits* (microcrystals + crystals): 1 of my hits reviewed, 1 kept as hits (100%); "
            "1 more found by the team among my other calls") in text
    assert "• skin → crystals: 1" in text and "• microcrystals → crystals: 1" in text

    _, rows, _ = exported(bot, "export", user="U5")
    assert [(r["file"], r["category"], r["team_label"]) for r in rows] == [("10.jpeg", "microcrystals", "crystals"),
                                                                           ("1254.jpeg", "skin", "crystals")]


def colour_pixels(png: bytes, colour: str) -> int:
    with PILImage.open(io.BytesIO(png)) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    return int(np.all(pixels == [int(colour[i:i + 2], 16) for i in (1, 3, 5)], axis=-1).sum())


def test_a_plate_with_two_hit_categories_and_its_re_inspection(lab_bot: RunningBot) -> None:
    bot = lab_bot
    first, first_labels = plate_members({"D7": "microcrystals", "B3": "crystals", "A1": "phase separation",
                                         "C5": "skin", "E2": "precipitate"})
    again, again_labels = plate_members({"D7": "crystals", "B3": "precipitate", "A1": "microcrystals",
                                         "C5": "skin"}, offset=500)
    teach(bot, first, first_labels)
    teach(bot, again, again_labels)

    event = bot.upload(("plate42_2026-11-26.zip", make_zip(first)), **ZIP)
    assert bot.wait_until_done(event, timeout=60) == {"sparkles", "gem"}
    bot.drain()
    hits = sorted(section_text(p).splitlines()[0] for p in bot.thread_posts(event["ts"])
                  if p.params["text"].startswith(("microcrystals", "crystals")))
    assert hits == [":gem: *crystals* · `B3 · 12345_B03_1_Vis_20261126_093000.jpg`",
                    ":sparkles: *microcrystals* · `D7 · 12345_D07_1_Vis_20261126_093000.jpg`"]
    summary = summary_post(bot, event["ts"])
    text = section_text(summary)
    assert summary.params["text"] == "Plate plate42: 2 crystal hits in 96 images"
    assert (":droplet: 91 clear · :hourglass: 1 precipitate · :oil_drum: 1 phase separation · :scroll: 1 skin · "
            ":sparkles: 1 microcrystals · :gem: 1 crystals") in text
    assert "*Crystal hits (2), by well:*\n• *B3* · crystals · 93% · " in text
    assert "\n• *D7* · microcrystals · 93%" in text

    files = uploads_in(bot, event["ts"])
    for name in ("microcrystals", "crystals", "phase separation", "skin", "precipitate", "clear"):
        assert colour_pixels(files["png"].data or b"", COLOUR[name]) > 500, name
    rows = csv_rows(files["csv"])
    assert {r["file"]: r["category"] for r in rows} == first_labels
    assert files["hits"].title == "Crystal hits of plate42"  # the gallery: both hit categories' drops
    with PILImage.open(io.BytesIO(files["hits"].data or b"")) as gallery:
        assert gallery.width > 2 * 400

    (shared,) = channel_posts(bot, HITS)
    lines = section_text(shared).splitlines()
    assert lines[0] == ":sparkles: :gem: *Plate plate42*: 2 crystal hits in 96 images · from <@U1> in <#C1>"
    assert "|B3>* · crystals · 93% · " in lines[1] and "|D7>* · microcrystals · 93% · " in lines[2]
    menus = [b["accessory"] for b in shared.params["blocks"] if "accessory" in b]
    assert [(m["type"], m["action_id"], len(m["options"])) for m in menus] == [
        ("static_select", FEEDBACK_MENU_ACTION, 6)] * 2  # more than an overflow menu's 5: a select

    again_event = bot.upload(("plate42_2026-12-01.zip", make_zip(again)), **ZIP)
    assert bot.wait_until_done(again_event, timeout=60) == {"sparkles", "gem"}
    bot.drain()
    text = section_text(summary_post(bot, again_event["ts"]))
    assert ":new: *1 new hit:* *A1* microcrystals (was phase separation)" in text
    assert "*Lost crystals (1):* B3 (now precipitate)" in text
    assert "D7 microcrystals → crystals" in text and "E2 precipitate → clear" in text
    new_map = uploads_in(bot, again_event["ts"])["png"].data or b""
    assert colour_pixels(new_map, "#0072b2") > 200  # the new hit's ring
    replies = {section_text(p).split("`")[1].split(" ")[0]: section_text(p) for p in bot.thread_posts(again_event["ts"])
               if p.params["text"].startswith(("microcrystals", "crystals"))}
    assert "Crystals since *2026-11-26, day 0*: 2 inspections in a row" in replies["D7"]  # microcrystals, then crystals
    assert "new at this inspection (before: phase separation on day 0)" in replies["A1"]


def test_the_home_tab_counts_the_lab_s_categories_and_charts_them_in_their_colours(lab_bot: RunningBot,
                                                                                  monkeypatch) -> None:
    bot = lab_bot
    members, label_of = plate_members({"D7": "microcrystals", "B3": "crystals", "A1": "phase separation",
                                       "C5": "skin", "E2": "precipitate"}, wells=96)
    members = dict(list(members.items())[:60])  # rows A to E
    teach(bot, members, {name: label_of[name] for name in members})
    bot.wait_until_done(bot.upload(("plate42.zip", make_zip(members)), **ZIP), timeout=60)
    bot.drain()
    later = time.time() + 8 * DAY  # this week is a whole week in the chart by then
    for module in (workflow_module, team_module):
        monkeypatch.setattr(module, "time", SimpleNamespace(time=lambda: later))

    open_home(bot)
    (publish,) = published(bot, 1)
    text = text_of(publish.params["view"])
    assert ":oil_drum: phase separation: 0 · 1" in text and ":sparkles: microcrystals: 0 · 1" in text
    assert "• :sparkles: :gem: *Plate plate42*: 2 crystal hits in 60 images" in text
    (chart,) = [u for u in bot.slack.uploads if u.filename == "calls-per-week.png"]
    for name in LAB_NAMES:
        assert colour_pixels(chart.data or b"", COLOUR[name]) > 30, name


# --- eval ---------------------------------------------------------------------------------------------------


@pytest.fixture
def lab_eval(test_environ: dict[str, str], tmp_path: Path, make_services, fake_openai: FakeOpenAI):
    """`python -m bot eval` with PROMPTS_DIR=prompts-labscores; the fake model answers by image."""
    services = make_services()
    answers = {("crystals", 10): "microcrystals", ("crystals", 25): "crystals", ("other", 1254): "skin",
               ("other", 1401): "phase separation", ("precipitate", 200): "precipitate"}
    for (folder, number), label in answers.items():
        fake_openai.label_image(services.normalise(image_bytes(folder, number), f"{number}.jpeg").jpeg, label)
    return lambda *args: run_bot("eval", *args, "--yes", environ={**test_environ, "PROMPTS_DIR": str(LAB_DIR)},
                                 cwd=tmp_path)


def test_eval_scores_a_folder_named_by_the_lab_s_categories(lab_eval, tmp_path: Path) -> None:
    folder = tmp_path / "scored"
    for category, marco, number in [("microcrystals", "crystals", 10), ("crystals", "crystals", 25),
                                    ("phase separation", "other", 1401), ("skin", "other", 1254),
                                    ("other", "other", 9123)]:
        (folder / category).mkdir(parents=True, exist_ok=True)
        shutil.copy(MARCO / marco / f"{number}.jpeg", folder / category)

    result = lab_eval(str(folder), "--out", "lab")

    assert result.returncode == 0, result.stderr
    assert ("Not scored: the folders other are no category (with --marco, the folders are MARCO classes)"
            in result.stderr)
    rows = {" ".join(parts[:-4]): parts[-4:] for parts in map(str.split, result.stdout.splitlines()) if len(parts) >= 5}
    assert [name for name in rows if name in LAB_NAMES] == LAB_NAMES  # precision recall f1 support
    assert rows["phase separation"] == ["1.00", "1.00", "1.00", "1"] and rows["clear"][-1] == "0"
    assert "accuracy                           1.00         4" in result.stdout
    rows = list(csv.DictReader((tmp_path / "lab/results.csv").open()))
    assert [(Path(r["file"]).parent.name, r["prediction"]) for r in rows] == [  # in categories.toml's order
        ("phase separation", "phase separation"), ("skin", "skin"), ("microcrystals", "microcrystals"),
        ("crystals", "crystals")]
    assert "category" not in rows[0]


def test_eval_marco_scores_marco_folders_through_each_category_s_marco_class(lab_eval, tmp_path: Path) -> None:
    result = lab_eval(str(MARCO), "--marco", "--out", "marco")

    assert result.returncode == 0, result.stderr
    assert "accuracy                           0.64        11" in result.stdout  # 7 of 11: the rest said clear
    rows = {Path(r["file"]).name: r for r in csv.DictReader((tmp_path / "marco/results.csv").open())}
    assert (rows["10.jpeg"]["truth"], rows["10.jpeg"]["prediction"], rows["10.jpeg"]["category"]) == (
        "crystals", "crystals", "microcrystals")
    assert (rows["1401.jpeg"]["prediction"], rows["1401.jpeg"]["category"]) == ("other", "phase separation")
    assert (rows["6488.jpeg"]["prediction"], rows["6488.jpeg"]["category"]) == ("clear", "clear")


def test_variants_with_different_categories_are_compared_on_marco_classes_only(lab_eval, tmp_path: Path) -> None:
    refused = lab_eval(str(MARCO), "--variant", str(PROJECT_ROOT / "prompts"), "--variant", str(LAB_DIR))
    assert refused.returncode == 2
    assert ("The variants have different categories: compare them on MARCO-labelled images with --marco"
            in refused.stderr)

    compared = lab_eval(str(MARCO), "--marco", "--variant", str(PROJECT_ROOT / "prompts"), "--variant", str(LAB_DIR),
                        "--out", "both")
    assert compared.returncode == 0, compared.stderr
    table = {line.split("  ")[0].strip(): line.split() for line in compared.stdout.split("\n\n")[0].splitlines()[1:]}
    assert table["prompts-labscores · gpt-4.1"][3] == "0.64"
    assert table["prompts · gpt-4.1"][3] == "0.36"  # 4 of 11: the lab's labels are no default category: "clear"


def test_eval_marco_needs_every_category_to_name_its_marco_class(lab_eval, tmp_path: Path, test_environ) -> None:
    variant = tmp_path / "lab"
    shutil.copytree(LAB_DIR, variant)
    path = variant / "categories.toml"
    path.write_text(path.read_text().replace('marco = "other"\nletter = "K"', 'letter = "K"'))
    result = run_bot("eval", str(MARCO), "--marco", "--yes", environ={**test_environ, "PROMPTS_DIR": str(variant)},
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "--marco needs a MARCO class for every category: add `marco = ...` (clear, crystals, precipitate, " \
           "other) to skin in categories.toml" in result.stderr
