"""Score an evaluation run: classification report, accuracy, confusion matrix, PNG and CSV writers.

Statistics come from scikit-learn, the picture from matplotlib (Agg canvas, no pyplot state).

A prediction of ERROR means the image could not be classified: it belongs to no category and
counts as wrong. scikit-learn's classification_report prints "micro avg" instead of "accuracy"
whenever a prediction lies outside ``labels``; micro-average precision then leaves the failed
images out, so the report functions here replace that row by the true accuracy over all images,
laid out exactly as scikit-learn lays out its own accuracy row.
"""

from __future__ import annotations

import csv
import re
import textwrap
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
# scikit-learn and matplotlib (about 95 MB resident) are imported where they are used, so the Slack
# bot, which imports the command line and so this module, never loads them.

ERROR = "error"
DIGITS = 2
TITLE_WIDTH = 50  # characters per title line, so long model names fit the 6-inch figure
CSV_COLUMNS = (
    "file",
    "truth",
    "prediction",
    "confidence",
    "confidence_source",
    "explanation",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "cost_usd",
)

_MICRO_ROW = re.compile(r"^(?P<heading> *micro avg) .*$", re.MULTILINE)


@dataclass(frozen=True)
class Evaluation:
    """True and predicted labels of one run, in image order; ``labels`` fixes the category order."""

    labels: tuple[str, ...]
    truths: tuple[str, ...]
    predictions: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.truths:
            raise ValueError("an evaluation needs at least one image")
        if len(self.truths) != len(self.predictions):
            raise ValueError(f"{len(self.truths)} truths but {len(self.predictions)} predictions")
        if ERROR in self.labels:
            raise ValueError(f"{ERROR!r} is reserved and cannot be a category")
        _check_known("truth", self.truths, set(self.labels))
        _check_known("prediction", self.predictions, set(self.labels) | {ERROR})

    @property
    def errors(self) -> int:
        """Number of images that could not be classified."""
        return self.predictions.count(ERROR)


def _check_known(kind: str, values: tuple[str, ...], allowed: set[str]) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown {kind} label(s): {', '.join(map(repr, unknown))}")


def accuracy(ev: Evaluation) -> tuple[float, int, int]:
    """Return (fraction correct, number correct, number of images); errors count as wrong."""
    from sklearn.metrics import accuracy_score

    correct = int(accuracy_score(ev.truths, ev.predictions, normalize=False))
    total = len(ev.truths)
    return correct / total, correct, total


def report_text(ev: Evaluation) -> str:
    """scikit-learn's classification report, always with an accuracy row over all images."""
    from sklearn.metrics import classification_report

    text = classification_report(
        ev.truths, ev.predictions, labels=list(ev.labels), digits=DIGITS, zero_division=0
    )
    return _MICRO_ROW.sub(lambda m: _accuracy_row(ev, len(m["heading"])), text)


def _accuracy_row(ev: Evaluation, width: int) -> str:
    """The accuracy row in scikit-learn's own format (blank precision and recall)."""
    fraction, _, total = accuracy(ev)
    row = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}"
    return row.format("accuracy", "", "", fraction, total, width=width, digits=DIGITS)


def report_dict(ev: Evaluation) -> dict[str, Any]:
    """scikit-learn's report as a dict: per category, "accuracy" (a float), macro and weighted avg."""
    from sklearn.metrics import classification_report

    raw = classification_report(
        ev.truths, ev.predictions, labels=list(ev.labels), zero_division=0, output_dict=True
    )
    report: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "micro avg":
            key, value = "accuracy", accuracy(ev)[0]
        report[key] = value
    return report


def confusion_labels(ev: Evaluation) -> list[str]:
    """Column labels of the confusion matrix: the categories, plus ERROR when there are errors."""
    return [*ev.labels, ERROR] if ev.errors else list(ev.labels)


def confusion(ev: Evaluation) -> list[list[int]]:
    """Confusion counts: rows = truth (``labels`` order), columns = ``confusion_labels(ev)``."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(ev.truths, ev.predictions, labels=confusion_labels(ev))
    return matrix[: len(ev.labels)].tolist()


def write_confusion_png(ev: Evaluation, path: str | PathLike[str], title: str) -> None:
    """Save a confusion-matrix heatmap: counts and row percentages, accuracy in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.array(confusion(ev))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(6, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    _annotate(ax, counts, shares)
    _label_axes(ax, ev, title)
    fig.colorbar(image, ax=ax, label="Share of true label", format="{x:.0%}")
    fig.tight_layout()
    fig.savefig(path, format="png")


def _annotate(ax: Any, counts: np.ndarray, shares: np.ndarray) -> None:
    """Counts and row shares in every cell; the diagonal (right answers) outlined in green."""
    from matplotlib.patches import Rectangle

    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if shares[row, col] > 0.5 else "black"
        weight = "bold" if row == col else "normal"
        ax.text(col, row, f"{count}\n{shares[row, col]:.0%}", ha="center", va="center", color=colour,
                fontweight=weight)
        if row == col:
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="#2ca02c", linewidth=2.5, clip_on=False))


def _label_axes(ax: Any, ev: Evaluation, title: str) -> None:
    fraction, correct, total = accuracy(ev)
    columns = confusion_labels(ev)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(ev.labels)), ev.labels)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    heading = f"{title} — accuracy {fraction:.2f} ({correct}/{total})"
    ax.set_title(textwrap.fill(heading, TITLE_WIDTH))


def write_rows_csv(rows: list[dict[str, Any]], path: str | PathLike[str], extra: tuple[str, ...] = ()) -> None:
    """Write one CSV row per image in CSV_COLUMNS order (then the `extra` columns); missing or None values
    are left blank."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS + extra, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
