"""The prompt as data: `prompts/` and `examples/` -> the model's input and a fingerprint.

The input is one user message: instructions and category definitions, then the few-shot examples
(image, label, explanation), then the query image last. Everything before the query image is
byte-identical from call to call, so the provider's prompt caching applies. The fingerprint covers
everything that shapes the answer; it is part of the cache key, so editing a prompt file or an
example makes new calls.

A prompts folder is a variant: instructions.md, categories.toml, follow_up.md and, optionally,
variant.toml (the answer fields and a temperature of its own) and examples/manifest.toml (its own
few-shot examples instead of EXAMPLES_DIR). Requests are built in the Responses API's shape;
bot/wire.py turns them into Chat Completions requests where needed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.answer import ANSWER_FIELDS, SCHEMA_NAME, answer_schema
from bot.categories import MARCO_CLASSES, Category, find_category, hit_labels, is_hit, label_for_marco, parse_categories
from bot.images import Normalisation
from bot.models import Image

VARIANT_FILE = "variant.toml"
log = logging.getLogger(__name__)


class PromptError(Exception):
    """prompts/ or examples/ is incomplete or inconsistent; the message says which file to fix."""


@dataclass(frozen=True)
class Example:
    image: Image
    label: str
    explanation: str


@dataclass(frozen=True)
class ModelOptions:
    """How the model is asked; part of the fingerprint except the model name (its own cache key part)."""

    model: str
    temperature: float
    detail: str
    logprobs: bool
    api: str = "responses"  # the OPENAI_API setting: responses, chat or auto
    reasoning_effort: str = "default"  # "default": none sent


@dataclass(frozen=True)
class PromptSet:
    instructions: str
    categories: tuple[Category, ...]
    examples: tuple[Example, ...]
    follow_up: str
    answer_fields: tuple[str, ...] = ANSWER_FIELDS
    temperature: float | None = None  # the variant's own, else OPENAI_TEMPERATURE
    folder: Path = Path("prompts")  # where it was read from
    examples_left_out: tuple[str, ...] = ()  # example files whose MARCO label maps to no one category

    @property
    def name(self) -> str:
        """The variant's name in reports: its folder's name."""
        return self.folder.name

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(category.name for category in self.categories)

    @property
    def schema(self) -> dict[str, Any]:
        return answer_schema(self.labels, self.answer_fields)

    @property
    def hits(self) -> frozenset[str]:
        """The labels that make a drop a hit (`hit = true` in categories.toml)."""
        return hit_labels(self.categories)

    def is_hit(self, label: str | None) -> bool:
        return is_hit(label, self.categories)

    def category(self, name: str) -> Category:
        return find_category(self.categories, name)


def load_prompt_set(prompts_dir: Path, examples_dir: Path, normalisation: Normalisation) -> PromptSet:
    """Read the prompt files and the example images (normalised like any query image).

    The variant's own examples/ folder, when it has one, replaces `examples_dir`. An example labelled
    with a MARCO class that is no category of the variant is shown as the one category whose `marco`
    is that class; when none or several are, it is left out (named in `examples_left_out`).
    """
    if (prompts_dir / "examples" / "manifest.toml").is_file():
        examples_dir = prompts_dir / "examples"
    categories = load_categories(prompts_dir)
    names = {category.name for category in categories}
    examples, left_out = [], []
    for entry in _read_toml(examples_dir / "manifest.toml", "example", required=("file", "label", "explanation")):
        label = entry["label"] if entry["label"] in names else _marco_example_label(entry, categories, examples_dir)
        if label is None:
            left_out.append(entry["file"])
            continue
        path = examples_dir / entry["file"]
        if not path.is_file():
            raise PromptError(f"{examples_dir / 'manifest.toml'}: example image {path} does not exist")
        image = normalisation.apply(path.read_bytes(), path.name)
        examples.append(Example(image, label, entry["explanation"].strip()))
    if left_out:
        log.warning("%s: examples %s left out: each is labelled with a MARCO class that no one category of %s "
                    "has as its marco", examples_dir / "manifest.toml", ", ".join(left_out), prompts_dir)
    fields, temperature = load_variant_options(prompts_dir)
    return PromptSet(
        instructions=_read_text(prompts_dir / "instructions.md"),
        categories=categories,
        examples=tuple(examples),
        follow_up=_read_text(prompts_dir / "follow_up.md"),
        answer_fields=fields,
        temperature=temperature,
        folder=prompts_dir,
        examples_left_out=tuple(left_out),
    )


def _marco_example_label(entry: dict[str, Any], categories: Sequence[Category], examples_dir: Path) -> str | None:
    """The category an example labelled with a MARCO class stands for (None: no one category); an example
    whose label is neither a category nor a MARCO class is a mistake in the manifest."""
    if entry["label"] not in MARCO_CLASSES:
        raise PromptError(f"{examples_dir / 'manifest.toml'}: example {entry.get('file')!r} has label "
                          f"{entry.get('label')!r}, not one of {', '.join(sorted(c.name for c in categories))}")
    return label_for_marco(entry["label"], categories)


def load_variant_options(prompts_dir: Path) -> tuple[tuple[str, ...], float | None]:
    """(answer fields, temperature) from the optional variant.toml; defaults: every field, no temperature."""
    path = prompts_dir / VARIANT_FILE
    if not path.is_file():
        return ANSWER_FIELDS, None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        fields = tuple(data.get("answer_fields", ANSWER_FIELDS))
        answer_schema(("label",), fields)  # checks the names
        temperature = data.get("temperature")
        if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 2):
            raise ValueError(f"temperature must be a number from 0 to 2, not {temperature!r}")
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
        raise PromptError(f"{path}: {error}") from None
    return fields, None if temperature is None else float(temperature)


def load_categories(prompts_dir: Path) -> tuple[Category, ...]:
    """categories.toml, checked (bot/categories.py says what a category may hold)."""
    path = prompts_dir / "categories.toml"
    try:
        return parse_categories(_read_toml(path, "category", required=("name", "definition")))
    except ValueError as error:
        raise PromptError(f"{path}: {error}") from None


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise PromptError(f"{path} is missing")
    return path.read_text(encoding="utf-8").strip()


def _read_toml(path: Path, table: str, *, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """The [[table]] entries of a TOML file, each checked to have the required keys."""
    if not path.is_file():
        raise PromptError(f"{path} is missing")
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get(table, [])
    except tomllib.TOMLDecodeError as error:
        raise PromptError(f"{path} is not valid TOML: {error}") from None
    if not entries:
        raise PromptError(f"{path} has no [[{table}]] entries")
    for number, entry in enumerate(entries, start=1):
        missing = [key for key in required if not str(entry.get(key, "")).strip()]
        if missing:
            raise PromptError(f"{path}: [[{table}]] number {number} has no {', '.join(missing)}")
    return entries


def definitions_text(prompt_set: PromptSet) -> str:
    """The label list and definitions, as the proof of concept worded them."""
    lines = [f"{category.name}: {category.definition}" for category in prompt_set.categories]
    return f"**List:**\n[{', '.join(prompt_set.labels)}]\n\n**Definitions:**\n" + "\n".join(lines)


def classification_input(prompt_set: PromptSet, image: Image, detail: str) -> list[dict[str, Any]]:
    """The Responses API `input`: stable prefix (instructions, definitions, examples), query image last."""
    content: list[dict[str, Any]] = [
        {"type": "input_text", "text": f"{prompt_set.instructions}\n\n{definitions_text(prompt_set)}\n\n"
                                       "Below are some examples:"},
    ]
    for number, example in enumerate(prompt_set.examples, start=1):
        content += [
            {"type": "input_text", "text": f"**Example {number}:**"},
            image_item(example.image, detail),
            {"type": "input_text", "text": f"Label: {example.label}\nExplanation: {example.explanation}"},
        ]
    content += [
        {"type": "input_text", "text": "**Now classify the following image:**"},
        image_item(image, detail),
    ]
    return [{"role": "user", "content": content}]


def image_item(image: Image, detail: str) -> dict[str, Any]:
    return {"type": "input_image", "image_url": image.data_url(), "detail": detail}


def classification_request(prompt_set: PromptSet, image: Image, options: ModelOptions) -> dict[str, Any]:
    """Keyword arguments for `client.responses.create`, also the body of a Batch API line."""
    request: dict[str, Any] = {
        "model": options.model,
        "input": classification_input(prompt_set, image, options.detail),
        "temperature": temperature(prompt_set, options),
        "text": {"format": {"type": "json_schema", "name": SCHEMA_NAME, "strict": True, "schema": prompt_set.schema}},
    }
    if options.logprobs:
        request["include"] = ["message.output_text.logprobs"]
        request["top_logprobs"] = 1
    return with_reasoning(request, options)


def temperature(prompt_set: PromptSet, options: ModelOptions) -> float:
    """The variant's own temperature, else the setting's."""
    return options.temperature if prompt_set.temperature is None else prompt_set.temperature


def with_reasoning(request: dict[str, Any], options: ModelOptions) -> dict[str, Any]:
    """The request asking for OPENAI_REASONING_EFFORT (bot/wire.py sends it to reasoning models only)."""
    if options.reasoning_effort == "default":
        return request
    return {**request, "reasoning": {"effort": options.reasoning_effort}}


def fingerprint(prompt_set: PromptSet, options: ModelOptions, normalisation: Normalisation) -> str:
    """A short hash of everything but the model name that shapes a request and so an answer:
    the prompt, examples and schema, how the model is asked (API, temperature, detail, logprobs,
    reasoning effort) and how every image is normalised (size, resampling, JPEG quality)."""
    shaping = {
        "instructions": prompt_set.instructions,
        "categories": [[c.name, c.definition] for c in prompt_set.categories],
        "examples": [[e.image.sha256, e.label, e.explanation] for e in prompt_set.examples],
        "schema": prompt_set.schema,
        "temperature": temperature(prompt_set, options),
        "detail": options.detail,
        "logprobs": options.logprobs,
        "api": options.api,
        "reasoning_effort": options.reasoning_effort,
        "images": normalisation.shaping(),
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ThreadImage:
    """An image the bot classified in a thread, with what it said and what the team said."""

    image: Image
    summary: str


def bounded_transcript(lines: Sequence[str], max_chars: int) -> list[str]:
    """The latest lines of a thread whose total length stays within max_chars (older ones dropped)."""
    kept: list[str] = []
    total = 0
    for line in reversed(lines):
        total += len(line) + 1
        if total > max_chars:
            break
        kept.append(line)
    return kept[::-1]


def follow_up_request(prompt_set: PromptSet, options: ModelOptions, images: Sequence[ThreadImage],
                      transcript: Sequence[str], question: str) -> dict[str, Any]:
    """Keyword arguments for `client.responses.create` to answer a question in a thread (plain text)."""
    content: list[dict[str, Any]] = []
    for image in images:
        content += [{"type": "input_text", "text": image.summary}, image_item(image.image, options.detail)]
    history = "\n".join(transcript) if transcript else "(no earlier messages)"
    content += [
        {"type": "input_text", "text": f"The thread so far:\n{history}"},
        {"type": "input_text", "text": f"The question to answer now:\n{question}"},
    ]
    return with_reasoning({
        "model": options.model,
        "instructions": f"{prompt_set.follow_up}\n\n{definitions_text(prompt_set)}",
        "input": [{"role": "user", "content": content}],
        "temperature": temperature(prompt_set, options),
    }, options)
