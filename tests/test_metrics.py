"""Tests for bot.metrics, anchored on the proof of concept's published gpt-4.1 results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from bot.metrics import (
    CSV_COLUMNS,
    ERROR,
    Evaluation,
    accuracy,
    confusion,
    confusion_labels,
    report_dict,
    report_text,
    write_confusion_png,
    write_rows_csv,
)

SEED = Path(__file__).parent / "data" / "seed-gpt41-batch-output.jsonl"
LABELS = ("clear", "crystals", "other", "precipitate")

# The published table: precision, recall, f1, support.
PUBLISHED = {
    "clear": (0.79, 0.95, 0.86, 20),
    "crystals": (0.93, 0.68, 0.79, 19),
    "other": (0.92, 0.55, 0.69, 20),
    "precipitate": (0.55, 0.80, 0.65, 20),
    "macro avg": (0.80, 0.75, 0.75, 79),
}


def _seed_pair(line: str) -> tuple[str, str]:
    """(truth, prediction) from one Batch API output line."""
    record = json.loads(line)
    truth = record["custom_id"].split("/")[-2]
    answer = record["response"]["body"]["output"][0]["content"][0]["text"]
    return truth, json.loads(answer)["label"]


@pytest.fixture(scope="module")
def seed() -> Evaluation:
    pairs = [_seed_pair(line) for line in SEED.read_text().splitlines() if line.strip()]
    truths, predictions = zip(*pairs)
    return Evaluation(LABELS, truths, predictions)


@pytest.fixture
def small() -> Evaluation:
    """6 images; one could not be classified."""
    return Evaluation(
        labels=("clear", "crystals"),
        truths=("clear", "clear", "clear", "crystals", "crystals", "crystals"),
        predictions=("clear", "clear", "crystals", "crystals", "clear", ERROR),
    )


# --- the published seed results ---------------------------------------------------------------


def test_seed_accuracy(seed: Evaluation) -> None:
    assert accuracy(seed) == pytest.approx((59 / 79, 59, 79))


def test_seed_report_dict_matches_published_table(seed: Evaluation) -> None:
    report = report_dict(seed)
    for name, (precision, recall, f1, support) in PUBLISHED.items():
        row = report[name]
        assert (round(row["precision"], 2), round(row["recall"], 2), round(row["f1-score"], 2)) == (
            precision,
            recall,
            f1,
        ), name
        assert row["support"] == support
    assert round(report["accuracy"], 2) == 0.75
    assert list(report) == [*LABELS, "accuracy", "macro avg", "weighted avg"]


def test_seed_report_text_matches_published_table(seed: Evaluation) -> None:
    lines = [line.split() for line in report_text(seed).splitlines()]
    for name, (precision, recall, f1, support) in PUBLISHED.items():
        expected = [*name.split(), f"{precision:.2f}", f"{recall:.2f}", f"{f1:.2f}", str(support)]
        assert expected in lines, name
    assert ["accuracy", "0.75", "79"] in lines
    assert not any(line[:1] == ["micro"] for line in lines)


def test_seed_confusion_diagonal_is_correct_count(seed: Evaluation) -> None:
    matrix = confusion(seed)
    assert confusion_labels(seed) == list(LABELS)
    assert [sum(row) for row in matrix] == [20, 19, 20, 20]
    assert sum(matrix[i][i] for i in range(len(LABELS))) == 59


# --- hand-made cases --------------------------------------------------------------------------


def test_confusion_known_matrix() -> None:
    ev = Evaluation(("a", "b", "c"), ("a", "a", "b", "c", "c", "c"), ("a", "b", "b", "c", "a", "c"))
    assert confusion(ev) == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert accuracy(ev) == pytest.approx((4 / 6, 4, 6))


def test_errors_count_as_wrong_and_get_a_column(small: Evaluation) -> None:
    assert accuracy(small) == pytest.approx((3 / 6, 3, 6))
    assert confusion_labels(small) == ["clear", "crystals", ERROR]
    assert confusion(small) == [[2, 1, 0], [1, 1, 1]]


def test_errors_lower_recall_but_are_no_report_row(small: Evaluation) -> None:
    report = report_dict(small)
    assert ERROR not in report and "micro avg" not in report
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["crystals"]["recall"] == pytest.approx(1 / 3)
    assert report["crystals"]["support"] == 3
    assert report["macro avg"]["support"] == 6


def test_errors_report_text_keeps_sklearn_layout(small: Evaluation) -> None:
    text = report_text(small)
    assert "micro avg" not in text and ERROR not in text
    no_errors = Evaluation(small.labels, small.truths, small.predictions[:-1] + ("clear",))
    accuracy_line = next(line for line in text.splitlines() if "accuracy" in line)
    reference_line = next(line for line in report_text(no_errors).splitlines() if "accuracy" in line)
    assert accuracy_line == reference_line.replace("0.33", "0.50")
    assert accuracy_line.split() == ["accuracy", "0.50", "6"]


def test_unknown_labels_are_rejected() -> None:
    with pytest.raises(ValueError, match="prediction"):
        Evaluation(("a", "b"), ("a",), ("z",))
    with pytest.raises(ValueError, match="truth"):
        Evaluation(("a", "b"), ("z",), ("a",))
    with pytest.raises(ValueError):
        Evaluation(("a", "b"), ("a", "b"), ("a",))


# --- writers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["seed", "small"])
def test_confusion_png_is_valid(case: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    ev = request.getfixturevalue(case)
    path = tmp_path / "confusion.png"
    write_confusion_png(ev, path, "gpt-4.1")
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 500 <= width <= 800 and 400 <= height <= 650


def test_rows_csv_header_order_and_rows(tmp_path: Path) -> None:
    rows = [
        {"truth": "clear", "file": "a.jpeg", "prediction": "clear", "confidence": 0.9, "extra": 1},
        {"file": "b.jpeg", "truth": "other", "prediction": ERROR, "explanation": None},
    ]
    path = tmp_path / "rows.csv"
    write_rows_csv(rows, path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        written = list(reader)
    assert [row["file"] for row in written] == ["a.jpeg", "b.jpeg"]
    assert written[0]["confidence"] == "0.9" and written[0]["cost_usd"] == ""
    assert written[1]["prediction"] == ERROR and written[1]["explanation"] == ""
