"""Evaluation runs: classify a labelled folder (live or through the Batch API) and write the results.

A labelled folder holds images under `<true label>/`; folders that are not categories are skipped.
With `--marco`, the folders are MARCO's classes (clear, crystals, precipitate, other) and each call
counts as its category's MARCO class (`marco` in categories.toml): a lab's own set of categories is
scored on MARCO-labelled images, and variants with different categories are compared on them.
Results: the classification report (printed and report.txt), confusion_matrix.png, results.csv.
Several runs (prompt variant x model) on the same images are compared side by side: one table
(comparison.txt, comparison.csv) and the images on which their answers differ (disagreements.csv).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from bot.batch import BatchResult
from bot.categories import MARCO_CLASSES, Category
from bot.metrics import ERROR, Evaluation, report_dict, report_text, write_confusion_png, write_rows_csv
from bot.models import Call

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}


@dataclass(frozen=True)
class Outcome:
    """One image of an evaluation: its truth and the call, or why there is none."""

    file: str
    truth: str
    call: Call | None
    error: str | None = None
    category: str = ""  # the lab's own category, when the call's label is its MARCO class (--marco)

    @property
    def prediction(self) -> str:
        return self.call.label if self.call else ERROR


def marco_classes(categories: Sequence[Category]) -> dict[str, str]:
    """Each category's MARCO class; ValueError naming the categories without one."""
    missing = [c.name for c in categories if c.marco is None]
    if missing:
        raise ValueError("--marco needs a MARCO class for every category: add `marco = ...` "
                         f"({', '.join(MARCO_CLASSES)}) to {', '.join(missing)} in categories.toml")
    return {c.name: str(c.marco) for c in categories}


def as_marco(outcomes: Iterable[Outcome], classes: Mapping[str, str]) -> list[Outcome]:
    """The outcomes with each call's label replaced by its MARCO class (the lab's label kept apart)."""
    return [replace(o, call=replace(o.call, label=classes[o.call.label]), category=o.call.label) if o.call else o
            for o in outcomes]


def other_folders(directory: Path, labels: Iterable[str]) -> list[str]:
    """The folders of an evaluation folder that are no label (their images are not scored)."""
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and p.name not in set(labels)) \
        if directory.is_dir() else []


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
    return {"file": outcome.file, "truth": outcome.truth, "prediction": outcome.prediction, **fields,
            "category": outcome.category}


def write_results(outcomes: list[Outcome], labels: tuple[str, ...], out_dir: Path, title: str,
                  echo: Callable[[str], None] = print) -> Evaluation:
    """Print the report and write report.txt, confusion_matrix.png and results.csv into out_dir."""
    evaluation = Evaluation(labels, tuple(o.truth for o in outcomes), tuple(o.prediction for o in outcomes))
    out_dir.mkdir(parents=True, exist_ok=True)
    text = report_text(evaluation)
    (out_dir / "report.txt").write_text(text + "\n", encoding="utf-8")
    write_confusion_png(evaluation, out_dir / "confusion_matrix.png", title)
    extra = ("category",) if any(o.category for o in outcomes) else ()  # --marco: the lab's own label too
    write_rows_csv([outcome_row(o) for o in outcomes], out_dir / "results.csv", extra)
    costs = [o.call.cost_usd for o in outcomes if o.call and o.call.cost_usd is not None]
    echo(text)
    errors = [o for o in outcomes if o.error]
    for outcome in errors:
        echo(f"not classified: {outcome.file}: {outcome.error}")
    echo(f"estimated cost: ${sum(costs):.4f} for {len(outcomes)} images")
    echo(f"wrote {out_dir / 'report.txt'}, {out_dir / 'confusion_matrix.png'}, {out_dir / 'results.csv'}")
    return evaluation


@dataclass(frozen=True)
class Run:
    """One combination of an evaluation: a prompt variant and a model, scored on the images."""

    variant: str
    model: str
    outcomes: tuple[Outcome, ...]
    seconds: float | None = None  # wall time; None for a batch

    @property
    def name(self) -> str:
        return f"{self.variant} · {self.model}"

    @property
    def folder(self) -> str:
        return re.sub(r"[^\w.-]+", "_", f"{self.variant}--{self.model}")


def summary(run: Run, labels: tuple[str, ...]) -> dict[str, object]:
    """One comparison row: scores, per-category precision and recall, tokens, cost and time."""
    outcomes = run.outcomes
    report = report_dict(Evaluation(labels, tuple(o.truth for o in outcomes), tuple(o.prediction for o in outcomes)))
    calls = [o.call for o in outcomes if o.call]
    costs = [call.cost_usd for call in calls if call.cost_usd is not None and not call.from_cache]
    row: dict[str, object] = {"variant": run.variant, "model": run.model, "images": len(outcomes),
                              "accuracy": report["accuracy"], "macro_f1": report["macro avg"]["f1-score"]}
    for label in labels:
        row[f"{label}_precision"] = report[label]["precision"]
        row[f"{label}_recall"] = report[label]["recall"]
    row.update(input_tokens=sum(c.usage.input_tokens for c in calls),
               cached_tokens=sum(c.usage.cached_tokens for c in calls),
               cost_usd=sum(costs) if len(costs) == len([c for c in calls if not c.from_cache]) else None,
               from_cache=sum(c.from_cache for c in calls), errors=len(outcomes) - len(calls), seconds=run.seconds)
    return row


def comparison_text(runs: Sequence[Run], labels: tuple[str, ...]) -> str:
    """The runs side by side, one line each; precision/recall per category as P/R."""
    name_width = max(len(run.name) for run in runs)
    head = (f"{'variant · model':<{name_width}}  accuracy  macro F1  "
            + "  ".join(f"{label + ' P/R':>15}" for label in labels)
            + "    input tok   cached tok      cost     time")
    lines = [head]
    for run in runs:
        row = summary(run, labels)
        cost = "unknown" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}"
        seconds = "batch" if run.seconds is None else f"{run.seconds:.1f} s"
        lines.append(f"{run.name:<{name_width}}  {row['accuracy']:>8.2f}  {row['macro_f1']:>8.2f}  "
                     + "  ".join(f"{row[f'{l}_precision']:>7.2f}/{row[f'{l}_recall']:<7.2f}" for l in labels)
                     + f"  {row['input_tokens']:>11,}  {row['cached_tokens']:>11,}  {cost:>8}  {seconds:>7}")
    notes = [f"{run.name}: {row['from_cache']} answers from the cache (no cost), {row['errors']} not classified"
             for run in runs if (row := summary(run, labels))["from_cache"] or row["errors"]]
    return "\n".join(lines + notes)


def disagreements(runs: Sequence[Run]) -> list[tuple[str, str, list[Outcome]]]:
    """(file, truth, each run's outcome) for every image the runs do not all answer alike."""
    found = []
    for per_image in zip(*(run.outcomes for run in runs)):
        if len({outcome.prediction for outcome in per_image}) > 1:
            found.append((per_image[0].file, per_image[0].truth, list(per_image)))
    return found


def disagreement_text(runs: Sequence[Run]) -> str:
    differing = disagreements(runs)
    if not differing:
        return "All combinations gave the same answer on every image."
    lines = [f"{len(differing)} images where the combinations disagree:"]
    for file, truth, outcomes in differing:
        lines.append(f"  {file} (truth: {truth})")
        lines += [f"    {run.name}: {outcome.prediction}"
                  + (f" — {outcome.call.explanation}" if outcome.call else f" — {outcome.error}")
                  for run, outcome in zip(runs, outcomes)]
    return "\n".join(lines)


def write_comparison(runs: Sequence[Run], labels: tuple[str, ...], out_dir: Path,
                     echo: Callable[[str], None] = print) -> None:
    """Each run's results in its own folder, then the table and the disagreements (printed and written)."""
    for run in runs:
        write_results(list(run.outcomes), labels, out_dir / run.folder, run.name, echo=lambda _: None)
    table, differing = comparison_text(runs, labels), disagreement_text(runs)
    (out_dir / "comparison.txt").write_text(f"{table}\n\n{differing}\n", encoding="utf-8")
    rows = [summary(run, labels) for run in runs]
    with open(out_dir / "comparison.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out_dir / "disagreements.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "truth", *(run.name for run in runs)])
        writer.writerows([file, truth, *(o.prediction for o in outcomes)] for file, truth, outcomes in disagreements(runs))
    echo(table)
    echo("")
    echo(differing)
    echo(f"\nwrote {out_dir / 'comparison.txt'}, comparison.csv, disagreements.csv and, per combination, "
         f"report.txt, confusion_matrix.png and results.csv in {', '.join(run.folder for run in runs)}")
