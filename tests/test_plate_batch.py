"""bot.plate_batch: whether an upload asks for the Batch API, batches cut to size, the progress line while
queued, and what an ended batch answered for each image (calls at the batch price, or why not)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.batch import BatchOutput, batch_key
from bot.models import Usage
from bot.plate_batch import MAX_BATCH_BYTES, batch_answers, batch_requested, chunks, queued_text, without_batch_word
from bot.pricing import load_price_table
from bot.prompt import load_categories
from tests.helpers import SEED_BATCH_OUTPUT

PRICES = load_price_table(Path(__file__).resolve().parent.parent / "bot" / "prices.toml")
LABELS = [c.name for c in load_categories(Path(__file__).resolve().parent.parent / "prompts")]


@pytest.mark.parametrize(("text", "asked"), [("plate42 batch", True), ("Batch: plate42", True), ("BATCH", True),
                                             ("plate42", False), ("batches of plates", False), ("batch-7", False),
                                             ("mybatch", False), ("", False)])
def test_the_word_batch_asks_for_the_batch_api(text: str, asked: bool) -> None:
    assert batch_requested(text) is asked


def test_a_batch_key_names_the_model_the_prompt_and_each_request_with_its_image() -> None:
    entries = {"7": "ab" * 32, "8": "cd" * 32}
    key = batch_key("gpt-4.1", "fp1", entries)
    assert key == batch_key("gpt-4.1", "fp1", dict(reversed(entries.items()))) and len(key) == 32  # any order
    assert len({key, batch_key("gpt-4.1-mini", "fp1", entries), batch_key("gpt-4.1", "fp2", entries),
                batch_key("gpt-4.1", "fp1", {"7": "ab" * 32}),
                batch_key("gpt-4.1", "fp1", {"7": "cd" * 32, "8": "ab" * 32})}) == 5


def test_the_word_is_left_out_of_the_plate_name() -> None:
    assert without_batch_word("plate42 batch") == "plate42"
    assert without_batch_word("batch  plate7 day 3") == "plate7 day 3"


def test_batches_are_cut_below_the_size_limit_keeping_every_line_in_order() -> None:
    lines = [(n, "x" * 40) for n in range(10)]  # 41 bytes each with the line break
    cut = list(chunks(iter(lines), max_bytes=100))
    assert [[job_id for job_id, _ in chunk] for chunk in cut] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert list(chunks([(1, "y" * 500)], max_bytes=100)) == [[(1, "y" * 500)]]  # a long line still goes alone
    assert list(chunks(iter(lines))) == [lines] and MAX_BATCH_BYTES < 200 * 1024 * 1024


def test_the_progress_line_says_queued_at_openai_and_since_when() -> None:
    text = queued_text("<plate42>", 0, 96, 96, 1764149520.0)
    assert text == ("Plate &lt;plate42&gt;: 96 images queued at OpenAI (Batch API, half price) since "
                    "<!date^1764149520^{date_short_pretty} at {time}|2025-11-26 09:32 UTC>. The results come "
                    "within 24 h; I post them here.")
    assert queued_text("p", 3, 96, 93, 0.0).startswith("Plate p: 3 of 96 classified · 93 images queued")


def seed_line(custom_id: str) -> dict:
    """A line of a real Batch API output file (gpt-4.1, Responses API), answering `custom_id`."""
    line = json.loads(SEED_BATCH_OUTPUT.read_text(encoding="utf-8").splitlines()[0])
    return {**line, "custom_id": custom_id}


def test_each_image_gets_its_call_at_the_batch_price_or_why_not() -> None:
    failed_line = {"id": "batch_req_2", "custom_id": "12", "response": {"status_code": 400, "request_id": "r", "body": {
        "error": {"message": "Invalid image.", "type": "invalid_request_error", "param": None, "code": None}}},
        "error": None}
    expired_line = {"id": "batch_req_3", "custom_id": "13", "response": None, "error": {
        "code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}
    output = BatchOutput("expired", json.dumps(seed_line("11")), "", "\n".join(map(json.dumps, [failed_line, expired_line])))

    answers = batch_answers(output, [11, 12, 13, 14], "gpt-4.1", LABELS, PRICES, None)

    call = answers[11].call
    assert call is not None and call.label == "other" and call.model == "gpt-4.1" and answers[11].error is None
    usage = seed_line("11")["response"]["body"]["usage"]
    full = PRICES.cost("gpt-4.1-2025-04-14", Usage(usage["input_tokens"], usage["input_tokens_details"]["cached_tokens"],
                                                   usage["output_tokens"]))
    assert call.cost_usd == pytest.approx(full / 2)
    assert answers[12] == answers[12].__class__(None, "OpenAI's batch could not answer it: Invalid image.")
    assert answers[13].error == ("OpenAI's batch could not answer it: This request could not be executed before the "
                                 "completion window expired.")
    assert answers[14].error == "OpenAI's batch expired (24 h) before this image was answered."


@pytest.mark.parametrize(("status", "failure", "reason"), [
    ("failed", "The input file has an invalid line.", "OpenAI refused the batch: The input file has an invalid line."),
    ("cancelled", None, "OpenAI's batch was cancelled before this image was answered."),
    ("completed", None, "OpenAI's batch returned no answer for this image."),
])
def test_an_image_a_batch_ended_without_says_why(status: str, failure: str | None, reason: str) -> None:
    assert batch_answers(BatchOutput(status, None, "", None, failure), [5], "gpt-4.1", LABELS, PRICES, None)[5].error == reason
