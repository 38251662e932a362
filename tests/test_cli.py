"""`python -m bot classify` and `python -m bot eval` as a lab member runs them: a subprocess
configured by environment variables, talking to the fake OpenAI server."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

from bot.config import PROJECT_ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import MARCO, SEED_BATCH_OUTPUT

PUBLISHED = {  # shared/data/README.md: the proof of concept's scores
    "clear": "0.79      0.95      0.86        20",
    "crystals": "0.93      0.68      0.79        19",
    "other": "0.92      0.55      0.69        20",
    "precipitate": "0.55      0.80      0.65        20",
    "macro avg": "0.80      0.75      0.75        79",
    "accuracy": "0.75        79",
}


def run_bot(*args: str, environ: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if "PROXY" not in key.upper() and
           not key.startswith(("OPENAI_", "SLACK_"))}
    env.update(environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL,
                          timeout=120)


@pytest.fixture
def bot(test_environ: dict[str, str], tmp_path: Path):
    return lambda *args, **extra: run_bot(*args, environ={**test_environ, **extra}, cwd=tmp_path)


def test_classify_prints_category_confidence_and_explanation(bot, fake_openai: FakeOpenAI) -> None:
    result = bot("classify", str(MARCO / "crystals/10.jpeg"), str(MARCO / "clear/236.jpeg"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("10.jpeg: clear (confidence 0.93 (logprobs))")
    assert lines[1].startswith("  ") and "clear" in lines[1]
    assert len(fake_openai.responses_requests()) == 2


def test_classify_json_prints_one_object_per_image_and_reuses_the_cache(bot, fake_openai: FakeOpenAI) -> None:
    image = str(MARCO / "other/1254.jpeg")
    first = bot("classify", "--json", image)
    second = bot("classify", "--json", image)
    (one,) = map(json.loads, first.stdout.splitlines())
    (two,) = map(json.loads, second.stdout.splitlines())
    assert one["label"] == "clear" and one["from_cache"] is False and one["input_tokens"] > 0
    assert two["from_cache"] is True and two["explanation"] == one["explanation"]
    assert len(fake_openai.responses_requests()) == 1


def test_classify_reports_a_bad_file_by_name_and_goes_on(bot, tmp_path: Path) -> None:
    page = tmp_path / "download.jpg"
    page.write_text("<!DOCTYPE html><html><body>Sign in to Slack</body></html>")
    result = bot("classify", str(page), str(MARCO / "clear/220.jpeg"))
    assert result.returncode == 1
    assert "download.jpg: ERROR download.jpg is not an image" in result.stdout
    assert "220.jpeg: clear" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_missing_api_key_is_named(bot) -> None:
    result = bot("classify", str(MARCO / "clear/220.jpeg"), OPENAI_API_KEY="")
    assert result.returncode == 2
    assert "OPENAI_API_KEY is not set" in result.stderr and "Traceback" not in result.stderr


def test_eval_writes_report_confusion_matrix_and_csv(bot, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    result = bot("eval", str(MARCO), "--out", "results", "--yes")
    assert result.returncode == 0, result.stderr
    assert "precision    recall  f1-score   support" in result.stdout
    rows = list(csv.DictReader((tmp_path / "results/results.csv").open()))
    assert len(rows) == 11  # unlabeled/ is not a category and is skipped
    assert {row["truth"] for row in rows} == {"clear", "crystals", "precipitate", "other"}
    assert {row["prediction"] for row in rows} == {"clear"}  # what the fake answers by default
    assert all(float(row["cost_usd"]) > 0 and int(row["input_tokens"]) > 0 for row in rows)
    assert "accuracy                           0.18        11" in result.stdout  # 2 of 11 are clear
    with PILImage.open(tmp_path / "results/confusion_matrix.png") as picture:
        assert picture.format == "PNG" and picture.width > 400


def test_eval_reproduces_the_published_seed_scores(bot, tmp_path: Path) -> None:
    result = bot("eval", "--batch-output", str(SEED_BATCH_OUTPUT), "--out", "seed", OPENAI_API_KEY="")
    assert result.returncode == 0, result.stderr
    for row, figures in PUBLISHED.items():
        assert any(line.split()[: len(row.split())] == row.split() and line.endswith(figures)
                   for line in result.stdout.splitlines()), f"{row}: {figures}\n{result.stdout}"
    rows = list(csv.DictReader((tmp_path / "seed/results.csv").open()))
    assert len(rows) == 79
    assert sum(row["truth"] == row["prediction"] for row in rows) == 59
    assert rows[0]["file"] == "data/marco/gsk/other/1254.jpeg" and rows[0]["confidence"] == ""


def test_eval_batch_submits_then_collects(bot, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.batches_complete = False
    submitted = bot("eval", str(MARCO), "--batch", "--yes")
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.split("Submitted batch ")[1].split()[0]
    assert fake_openai.responses_requests() == []
    upload = next(r for r in fake_openai.requests if r.path == "/v1/files")
    assert b'"custom_id": "crystals/10.jpeg"' in upload.body

    pending = bot("eval", "--collect", batch_id)
    assert f"Batch {batch_id} is in_progress" in pending.stdout

    fake_openai.batches_complete = True
    collected = bot("eval", "--collect", batch_id, "--out", "batch")
    assert collected.returncode == 0, collected.stderr
    assert "accuracy" in collected.stdout
    rows = list(csv.DictReader((tmp_path / "batch/results.csv").open()))
    assert len(rows) == 11 and rows[0]["file"] == "clear/220.jpeg"

    cached = bot("classify", "--json", str(MARCO / "crystals/10.jpeg"))
    assert json.loads(cached.stdout)["from_cache"] is True
    assert fake_openai.responses_requests() == []


def test_eval_batch_run_again_after_a_lost_answer_finds_its_batch_and_sends_none(bot, fake_openai: FakeOpenAI) -> None:
    fake_openai.batches_complete = False
    fake_openai.lose_batch_answers(1)
    lost = bot("eval", str(MARCO), "--batch", "--yes")
    assert lost.returncode == 1 and "Could not submit the batch" in lost.stderr
    (started,) = fake_openai.batches()  # OpenAI started it all the same

    again = bot("eval", str(MARCO), "--batch", "--yes")
    assert again.returncode == 0, again.stderr
    found = f"Batch {started['id']} (prompts · gpt-4.1) was started in the last 24 h for the same images"
    assert found in again.stdout
    assert len(fake_openai.batches()) == 1 and f"--collect {started['id']}" in again.stdout
    fake_openai.batches_complete = True
    assert "accuracy" in bot("eval", "--collect", started["id"], "--out", "lost").stdout


def test_collecting_an_unknown_batch_says_so(bot) -> None:
    result = bot("eval", "--collect", "batch_nope")
    assert result.returncode == 1
    assert "Could not fetch batch batch_nope: The model service rejected the request (HTTP 404)" in result.stderr
    assert "Traceback" not in result.stderr


COMBINATIONS = ["--variant", "prompts", "--variant", "prompts-seed", "--model", "gpt-4.1", "--model", "gpt-4.1-mini"]


@pytest.fixture
def project_bot(test_environ: dict[str, str]):
    """The bot run from the project folder, where prompts/ and prompts-seed/ are."""
    return lambda *args, **extra: run_bot(*args, environ={**test_environ, **extra}, cwd=PROJECT_ROOT)


def test_eval_compares_variants_and_models_side_by_side(project_bot, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.model_labels["gpt-4.1-mini"] = "precipitate"
    out = tmp_path / "compare"

    result = project_bot("eval", str(MARCO), *COMBINATIONS, "--yes", "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert "Estimated cost: $" in result.stderr and "Go on" not in result.stderr
    for combination in ("prompts · gpt-4.1", "prompts · gpt-4.1-mini", "prompts-seed · gpt-4.1",
                        "prompts-seed · gpt-4.1-mini"):
        assert combination in result.stderr  # the estimate, before anything is sent
    table = result.stdout.split("\n\n")[0].splitlines()
    assert table[0].split()[:7] == ["variant", "·", "model", "accuracy", "macro", "F1", "clear"]
    rows = {line.split("  ")[0].strip(): line.split() for line in table[1:5]}
    assert rows["prompts · gpt-4.1"][3:6] == ["0.18", "0.08", "0.18/1.00"]  # all "clear": 2 of 11
    assert rows["prompts-seed · gpt-4.1-mini"][3] == "0.27"  # all "precipitate": 3 of 11
    assert "11 images where the combinations disagree:" in result.stdout
    assert "prompts-seed · gpt-4.1-mini: precipitate" in result.stdout
    pictures = sorted(out.glob("*/confusion_matrix.png"))
    assert [p.parent.name for p in pictures] == ["prompts--gpt-4.1", "prompts--gpt-4.1-mini",
                                                 "prompts-seed--gpt-4.1", "prompts-seed--gpt-4.1-mini"]
    disagreements = list(csv.DictReader((out / "disagreements.csv").open()))
    assert len(disagreements) == 11 and disagreements[0]["prompts · gpt-4.1"] == "clear"
    bodies = fake_openai.responses_requests()
    assert len(bodies) == 44
    seed = [b for b in bodies if list(b["text"]["format"]["schema"]["properties"]) == ["label", "explanation"]]
    assert len(seed) == 22 and all(b["temperature"] == 0 for b in seed)
    assert "Add a short explanation of your choice at the end in free text." in seed[0]["input"][0]["content"][0]["text"]


def test_eval_shows_the_cost_and_does_not_start_without_an_answer(bot, fake_openai: FakeOpenAI) -> None:
    result = bot("eval", str(MARCO))
    assert result.returncode == 1
    assert "Estimated cost: $0.0" in result.stderr and "Go on? [y/N]" in result.stderr
    assert "Not started." in result.stderr
    assert fake_openai.responses_requests() == []


@pytest.mark.parametrize(("api", "endpoint"), [("responses", "/v1/responses"), ("chat", "/v1/chat/completions")])
def test_eval_batch_compares_two_variants(project_bot, fake_openai: FakeOpenAI, tmp_path: Path, api: str,
                                          endpoint: str) -> None:
    submitted = project_bot("eval", str(MARCO), "--variant", "prompts", "--variant", "prompts-seed", "--batch",
                            "--yes", "--out", str(tmp_path / "b"), OPENAI_API=api)
    assert submitted.returncode == 0, submitted.stderr
    batches = fake_openai.bodies("/v1/batches")  # the POSTs (the bot lists them first, GET)
    assert [b["endpoint"] for b in batches] == [endpoint, endpoint]
    assert [Path(b["metadata"]["variant"]).name for b in batches] == ["prompts", "prompts-seed"]
    assert "(Batch API price)" in submitted.stderr
    command = submitted.stdout.splitlines()[-1].split("python -m bot ")[1].split()
    assert command.count("--collect") == 2

    collected = project_bot(*command, "--out", str(tmp_path / "b"), OPENAI_API=api)
    assert collected.returncode == 0, collected.stderr
    assert "prompts-seed · gpt-4.1" in collected.stdout and "batch" in collected.stdout
    assert "All combinations gave the same answer on every image." in collected.stdout
    assert len(list((tmp_path / "b").glob("*/confusion_matrix.png"))) == 2
