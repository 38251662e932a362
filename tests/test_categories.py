"""bot.categories and categories.toml: the lab's own categories load, bad files are refused with a message
that names the file and the fix, hits come from `hit = true`, every category gets a distinct letter and a
colour, and only the name and definition reach the model."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.categories import (HIT_COLOURS, MARCO_CLASSES, PALE_COLOURS, STAR, Category, hit_labels, hits_present,
                            ink, is_hit, label_for_marco, parse_categories, several_hits)
from bot.images import Normalisation
from bot.prompt import ModelOptions, PromptError, classification_request, fingerprint, load_categories, load_prompt_set

ROOT = Path(__file__).resolve().parent.parent
LAB_NAMES = ["clear", "precipitate", "phase separation", "skin", "microcrystals", "crystals"]
NORMALISATION = Normalisation(max_side=1024, max_pixels=60_000_000)
OPTIONS = ModelOptions(model="gpt-4.1", temperature=0.0, detail="high", logprobs=True)


def entry(name: str, **fields) -> dict:
    return {"name": name, "definition": f"{name} seen in the drop.", **fields}


def toml_of(entries: list[dict]) -> str:
    def value(v) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else f'"{v}"'
    return "\n".join("[[category]]\n" + "".join(f"{key} = {value(v)}\n" for key, v in e.items()) for e in entries)


@pytest.fixture
def variant(tmp_path: Path) -> Path:
    """A copy of the example lab variant to break."""
    folder = tmp_path / "prompts-lab"
    shutil.copytree(ROOT / "prompts-labscores", folder)
    return folder


# --- the shipped files -----------------------------------------------------------------------------


def test_the_default_categories_are_marco_s_four_with_crystals_the_one_hit_drawn_as_always() -> None:
    categories = load_categories(ROOT / "prompts")
    assert [c.name for c in categories] == list(MARCO_CLASSES)
    assert hit_labels(categories) == {"crystals"} and not several_hits(categories)
    assert [c.marco for c in categories] == list(MARCO_CLASSES)
    assert [(c.letter, c.colour) for c in categories] == [
        ("C", "#c6e4f7"), (STAR, "#d55e00"), ("P", "#f2e79a"), ("?", "#e4c3d8")]
    assert load_categories(ROOT / "prompts-seed") == tuple(
        replace(c, definition=c.definition[0].upper() + c.definition[1:]) for c in categories)


def test_the_example_lab_set_has_six_categories_two_of_them_hits_each_with_its_own_letter() -> None:
    categories = load_categories(ROOT / "prompts-labscores")
    assert [c.name for c in categories] == LAB_NAMES
    assert hit_labels(categories) == {"microcrystals", "crystals"} and several_hits(categories)
    assert {c.name: c.marco for c in categories} == {
        "clear": "clear", "precipitate": "precipitate", "phase separation": "other", "skin": "other",
        "microcrystals": "crystals", "crystals": "crystals"}
    assert [c.letter for c in categories] == ["C", "P", "S", "K", "M", STAR]
    assert len({c.colour for c in categories}) == 6
    assert all(c.emoji and c.reaction for c in categories)


def test_the_example_lab_set_loads_with_the_marco_examples_mapped_by_their_class() -> None:
    prompt_set = load_prompt_set(ROOT / "prompts-labscores", ROOT / "examples", NORMALISATION)
    assert [(e.image.name, e.label) for e in prompt_set.examples] == [
        ("crystals-6488.jpeg", "crystals"), ("clear-220.jpeg", "clear"), ("precipitate-200.jpeg", "precipitate")]
    assert prompt_set.examples_left_out == ("other-9123.jpeg",)  # other: phase separation or skin?
    assert prompt_set.schema["properties"]["label"]["enum"] == LAB_NAMES


def test_an_example_of_a_marco_class_is_shown_under_the_one_category_that_counts_as_it(variant: Path) -> None:
    path = variant / "categories.toml"
    path.write_text(path.read_text().replace('name = "clear"', 'name = "clear drop"'))
    prompt_set = load_prompt_set(variant, ROOT / "examples", NORMALISATION)
    assert ("clear-220.jpeg", "clear drop") in [(e.image.name, e.label) for e in prompt_set.examples]


def test_an_example_whose_label_is_neither_a_category_nor_a_marco_class_is_refused(variant: Path, tmp_path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", examples)
    manifest = examples / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('label = "other"', 'label = "fibres"'))
    with pytest.raises(PromptError) as error:
        load_prompt_set(variant, examples, NORMALISATION)
    assert str(manifest) in str(error.value) and "'fibres'" in str(error.value)


def test_only_names_and_definitions_reach_the_model_so_the_fingerprint_ignores_the_rest() -> None:
    prompt_set = load_prompt_set(ROOT / "prompts", ROOT / "examples", NORMALISATION)
    image = prompt_set.examples[0].image
    changed = replace(prompt_set, categories=tuple(
        replace(c, hit=not c.hit, marco="other", letter=str(n), colour="#000000", emoji=":x:", reaction="x")
        for n, c in enumerate(prompt_set.categories)))
    assert classification_request(changed, image, OPTIONS) == classification_request(prompt_set, image, OPTIONS)
    assert fingerprint(changed, OPTIONS, NORMALISATION) == fingerprint(prompt_set, OPTIONS, NORMALISATION)
    redefined = replace(prompt_set, categories=(replace(prompt_set.categories[0], definition="nothing"),
                                                *prompt_set.categories[1:]))
    assert fingerprint(redefined, OPTIONS, NORMALISATION) != fingerprint(prompt_set, OPTIONS, NORMALISATION)


# --- bad files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entries", "message"), [
    ([entry("clear"), entry("crystals")], "no category is a hit: add `hit = true`"),
    ([entry("clear"), entry("Clear ", hit=True)], "'clear' and 'Clear' have the same name"),
    ([entry("phase separation"), entry("phase-separation", hit=True)], "have the same name"),
    ([entry("crystals", hit=True, marco="crystal")], "marco must be one of clear, crystals, precipitate, other, "
                                                     "not 'crystal'"),
    ([entry("crystals", hit="yes")], "hit must be true or false (no quotes), not 'yes'"),
    ([entry("crystals", hits=True)], "[[category]] 'crystals' has unknown key(s) hits; the keys are name,"),
    ([entry("clear", letter="C"), entry("crystals", hit=True, letter="c")],
     "categories 'clear' and 'crystals' have the same letter 'C': set `letter` on one of them"),
    ([entry("cloudy", letter="C"), entry("clear"), entry("crystals", hit=True)], "have the same letter 'C'"),
    ([entry("crystals", hit=True, letter="XY")], "letter must be one letter, digit or one of ★ ? +, not 'XY'"),
    ([entry("crystals", hit=True, letter="!")], "letter must be one letter"),
    ([entry("crystals", hit=True, colour="red")], "colour must be written #rrggbb"),
    ([entry("crystals", hit=True, reaction=":gem:")], "reaction is an emoji's name without colons"),
    ([entry("error", hit=True)], "a name must have at most 40 characters and not be 'error'"),
    ([entry("x" * 41, hit=True)], "a name must have at most 40 characters"),
    ([{"name": "crystals", "hit": True}], "[[category]] number 1 has no definition"),
    ([entry(f"score {n}", hit=n == 0) for n in range(17)], "17 categories: at most 16"),
])
def test_a_bad_categories_file_is_refused_with_what_to_change(tmp_path: Path, entries, message) -> None:
    (tmp_path / "categories.toml").write_text(toml_of(entries))
    with pytest.raises(PromptError) as error:
        load_categories(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'categories.toml'}: ")
    assert message in str(error.value)


def test_the_bot_does_not_start_with_a_bad_categories_file(variant: Path, make_settings) -> None:
    from bot.services import build_services

    path = variant / "categories.toml"
    path.write_text(path.read_text().replace("hit = true\n", ""))
    with pytest.raises(PromptError, match="no category is a hit"):
        build_services(make_settings(PROMPTS_DIR=str(variant)))


# --- hits and looks -------------------------------------------------------------------------------


def test_hits_are_the_categories_marked_so_whatever_their_names() -> None:
    categories = parse_categories([entry("clear"), entry("spherulites", hit=True), entry("crystals", hit=True),
                                   entry("needles")])
    assert hit_labels(categories) == {"spherulites", "crystals"}
    assert is_hit("spherulites", categories) and not is_hit("needles", categories)
    assert not is_hit("gone", categories) and not is_hit(None, categories)
    assert [c.name for c in hits_present(["crystals", "clear", "spherulites"], categories)] == ["spherulites",
                                                                                                 "crystals"]


def test_a_marco_class_maps_back_only_when_one_category_counts_as_it() -> None:
    categories = load_categories(ROOT / "prompts-labscores")
    assert label_for_marco("clear", categories) == "clear"
    assert label_for_marco("crystals", categories) is None and label_for_marco("other", categories) is None


def test_sixteen_categories_get_sixteen_distinct_letters_hits_saturated_and_the_rest_pale() -> None:
    names = ["clear", "light precipitate", "heavy precipitate", "precipitate", "phase separation", "skin",
             "spherulites", "microcrystals", "needles", "plates", "crystals", "crystal else", "cloudy", "contaminant",
             "dry", "other"]
    hit_names = {"needles", "plates", "crystals", "microcrystals"}
    categories = parse_categories([entry(n, hit=n in hit_names) for n in names])
    assert len({c.letter.casefold() for c in categories}) == 16
    assert all(len(c.letter) == 1 for c in categories)
    letters = {c.name: c.letter for c in categories}
    assert (letters["light precipitate"], letters["phase separation"], letters["skin"]) == ("L", "S", "K")
    hits = [c for c in categories if c.hit]
    assert {c.colour for c in hits} <= set(HIT_COLOURS) and len({c.colour for c in hits}) == 4
    assert all(ink(c.colour) == "#ffffff" for c in hits if c.colour != "#e69f00")
    others = [c for c in categories if not c.hit]
    assert {c.colour for c in others} <= set(PALE_COLOURS) and all(ink(c.colour) == "#1a1a1a" for c in others)


def test_a_lab_may_set_its_own_letters_and_colours() -> None:
    categories = parse_categories([entry("clear", letter="0", colour="#FFFFFF"),
                                   entry("crystals", hit=True, letter="9", colour="#000000")])
    assert [(c.letter, c.colour) for c in categories] == [("0", "#ffffff"), ("9", "#000000")]
    assert ink("#000000") == "#ffffff" and ink("#ffffff") == "#1a1a1a"


def test_a_category_built_in_code_has_no_look_until_chosen() -> None:
    assert Category("crystals", "d").letter == "" and Category("crystals", "d").hit is False
