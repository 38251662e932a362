"""Evaluation runs: classify a labelled folder (live or through the Batch API) and write the results.

A labelled folder holds images under `<true label>/`; folders that are not categories are skipped.
Results: the classification report (printed and report.txt), confusion_matrix.png, results.csv.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from bot.batch import BatchResult
from bot.metrics import ERROR, Evaluation, report_text, write_confusion_png, write_rows_csv
from bot.models import Call

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}


@dataclass(frozen=True)
class Outcome:
    """One image of an evaluation: its truth and the call, or why there is none."""

    file: str
    truth: str
    call: Call | None
    error: str | None = None

    @property
    def prediction(self) -> str:
        return self.call.label if self.call else ERROR


def labelled_images(directory: Path, labels: Iterable[str]) -> list[tuple[Path, str]]:
    """(path, true label) for every image file under directory/<label>/, sorted."""
    found = []
    for label in labels:
        folder = directory / label
        if folder.is_dir():
            found += [(path, label) for path in sorted(folder.rglob("*")) if path.suffix.lower() in IMAGE_SUFFIXES]
    return found


def outcomes_from_batch(results: Iterable[BatchResult]) -> list[Outcome]:
    return [Outcome(result.custom_id, result.truth, result.call, result.error) for result in results]


def with_model(outcomes: Iterable[Outcome], model: str) -> list[Outcome]:
    """The same outcomes with each call's model name set (batch output names a dated snapshot)."""
    return [replace(o, call=replace(o.call, model=model)) if o.call else o for o in outcomes]


def call_fields(call: Call) -> dict[str, object]:
    """A call as flat fields, for CSV rows and JSON lines."""
    return {"label": call.label, "confidence": call.confidence, "confidence_source": call.confidence_source,
            "observations": call.observations, "explanation": call.explanation, "model": call.model,
            "input_tokens": call.usage.input_tokens, "cached_tokens": call.usage.cached_tokens,
            "output_tokens": call.usage.output_tokens, "cost_usd": call.cost_usd, "from_cache": call.from_cache}


def outcome_row(outcome: Outcome) -> dict[str, object]:
    """One results.csv row: the call's fields, or the error in place of the explanation."""
    fields = call_fields(outcome.call) if outcome.call else {"explanation": outcome.error or ""}
    return {"file": outcome.file, "truth": outcome.truth, "prediction": outcome.prediction, **fields}


def write_results(outcomes: list[Outcome], labels: tuple[str, ...], out_dir: Path, title: str,
                  echo: Callable[[str], None] = print) -> Evaluation:
    """Print the report and write report.txt, confusion_matrix.png and results.csv into out_dir."""
    evaluation = Evaluation(labels, tuple(o.truth for o in outcomes), tuple(o.prediction for o in outcomes))
    out_dir.mkdir(parents=True, exist_ok=True)
    text = report_text(evaluation)
    (out_dir / "report.txt").write_text(text + "\n", encoding="utf-8")
    write_confusion_png(evaluation, out_dir / "confusion_matrix.png", title)
    write_rows_csv([outcome_row(o) for o in outcomes], out_dir / "results.csv")
    costs = [o.call.cost_usd for o in outcomes if o.call and o.call.cost_usd is not None]
    echo(text)
    errors = [o for o in outcomes if o.error]
    for outcome in errors:
        echo(f"not classified: {outcome.file}: {outcome.error}")
    echo(f"estimated cost: ${sum(costs):.4f} for {len(outcomes)} images")
    echo(f"wrote {out_dir / 'report.txt'}, {out_dir / 'confusion_matrix.png'}, {out_dir / 'results.csv'}")
    return evaluation
