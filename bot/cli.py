"""The commands: `python -m bot [socket|http|classify|eval]`. Run with --help for the details."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import openai
from tqdm import tqdm

from bot.answer import typical_output_tokens
from bot.batch import batch_key, batch_line, fetch_batch_output, find_batch, read_batch_output, submit_batch
from bot.classifier import Classifier, ModelError, describe_api_error
from bot.config import ConfigError, Settings, load_settings
from bot.categories import MARCO_CLASSES, Category
from bot.evaluation import (Outcome, Run, as_marco, call_fields, labelled_images, marco_classes, other_folders,
                            outcomes_from_batch, with_model, write_comparison, write_results)
from bot.images import ImageError
from bot.models import Image
from bot.pricing import estimated_usage, load_price_table
from bot.prompt import PromptError, load_categories
from bot.services import Services, build_services
from bot.redact import redact_url
from bot.store import StoreError, copy_database, open_store

log = logging.getLogger("bot")
BATCH_WINDOW_SECONDS = 24 * 3600.0  # eval --batch looks this far back for a batch of the same images


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bot", description="Find the Crystals: classify crystallization-drop "
                                  "images (clear, crystals, precipitate, other) in Slack or from the terminal.")
    commands = top.add_subparsers(dest="command")
    commands.add_parser("socket", help="run the Slack bot over Socket Mode (the default)")
    commands.add_parser("http", help="serve Slack's HTTP requests on $PORT with gunicorn")
    commands.add_parser("migrate", help="bring the database (DATABASE_URL) to the current schema")
    copy = commands.add_parser("copy-db", help="copy a database into an empty one, e.g. SQLite into PostgreSQL")
    copy.add_argument("source", help="e.g. sqlite:///crystals.db")
    copy.add_argument("target", help="e.g. postgresql://user:password@host:5432/db")
    classify = commands.add_parser("classify", help="classify image files and print the calls")
    classify.add_argument("images", nargs="+", type=Path)
    classify.add_argument("--json", action="store_true", help="print one JSON object per image")
    evaluate = commands.add_parser("eval", help="score the bot on a folder of images sorted into <label>/ folders; "
                                   "several --variant and --model options are compared side by side")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("directory", nargs="?", type=Path,
                        help="folder with a subfolder per category (clear/, crystals/, ...)")
    source.add_argument("--collect", metavar="BATCH_ID", action="append",
                        help="collect and score batches submitted with --batch (repeat to compare several)")
    source.add_argument("--batch-output", metavar="FILE", type=Path, help="score an existing Batch API output file")
    source.add_argument("--feedback", action="store_true",
                        help="score the bot's calls in Slack against the team's verdicts in the database")
    evaluate.add_argument("--variant", metavar="PROMPTS_DIR", type=Path, action="append",
                          help="a prompts folder to score (repeatable; default PROMPTS_DIR)")
    evaluate.add_argument("--model", action="append", help="a model to score (repeatable; default OPENAI_MODEL)")
    evaluate.add_argument("--marco", action="store_true",
                          help="the subfolders are MARCO classes (clear, crystals, precipitate, other): each call "
                               "counts as its category's `marco` class (categories.toml)")
    evaluate.add_argument("--yes", action="store_true", help="start without asking about the estimated cost")
    evaluate.add_argument("--batch", action="store_true", help="submit through the Batch API (half price, <24 h)")
    evaluate.add_argument("--out", type=Path, default=Path("eval-out"), help="folder for the results (eval-out)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command or "socket"
    needs = {"socket": ("model", "socket"), "http": ("model", "http"), "classify": ("model",), "migrate": (),
             "copy-db": (), "eval": () if getattr(args, "batch_output", None) or getattr(args, "feedback", False) else ("model",)}[command]
    try:
        settings = load_settings(*needs)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if command in {"migrate", "copy-db"}:
        return database_command(settings, args)
    if command in {"socket", "http"}:
        from bot.slack.server import serve  # Slack libraries load only for the bot

        return serve(settings, http=command == "http")
    try:
        if getattr(args, "batch_output", None):
            return score_batch_output(settings, args.batch_output, args.out, marco=args.marco)
        if getattr(args, "feedback", False):
            if args.marco:
                print("--feedback scores the team's verdicts in the lab's own categories: leave out --marco",
                      file=sys.stderr)
                return 2
            return score_feedback(settings, args.out)
        services = build_services(settings)
    except PromptError as error:
        print(f"Prompt files problem: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        return classify_command(services, args) if command == "classify" else eval_command(services, args)
    finally:
        services.close()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx2", "httpx", "openai", "urllib3"):  # a line per HTTP request is noise at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def database_command(settings: Settings, args: argparse.Namespace) -> int:
    """`migrate` (opening a store applies the migrations, under a lock) or `copy-db SRC DST`."""
    try:
        if args.command == "migrate":
            store = open_store(settings.database_url, wait_seconds=settings.database_wait_seconds)
            print(f"{redact_url(settings.database_url)} is at schema version {store.schema_version}")
            store.close()
            return 0
        source, target = (open_store(url, wait_seconds=settings.database_wait_seconds)
                          for url in (args.source, args.target))
    except (ValueError, StoreError) as error:
        print(f"Could not open the database: {error}", file=sys.stderr)
        return 2
    try:
        copied = copy_database(source, target)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        source.close()
        target.close()
    print("Copied " + ", ".join(f"{count} {table}" for table, count in copied.items())
          + f" into {redact_url(args.target)}")
    return 0


def classify_path(services: Services, path: Path, truth: str = "") -> Outcome:
    try:
        _, call = services.classify_bytes(path.read_bytes(), path.name)
    except (ImageError, ModelError) as error:
        return Outcome(str(path), truth, None, str(error))
    except OSError as error:
        return Outcome(str(path), truth, None, f"{path} cannot be read: {error.strerror}")
    return Outcome(str(path), truth, call)


def classify_all(services: Services, items: Sequence[tuple[Path, str]]) -> Iterator[Outcome]:
    """Outcomes in input order, classified concurrently, with a progress bar for long runs."""
    with ThreadPoolExecutor(services.settings.model_concurrency) as pool:
        results = pool.map(lambda item: classify_path(services, *item), items)
        yield from tqdm(results, total=len(items), unit="image", disable=len(items) < 3 or None, file=sys.stderr)


def classify_command(services: Services, args: argparse.Namespace) -> int:
    failed = 0
    for outcome in classify_all(services, [(path, "") for path in args.images]):
        failed += outcome.call is None
        print(json.dumps(outcome_json(outcome)) if args.json else outcome_text(outcome), flush=True)
    return 1 if failed else 0


def outcome_json(outcome: Outcome) -> dict[str, object]:
    if outcome.call is None:
        return {"file": outcome.file, "error": outcome.error}
    return {"file": outcome.file, **call_fields(outcome.call)}


def outcome_text(outcome: Outcome) -> str:
    call = outcome.call
    if call is None:
        return f"{outcome.file}: ERROR {outcome.error}"
    confidence = "confidence unknown" if call.confidence is None else \
        f"confidence {call.confidence:.2f} ({call.confidence_source})"
    note = ", cached" if call.from_cache else ""
    return f"{outcome.file}: {call.label} ({confidence}{note})\n  {call.explanation}"


def eval_command(services: Services, args: argparse.Namespace) -> int:
    settings = services.settings
    try:
        classifiers = [services.classifier_for(variant, model)
                       for variant in args.variant or [settings.prompts_dir]
                       for model in args.model or [settings.openai_model]]
    except PromptError as error:
        print(f"Prompt files problem: {error}", file=sys.stderr)
        return 2
    if args.collect:
        return collect_batches(services, args.collect, args.out, marco=args.marco)
    try:
        labels = scoring_labels([classifier.prompt_set.categories for classifier in classifiers], marco=args.marco)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    items = labelled_images(args.directory, labels)
    if skipped := other_folders(args.directory, labels):
        print(f"Not scored: the folders {', '.join(skipped)} are no {'MARCO class' if args.marco else 'category'}"
              + ("" if args.marco else " (with --marco, the folders are MARCO classes)"), file=sys.stderr)
    if not items:
        print(f"No images found under {args.directory}/<label>/ for labels {', '.join(labels)}", file=sys.stderr)
        return 2
    images = normalised_images(services, items)
    if not confirm_cost(services, classifiers, images, batch=args.batch, assume_yes=args.yes):
        print("Not started.", file=sys.stderr)
        return 1
    if args.batch:
        return submit_eval_batches(services, classifiers, images, args.directory)
    runs = [scored(run_classifier(services, classifier, items, images), classifier.prompt_set.categories, args.marco)
            for classifier in classifiers]
    if len(runs) == 1:
        write_results(list(runs[0].outcomes), labels, args.out, f"{runs[0].name} on {args.directory.name}")
    else:
        write_comparison(runs, labels, args.out)
    return 0


def scoring_labels(category_sets: Sequence[Sequence[Category]], *, marco: bool) -> tuple[str, ...]:
    """The labels the runs are scored in: MARCO's classes (every category must name one), else the
    categories, which every variant compared must share. ValueError says what to change."""
    if marco:
        for categories in category_sets:
            marco_classes(categories)
        return MARCO_CLASSES
    labels = tuple(c.name for c in category_sets[0])
    if any(tuple(c.name for c in categories) != labels for categories in category_sets):
        raise ValueError("The variants have different categories: compare them on MARCO-labelled images with --marco")
    return labels


def scored(run: Run, categories: Sequence[Category], marco: bool) -> Run:
    """The run as scored: with --marco, each call as its category's MARCO class."""
    return replace(run, outcomes=tuple(as_marco(run.outcomes, marco_classes(categories)))) if marco else run


def normalised_images(services: Services, items: Sequence[tuple[Path, str]]) -> dict[Path, Image | str]:
    """Each image normalised once for every combination, or why it cannot be used."""
    images: dict[Path, Image | str] = {}
    for path, _ in items:
        try:
            images[path] = services.normalise(path.read_bytes(), path.name)
        except ImageError as error:
            images[path] = str(error)
        except OSError as error:
            images[path] = f"{path} cannot be read: {error.strerror}"
    return images


def confirm_cost(services: Services, classifiers: Sequence[Classifier], images: dict[Path, Image | str], *,
                 batch: bool, assume_yes: bool) -> bool:
    """Print the estimated cost of every combination; True to go on (asked unless --yes; no answer is no)."""
    usable = [image for image in images.values() if isinstance(image, Image)]
    total, unknown, new_calls = 0.0, False, 0
    for classifier in classifiers:
        uncached = [image for image in usable if not classifier.cached(image)]
        new_calls += len(uncached)
        line = f"{classifier.prompt_set.name} · {classifier.options.model}: {len(uncached)} images to classify"
        if len(uncached) < len(usable):
            line += f" ({len(usable) - len(uncached)} answered from the cache)"
        if uncached:
            output = typical_output_tokens(classifier.prompt_set.answer_fields)
            usage = estimated_usage(classifier.request(uncached[0]), len(uncached), output)
            cost = services.prices.cost(classifier.options.model, usage, batch=batch)
            unknown |= cost is None
            total += cost or 0.0
            line += f", about {usage.input_tokens:,} input tokens ({usage.cached_tokens:,} cached), " + (
                "price unknown (not in the price table)" if cost is None else f"estimated ${cost:.2f}")
        print(line, file=sys.stderr)
    if not new_calls:
        return True
    print(f"Estimated cost{' (Batch API price)' if batch else ''}: ${total:.2f}"
          + (" plus the models without a price" if unknown else "") + " (reasoning tokens not included)",
          file=sys.stderr)
    if assume_yes:
        return True
    print("Go on? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline() if sys.stdin else ""
    return answer.strip().lower() in {"y", "yes"}


def run_classifier(services: Services, classifier: Classifier, items: Sequence[tuple[Path, str]],
                   images: dict[Path, Image | str]) -> Run:
    """One combination over the images, concurrently, timed."""
    def outcome(item: tuple[Path, str]) -> Outcome:
        path, truth = item
        image = images[path]
        if isinstance(image, str):
            return Outcome(str(path), truth, None, image)
        try:
            return Outcome(str(path), truth, classifier.classify(image))
        except ModelError as error:
            return Outcome(str(path), truth, None, str(error))

    started = time.monotonic()
    with ThreadPoolExecutor(services.settings.model_concurrency) as pool:
        outcomes = tuple(tqdm(pool.map(outcome, items), total=len(items), unit="image", file=sys.stderr,
                              disable=len(items) < 3 or None, desc=f"{classifier.prompt_set.name} · "
                              f"{classifier.options.model}"))
    return Run(classifier.prompt_set.name, classifier.options.model, outcomes, time.monotonic() - started)


def score_batch_output(settings: Settings, path: Path, out_dir: Path, *, marco: bool) -> int:
    """Score a Batch API output file on its own: no API key, no database."""
    categories = load_categories(settings.prompts_dir)
    try:
        labels = scoring_labels([categories], marco=marco)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    results = read_batch_output(path.read_text(encoding="utf-8"), [c.name for c in categories],
                                load_price_table(settings.prices_file))
    run = scored(Run(settings.prompts_dir.name, "", tuple(outcomes_from_batch(results))), categories, marco)
    write_results(list(run.outcomes), labels, out_dir, path.name)
    return 0


def score_feedback(settings: Settings, out_dir: Path) -> int:
    """Score the calls the team reviewed in Slack, the latest verdict as the truth: no API key, no model
    call. Calls with a label that is no category any more are left out (and counted)."""
    labels = tuple(category.name for category in load_categories(settings.prompts_dir))
    store = open_store(settings.database_url, wait_seconds=settings.database_wait_seconds)
    try:
        reviewed = store.reviewed_calls()
    finally:
        store.close()
    usable = [item for item in reviewed if {item.call.label, item.feedback.label} <= set(labels)]
    if not usable:
        print("The team has not confirmed or corrected any call yet: nothing to score.", file=sys.stderr)
        return 1
    if len(usable) < len(reviewed):
        print(f"left out {len(reviewed) - len(usable)} calls with a label that is no category any more")
    outcomes = [Outcome(f"{item.channel}/{item.file_name}", item.feedback.label, item.call) for item in usable]
    write_results(outcomes, labels, out_dir, f"the bot against the team's verdicts ({len(outcomes)} calls)")
    return 0


def submit_eval_batches(services: Services, classifiers: Sequence[Classifier], images: dict[Path, Image | str],
                        directory: Path) -> int:
    """One batch per combination (a batch holds one model); the variant goes into its metadata."""
    gateway = services.classifier.gateway
    batch_ids = []
    for classifier in classifiers:
        lines, entries, prompt = [], {}, classifier.prompt()
        for path, image in images.items():
            if isinstance(image, str):
                print(f"skipped: {image}", file=sys.stderr)
                continue
            custom_id = path.relative_to(directory).as_posix()
            lines.append(batch_line(custom_id, gateway.wire_request(classifier.request(image, prompt)), gateway.endpoint()))
            entries[custom_id] = image.sha256
            services.store.save_image(image)
        key = batch_key(classifier.options.model, prompt.fingerprint, entries)
        named = f"{classifier.prompt_set.name} · {classifier.options.model}"
        try:
            batch_id = found = find_batch(gateway.client, key, time.time() - BATCH_WINDOW_SECONDS)
            if batch_id is None:
                batch_id = submit_batch(gateway.client, lines, gateway.endpoint(),
                                        str(classifier.prompt_set.folder.resolve()), {"key": key})
        except openai.APIError as error:
            print(f"Could not submit the batch: {describe_api_error(error, gateway.client)}", file=sys.stderr)
            return 1
        if services.store.batch(batch_id) is None:
            services.store.save_batch(batch_id, classifier.options.model, prompt.fingerprint, entries)
        batch_ids.append(batch_id)
        print(f"Batch {batch_id} ({named}) was started in the last 24 h for the same images: not sent again."
              if found else f"Submitted batch {batch_id} ({named}) with {len(lines)} images (results within 24 h).")
    print("Collect and score with: python -m bot eval " + " ".join(f"--collect {b}" for b in batch_ids))
    return 0


def collect_batches(services: Services, batch_ids: Sequence[str], out_dir: Path, *, marco: bool) -> int:
    """Fetch every batch; once all have completed, store their calls and score them (side by side)."""
    client = services.classifier.client
    collected = []
    for batch_id in batch_ids:
        try:
            output = fetch_batch_output(client, batch_id)
        except openai.APIError as error:
            print(f"Could not fetch batch {batch_id}: {describe_api_error(error, client)}", file=sys.stderr)
            return 1
        if output.text is None:
            print(f"Batch {batch_id} is {output.status}; try again later.")
            return 0 if output.status in {"validating", "in_progress", "finalizing"} else 1
        collected.append(collected_run(services, batch_id, output.variant, output.text))
    try:
        labels = scoring_labels([categories for _, categories in collected], marco=marco)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    runs = [scored(run, categories, marco) for run, categories in collected]
    if len(runs) == 1:
        write_results(list(runs[0].outcomes), labels, out_dir, f"batch {batch_ids[0]}")
    else:
        write_comparison(runs, labels, out_dir)
    return 0


def collected_run(services: Services, batch_id: str, variant: str, text: str) -> tuple[Run, tuple[Category, ...]]:
    """A completed batch as a run (and its variant's categories), its calls stored in the cache when this
    database submitted it."""
    known = services.store.batch(batch_id)
    model = known[0] if known else services.settings.openai_model
    classifier = services.classifier_for(Path(variant) if variant else services.settings.prompts_dir, model)
    outcomes = outcomes_from_batch(read_batch_output(text, classifier.prompt_set.labels, services.prices,
                                                     schema=classifier.prompt_set.schema))
    if known:
        _, fingerprint, entries = known
        outcomes = with_model(outcomes, model)
        for outcome in outcomes:
            image = services.store.image(entries.get(outcome.file, ""))
            if outcome.call and image:
                services.store.save_call(image, outcome.call, fingerprint)
    return Run(classifier.prompt_set.name, model, tuple(outcomes)), classifier.prompt_set.categories
