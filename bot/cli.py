"""The commands: `python -m bot [socket|http|classify|eval]`. Run with --help for the details."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import openai
from tqdm import tqdm

from bot.batch import batch_line, fetch_batch_output, read_batch_output, submit_batch
from bot.classifier import ModelError, describe_api_error
from bot.config import ConfigError, Settings, load_settings
from bot.evaluation import Outcome, call_fields, labelled_images, outcomes_from_batch, with_model, write_results
from bot.images import ImageError
from bot.pricing import load_price_table
from bot.prompt import PromptError, classification_request, load_categories
from bot.services import Services, build_services
from bot.redact import without_credentials
from bot.store import StoreError, copy_database, open_store

log = logging.getLogger("bot")


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
    evaluate = commands.add_parser("eval", help="score the bot on a folder of images sorted into <label>/ folders")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("directory", nargs="?", type=Path, help="folder with clear/, crystals/, ... subfolders")
    source.add_argument("--collect", metavar="BATCH_ID", help="collect and score a batch submitted with --batch")
    source.add_argument("--batch-output", metavar="FILE", type=Path, help="score an existing Batch API output file")
    evaluate.add_argument("--batch", action="store_true", help="submit through the Batch API (half price, <24 h)")
    evaluate.add_argument("--out", type=Path, default=Path("eval-out"), help="folder for the results (eval-out)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command or "socket"
    needs = {"socket": ("model", "socket"), "http": ("model", "http"), "classify": ("model",), "migrate": (),
             "copy-db": (), "eval": () if getattr(args, "batch_output", None) else ("model",)}[command]
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
            return score_batch_output(settings, args.batch_output, args.out)
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
            store = open_store(settings.database_url)
            print(f"{without_credentials(settings.database_url)} is at schema version {store.schema_version}")
            store.close()
            return 0
        source, target = open_store(args.source), open_store(args.target)
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
          + f" into {without_credentials(args.target)}")
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
    settings, labels = services.settings, services.prompt_set.labels
    if args.collect:
        return collect_batch(services, args.collect, args.out)
    items = labelled_images(args.directory, labels)
    if not items:
        print(f"No images found under {args.directory}/<label>/ for labels {', '.join(labels)}", file=sys.stderr)
        return 2
    if args.batch:
        return submit_eval_batch(services, items, args.directory)
    outcomes = list(classify_all(services, items))
    write_results(outcomes, labels, args.out, f"{settings.openai_model} on {args.directory.name}")
    return 0


def score_batch_output(settings: Settings, path: Path, out_dir: Path) -> int:
    """Score a Batch API output file on its own: no API key, no database."""
    labels = tuple(category.name for category in load_categories(settings.prompts_dir))
    results = read_batch_output(path.read_text(encoding="utf-8"), labels, load_price_table(settings.prices_file))
    write_results(outcomes_from_batch(results), labels, out_dir, path.name)
    return 0


def submit_eval_batch(services: Services, items: Sequence[tuple[Path, str]], directory: Path) -> int:
    lines, entries = [], {}
    for path, _ in items:
        custom_id = path.relative_to(directory).as_posix()
        try:
            image = services.normalise(path.read_bytes(), path.name)
        except ImageError as error:
            print(f"skipped: {error}", file=sys.stderr)
            continue
        request = classification_request(services.prompt_set, image, services.classifier.options)
        lines.append(batch_line(custom_id, request))
        entries[custom_id] = image.sha256
        services.store.save_image(image)
    try:
        batch_id = submit_batch(services.classifier.client, lines)
    except openai.APIError as error:
        print(f"Could not submit the batch: {describe_api_error(error, services.classifier.client)}", file=sys.stderr)
        return 1
    services.store.save_batch(batch_id, services.classifier.options.model, services.classifier.fingerprint, entries)
    print(f"Submitted batch {batch_id} with {len(lines)} images (results within 24 h).\n"
          f"Collect and score it with: python -m bot eval --collect {batch_id}")
    return 0


def collect_batch(services: Services, batch_id: str, out_dir: Path) -> int:
    known = services.store.batch(batch_id)
    try:
        status, text = fetch_batch_output(services.classifier.client, batch_id)
    except openai.APIError as error:
        print(f"Could not fetch batch {batch_id}: {describe_api_error(error, services.classifier.client)}",
              file=sys.stderr)
        return 1
    if text is None:
        print(f"Batch {batch_id} is {status}; try again later.")
        return 0 if status in {"validating", "in_progress", "finalizing"} else 1
    outcomes = outcomes_from_batch(read_batch_output(text, services.prompt_set.labels, services.prices))
    if known:
        model, fingerprint, entries = known
        outcomes = with_model(outcomes, model)
        for outcome in outcomes:
            image = services.store.image(entries.get(outcome.file, ""))
            if outcome.call and image:
                services.store.save_call(image, outcome.call, fingerprint)
    write_results(outcomes, services.prompt_set.labels, out_dir, f"batch {batch_id}")
    return 0
