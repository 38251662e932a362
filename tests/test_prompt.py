"""bot.prompt: the real prompts/ and examples/ load as the proof of concept wrote them; the request has a
byte-stable prefix with the query image last; the fingerprint follows everything that shapes an answer."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.images import Normalisation, normalise
from bot.prompt import (
    ModelOptions,
    PromptError,
    ThreadImage,
    bounded_transcript,
    classification_request,
    fingerprint,
    follow_up_request,
    load_prompt_set,
)

ROOT = Path(__file__).resolve().parent.parent
PROMPTS, EXAMPLES = ROOT / "prompts", ROOT / "examples"
DATA = Path(__file__).parent / "data" / "marco-gsk"
SIZES = {"max_side": 1024, "max_pixels": 60_000_000}
NORMALISATION = Normalisation(**SIZES)
OPTIONS = ModelOptions(model="gpt-4.1", temperature=0.0, detail="high", logprobs=True)
POC_EXAMPLES = [
    ("crystals-6488.jpeg", "crystals", "Distinct crystal structures can be seen forming in the droplet."),
    ("clear-220.jpeg", "clear", "The droplet is transparent and shows no visible particles or structures."),
    ("precipitate-200.jpeg", "precipitate",
     "Granular particles are scattered across the droplet indicating precipitation."),
    ("other-9123.jpeg", "other",
     "The image shows unexpected structures which are not clear solution, crystals, or precipitate."),
]


def load(prompts: Path = PROMPTS, examples: Path = EXAMPLES):
    return load_prompt_set(prompts, examples, NORMALISATION)


def query(path: Path):
    return normalise(path.read_bytes(), path.name, **SIZES)


@pytest.fixture(scope="module")
def prompt_set():
    return load()


@pytest.fixture(scope="module")
def drop():
    return query(DATA / "unlabeled" / "57465.jpeg")


@pytest.fixture
def copies(tmp_path) -> tuple[Path, Path]:
    """Editable copies of prompts/ and examples/."""
    return (Path(shutil.copytree(PROMPTS, tmp_path / "prompts")),
            Path(shutil.copytree(EXAMPLES, tmp_path / "examples")))


def texts(request) -> list[str]:
    return [item.get("text") for item in request["input"][0]["content"]]


# --- loading ---------------------------------------------------------------------------------------

def test_loads_the_four_categories_in_order(prompt_set):
    assert prompt_set.labels == ("clear", "crystals", "precipitate", "other")
    assert prompt_set.category("crystals").definition == "crystals observed within a droplet or in the field of view."
    assert prompt_set.category("crystals").emoji == ":gem:"


def test_loads_the_proof_of_concepts_examples_in_manifest_order(prompt_set):
    assert [(e.label, e.explanation) for e in prompt_set.examples] == [(l, x) for _, l, x in POC_EXAMPLES]
    for example, (file, _, _) in zip(prompt_set.examples, POC_EXAMPLES):
        assert example.image.sha256 == hashlib.sha256((EXAMPLES / file).read_bytes()).hexdigest()
        assert max(example.image.width, example.image.height) <= 1024


def test_instructions_and_follow_up_are_read(prompt_set):
    assert prompt_set.instructions.startswith("You are helping with tagging protein crystallization images.")
    assert "if any crystal is visible" in prompt_set.instructions
    assert prompt_set.follow_up.startswith("You are the crystallography assistant")


# --- the classification request -----------------------------------------------------------------

def test_request_is_one_user_message_instructions_then_examples_then_the_query_image_last(prompt_set, drop):
    request = classification_request(prompt_set, drop, OPTIONS)
    assert [m["role"] for m in request["input"]] == ["user"]
    content = request["input"][0]["content"]
    first = content[0]["text"]
    assert prompt_set.instructions in first
    for category in prompt_set.categories:
        assert f"{category.name}: {category.definition}" in first
    for number, example in enumerate(prompt_set.examples, start=1):
        heading, image, labelled = content[3 * number - 2: 3 * number + 1]
        assert heading == {"type": "input_text", "text": f"**Example {number}:**"}
        assert image == {"type": "input_image", "image_url": example.image.data_url(), "detail": "high"}
        assert labelled["text"] == f"Label: {example.label}\nExplanation: {example.explanation}"
    assert len(content) == 1 + 3 * 4 + 2
    assert content[-1] == {"type": "input_image", "image_url": drop.data_url(), "detail": "high"}
    assert [item["type"] for item in content].count("input_image") == 5
    assert (request["model"], request["temperature"]) == ("gpt-4.1", 0.0)


def test_prefix_is_byte_identical_for_different_query_images(prompt_set, drop):
    other = query(DATA / "crystals" / "10.jpeg")
    first, second = (classification_request(prompt_set, image, OPTIONS) for image in (drop, other))
    assert first["input"][0]["content"][-1] != second["input"][0]["content"][-1]
    prefix = lambda request: json.dumps(request["input"][0]["content"][:-1])  # noqa: E731
    assert prefix(first) == prefix(second)


def test_request_asks_for_strict_json_with_the_categories_as_enum(prompt_set, drop):
    fmt = classification_request(prompt_set, drop, OPTIONS)["text"]["format"]
    assert (fmt["type"], fmt["strict"]) == ("json_schema", True)
    assert fmt["schema"]["properties"]["label"]["enum"] == ["clear", "crystals", "precipitate", "other"]
    assert list(fmt["schema"]["properties"]) == ["observations", "label", "confidence", "explanation"]


def test_logprobs_are_requested_only_when_enabled(prompt_set, drop):
    with_logprobs = classification_request(prompt_set, drop, OPTIONS)
    assert with_logprobs["include"] == ["message.output_text.logprobs"]
    assert with_logprobs["top_logprobs"] >= 1
    without = classification_request(prompt_set, drop, replace(OPTIONS, logprobs=False))
    assert "include" not in without and "top_logprobs" not in without


# --- fingerprint -----------------------------------------------------------------------------------

def test_fingerprint_is_stable_across_loads(prompt_set):
    assert fingerprint(load(), OPTIONS, NORMALISATION) == fingerprint(prompt_set, OPTIONS, NORMALISATION)


def test_fingerprint_ignores_the_model_name(prompt_set):
    other_model = replace(OPTIONS, model="gpt-4.1-mini")
    assert fingerprint(prompt_set, other_model, NORMALISATION) == fingerprint(prompt_set, OPTIONS, NORMALISATION)


@pytest.mark.parametrize("change", [
    {"detail": "low"}, {"temperature": 0.5}, {"logprobs": False}, {"api": "chat"}, {"api": "auto"},
    {"reasoning_effort": "high"},
])
def test_fingerprint_changes_with_each_model_option(prompt_set, change):
    assert fingerprint(prompt_set, replace(OPTIONS, **change), NORMALISATION) != \
        fingerprint(prompt_set, OPTIONS, NORMALISATION)


@pytest.mark.parametrize("change", [{"max_side": 512}, {"resampling": "lanczos"}, {"jpeg_quality": 75}])
def test_fingerprint_changes_with_each_normalisation_setting(prompt_set, change):
    assert fingerprint(prompt_set, OPTIONS, replace(NORMALISATION, **change)) != \
        fingerprint(prompt_set, OPTIONS, NORMALISATION)


def test_the_image_limit_alone_does_not_change_the_fingerprint(prompt_set):
    """MAX_IMAGE_PIXELS refuses images; it never changes the bytes of one that is sent."""
    bigger = replace(NORMALISATION, max_pixels=NORMALISATION.max_pixels * 2)
    assert fingerprint(prompt_set, OPTIONS, bigger) == fingerprint(prompt_set, OPTIONS, NORMALISATION)


def test_fingerprint_changes_when_an_instruction_changes(prompt_set, copies):
    prompts, examples = copies
    path = prompts / "instructions.md"
    path.write_text(path.read_text().replace("even a small one", "even a tiny one"))
    assert fingerprint(load(prompts, examples), OPTIONS, NORMALISATION) != fingerprint(prompt_set, OPTIONS, NORMALISATION)


def test_fingerprint_changes_when_an_example_explanation_changes(prompt_set, copies):
    prompts, examples = copies
    path = examples / "manifest.toml"
    path.write_text(path.read_text().replace("Distinct crystal structures", "Clear crystal structures"))
    edited = load(prompts, examples)
    assert edited.examples[0].explanation == "Clear crystal structures can be seen forming in the droplet."
    assert fingerprint(edited, OPTIONS, NORMALISATION) != fingerprint(prompt_set, OPTIONS, NORMALISATION)


def test_fingerprint_changes_when_an_example_image_changes(prompt_set, copies):
    prompts, examples = copies
    shutil.copyfile(DATA / "crystals" / "10.jpeg", examples / "crystals-6488.jpeg")
    assert fingerprint(load(prompts, examples), OPTIONS, NORMALISATION) != fingerprint(prompt_set, OPTIONS, NORMALISATION)


# --- errors name the file to fix ---------------------------------------------------------------

def test_unknown_label_in_the_manifest(copies):
    prompts, examples = copies
    path = examples / "manifest.toml"
    path.write_text(path.read_text().replace('label = "precipitate"', 'label = "precipitates"'))
    with pytest.raises(PromptError) as error:
        load(prompts, examples)
    assert str(path) in str(error.value) and "'precipitates'" in str(error.value)


def test_missing_example_image(copies):
    prompts, examples = copies
    (examples / "clear-220.jpeg").unlink()
    with pytest.raises(PromptError) as error:
        load(prompts, examples)
    assert str(examples / "manifest.toml") in str(error.value) and "clear-220.jpeg" in str(error.value)


def test_missing_instructions(copies):
    prompts, examples = copies
    (prompts / "instructions.md").unlink()
    with pytest.raises(PromptError, match="instructions.md is missing"):
        load(prompts, examples)


@pytest.mark.parametrize("relative", ["prompts/categories.toml", "examples/manifest.toml"])
def test_invalid_toml(copies, relative):
    path = copies[0].parent / relative
    path.write_text(path.read_text() + '\n[[example]\nfile = "x.jpeg"\n')
    with pytest.raises(PromptError) as error:
        load(*copies)
    assert str(path) in str(error.value) and "not valid TOML" in str(error.value)


def test_manifest_entry_without_explanation_names_the_manifest(copies):
    prompts, examples = copies
    path = examples / "manifest.toml"
    path.write_text(path.read_text().replace(
        'explanation = "Distinct crystal structures can be seen forming in the droplet."\n', ""))
    with pytest.raises(PromptError) as error:
        load(prompts, examples)
    assert str(path) in str(error.value) and "explanation" in str(error.value)


# --- follow-up questions ---------------------------------------------------------------------------

def test_follow_up_request_images_then_transcript_then_the_question(prompt_set, drop):
    images = [ThreadImage(drop, "Image 1: I said crystals (90%)."),
              ThreadImage(prompt_set.examples[1].image, "Image 2: I said clear; corrected to precipitate.")]
    request = follow_up_request(prompt_set, OPTIONS, images, ["<@U1>: is this real?", "bot: yes"],
                                "What should we try next?")
    assert prompt_set.follow_up in request["instructions"]
    assert "precipitate: precipitate observed within a droplet" in request["instructions"]
    content = request["input"][0]["content"]
    assert [item["type"] for item in content] == ["input_text", "input_image"] * 2 + ["input_text"] * 2
    assert content[0]["text"] == "Image 1: I said crystals (90%)."
    assert content[1]["image_url"] == drop.data_url()
    assert content[3]["image_url"] == prompt_set.examples[1].image.data_url()
    assert content[-2]["text"].endswith("<@U1>: is this real?\nbot: yes")
    assert content[-1]["text"].endswith("What should we try next?")
    assert "text" not in request  # plain-text answer, no JSON schema


def test_follow_up_request_without_history(prompt_set):
    request = follow_up_request(prompt_set, OPTIONS, [], [], "Hello?")
    assert "(no earlier messages)" in request["input"][0]["content"][0]["text"]


def test_bounded_transcript_keeps_the_latest_lines_within_the_limit():
    lines = [f"line {n}: " + "x" * 20 for n in range(10)]  # 28 characters each
    kept = bounded_transcript(lines, 100)
    assert kept == lines[-3:]
    assert len("\n".join(kept)) <= 100
    assert bounded_transcript(lines, 85) == lines[-2:]  # 3 lines joined are 86 characters
    assert bounded_transcript(lines, 10_000) == lines
    assert bounded_transcript(["y" * 200], 100) == []


SEED_TEXT = ("You are helping with tagging Protein Crystallization images. You will be given an image and a list of "
             "labels with definitions. Choose the most appropriate single label from the list according to the "
             "definition. Add a short explanation of your choice at the end in free text.\n\n**List:**\n"
             "[clear, crystals, precipitate, other]\n\n**Definitions:**\n"
             "clear: Transparent solution without any particulate matter observed within a droplet or in the field "
             "of view.\ncrystals: Crystals observed within a droplet or in the field of view.\n"
             "precipitate: Precipitate observed within a droplet or in the field of view.\n"
             "other: Unexpected observations which are not clear solution, crystals, or precipitate.\n\n"
             "Below are some examples:")


def test_the_seed_variant_is_the_proof_of_concepts_measured_request(drop):
    """As in its batch_request_test.jsonl (minus the trailing newline after "examples:")."""
    seed = load(ROOT / "prompts-seed")
    request = classification_request(seed, drop, replace(OPTIONS, temperature=0.7))
    assert request["input"][0]["content"][0]["text"] == SEED_TEXT
    assert request["temperature"] == 0  # the variant's own, whatever OPENAI_TEMPERATURE says
    assert request["text"]["format"]["schema"] == {
        "type": "object", "additionalProperties": False, "required": ["label", "explanation"],
        "properties": {"label": {"type": "string", "enum": ["clear", "crystals", "precipitate", "other"]},
                       "explanation": {"type": "string", "description": seed.schema["properties"]["explanation"]
                                       ["description"]}}}
    assert seed.name == "prompts-seed" and [e.explanation for e in seed.examples] == [e[2] for e in POC_EXAMPLES]


def test_a_variant_may_bring_its_own_examples(copies, tmp_path):
    prompts, examples = copies
    shutil.copytree(examples, prompts / "examples")
    manifest = prompts / "examples" / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("Distinct crystal structures", "Needles"))
    assert load(prompts, tmp_path / "nowhere").examples[0].explanation.startswith("Needles")


@pytest.mark.parametrize(("content", "problem"), [
    ('answer_fields = ["explanation"]', "must include label"),
    ("temperature = 3", "temperature must be a number from 0 to 2"),
    ("temperature = ", "variant.toml"),
])
def test_a_bad_variant_file_names_the_file_and_the_problem(copies, content, problem):
    prompts, examples = copies
    (prompts / "variant.toml").write_text(content)
    with pytest.raises(PromptError, match=problem):
        load(prompts, examples)


@pytest.mark.parametrize("change", [{"resampling": "lanczos"}, {"jpeg_quality": 60}, {"max_side": 512}])
def test_each_normalisation_setting_changes_the_bytes_sent(change):
    data = (DATA / "crystals" / "10.jpeg").read_bytes()
    assert replace(NORMALISATION, **change).apply(data, "10.jpeg").jpeg != NORMALISATION.apply(data, "10.jpeg").jpeg
