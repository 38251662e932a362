"""The lab's categories as data: which are hits, which MARCO class each counts as, how the plate map
and the charts draw each. Pure: `prompts/categories.toml`'s entries -> checked `Category` records.

A lab may replace MARCO's four categories with its own score set (say clear, precipitate, phase
separation, skin, microcrystals, crystals); everything that asks "is this a hit?" asks `is_hit` /
`hit_labels` here, never a category's name. Only `name` and `definition` are shown to the model: the
other fields shape what people see, so changing them changes no answer (and no prompt fingerprint).
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

MARCO_CLASSES = ("clear", "crystals", "precipitate", "other")  # the classes of the MARCO data set
RESERVED_NAMES = ("error",)  # what an evaluation calls an image it could not classify
MAX_CATEGORIES = 16
MAX_NAME_CHARS = 40  # "Correct to <name>" stays within Slack's 75 characters of an option's text
STAR = "★"  # the crystals' mark on the plate map (drawn as a star marker)
MARK_SYMBOLS = (STAR, "?", "+")  # marks besides letters and digits; "!" and "–" mark unreadable and failed drops
KEYS = ("name", "definition", "emoji", "reaction", "hit", "marco", "letter", "colour")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")

# Default looks for MARCO's own names, as the plate map has always drawn them (Okabe-Ito colours).
KNOWN_LOOKS = {"clear": ("C", "#c6e4f7"), "precipitate": ("P", "#f2e79a"), "other": ("?", "#e4c3d8")}
CRYSTALS_LOOK = (STAR, "#d55e00")  # a hit called "crystals": vermillion with a star
# Further categories: pale tints for the others, saturated colours for hits, so hits stand out.
PALE_COLOURS = ("#c6e4f7", "#f2e79a", "#e4c3d8", "#f9d4a8", "#b3e2cd", "#d9d2ec", "#e0e0c8")
HIT_COLOURS = ("#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")


@dataclass(frozen=True)
class Category:
    name: str
    definition: str
    emoji: str = ""  # shown in Slack messages, e.g. ":gem:"
    reaction: str = ""  # emoji name for the outcome reaction, e.g. "gem"
    hit: bool = False  # a drop of this category is a hit: its own reply, the hits channel, new and lost hits
    marco: str | None = None  # the MARCO class it counts as (eval --marco, few-shot examples labelled by class)
    letter: str = ""  # its mark on the plate map ("" until defaults are chosen)
    colour: str = ""  # its fill on the plate map and in charts, "#rrggbb"


def find_category(categories: Sequence[Category], name: str) -> Category:
    """The category called `name`; a plain stand-in for one since removed from categories.toml."""
    return next((c for c in categories if c.name == name), Category(name, "", ":grey_question:", "grey_question"))


def hit_labels(categories: Iterable[Category]) -> frozenset[str]:
    """The labels that make a drop a hit."""
    return frozenset(c.name for c in categories if c.hit)


def is_hit(label: str | None, categories: Iterable[Category]) -> bool:
    """Whether a call of `label` is a hit (a label that is no category any more is not)."""
    return label is not None and label in hit_labels(categories)


def several_hits(categories: Iterable[Category]) -> bool:
    """Whether there is more than one hit category (then messages name each hit's category)."""
    return sum(c.hit for c in categories) > 1


def hits_present(labels: Iterable[str], categories: Sequence[Category]) -> list[Category]:
    """The hit categories among `labels`, in categories.toml's order."""
    present = set(labels)
    return [c for c in categories if c.hit and c.name in present]


def label_for_marco(marco_class: str, categories: Sequence[Category]) -> str | None:
    """The one category that counts as `marco_class`; None when none or several do (then the mapping is
    ambiguous: a MARCO "other" may be the lab's phase separation or its skin)."""
    matching = [c.name for c in categories if c.marco == marco_class]
    return matching[0] if len(matching) == 1 else None


def parse_categories(entries: Sequence[dict[str, Any]]) -> tuple[Category, ...]:
    """categories.toml's [[category]] entries -> categories with their map letters and colours chosen.
    Raises ValueError naming the entry and what to change."""
    if len(entries) > MAX_CATEGORIES:
        raise ValueError(f"{len(entries)} categories: at most {MAX_CATEGORIES} fit the buttons and the plate map")
    categories = tuple(_category(number, entry) for number, entry in enumerate(entries, start=1))
    seen: dict[str, str] = {}
    for category in categories:
        key = label_key(category.name)
        if key in seen:
            raise ValueError(f"categories {seen[key]!r} and {category.name!r} have the same name (case, spaces and "
                             "dashes are ignored when the model's answer is read): rename one")
        seen[key] = category.name
    if not any(c.hit for c in categories):
        raise ValueError("no category is a hit: add `hit = true` to the categories that count as hits "
                         "(for example crystals)")
    categories = with_looks(categories)
    _check_unique([c.letter.casefold() for c in categories], categories, "letter")
    return categories


def label_key(value: str) -> str:
    """A label as compared with the model's answer: case, spaces, dashes and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", value).casefold()


def _category(number: int, entry: dict[str, Any]) -> Category:
    name = str(entry.get("name", "")).strip()
    where = f"[[category]] {name!r}" if name else f"[[category]] number {number}"
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; the keys are {', '.join(KEYS)}")
    for key in ("name", "definition"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ValueError(f"{where} has no {key}")
    if name.casefold() in RESERVED_NAMES or len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{where}: a name must have at most {MAX_NAME_CHARS} characters and not be "
                         f"{' or '.join(map(repr, RESERVED_NAMES))}")
    hit, marco = entry.get("hit", False), entry.get("marco")
    if not isinstance(hit, bool):
        raise ValueError(f"{where}: hit must be true or false (no quotes), not {hit!r}")
    if marco is not None and marco not in MARCO_CLASSES:
        raise ValueError(f"{where}: marco must be one of {', '.join(MARCO_CLASSES)}, not {marco!r}")
    reaction = str(entry.get("reaction", ""))
    if re.search(r"[\s:]", reaction):
        raise ValueError(f"{where}: reaction is an emoji's name without colons, e.g. \"gem\", not {reaction!r}")
    letter, colour = str(entry.get("letter", "")), str(entry.get("colour", ""))
    if letter and not (len(letter) == 1 and (letter.isalnum() or letter in MARK_SYMBOLS)):
        raise ValueError(f"{where}: letter must be one letter, digit or one of {' '.join(MARK_SYMBOLS)}, "
                         f"not {letter!r}")
    if colour and not _COLOUR.fullmatch(colour):
        raise ValueError(f"{where}: colour must be written #rrggbb (e.g. \"#d55e00\"), not {colour!r}")
    return Category(name, entry["definition"], str(entry.get("emoji", "")), reaction, hit, marco, letter,
                    colour.lower())


def _check_unique(values: Sequence[str], categories: Sequence[Category], what: str) -> None:
    for index, value in enumerate(values):
        if value in values[:index]:
            other = categories[values.index(value)]
            raise ValueError(f"categories {other.name!r} and {categories[index].name!r} have the same {what} "
                             f"{getattr(other, what)!r}: set `{what}` on one of them to tell them apart")


def with_looks(categories: Sequence[Category]) -> tuple[Category, ...]:
    """Each category with a letter and a colour: its own, else MARCO's usual look for MARCO's names (and a
    hit called crystals), else the first free letter of its name and the next free colour (pale for
    others, saturated for hits)."""
    chosen = [(c.letter or _known(c)[0], c.colour or _known(c)[1]) for c in categories]
    letters = {letter.casefold() for letter, _ in chosen if letter}
    colours = {colour for _, colour in chosen if colour}
    result = []
    for category, (letter, colour) in zip(categories, chosen):
        if not letter:
            letter = _free_letter(category.name, letters)
            letters.add(letter.casefold())
        if not colour:
            palette = HIT_COLOURS if category.hit else PALE_COLOURS
            colour = next((c for c in palette if c not in colours), palette[len(result) % len(palette)])
            colours.add(colour)
        result.append(replace(category, letter=letter, colour=colour))
    return tuple(result)


def _known(category: Category) -> tuple[str, str]:
    if category.name == "crystals" and category.hit:
        return CRYSTALS_LOOK
    return KNOWN_LOOKS.get(category.name, ("", "")) if not category.hit else ("", "")


def _free_letter(name: str, taken: set[str]) -> str:
    """The name's first letter, else its words' initials, else any of its letters, else A to Z and 0 to 9."""
    words = re.findall(r"[^\W_]+", name)
    initials, others = [w[0] for w in words], [ch for w in words for ch in w[1:]]
    candidates = initials + others + list(string.ascii_uppercase + string.digits)
    return next(ch.upper() for ch in candidates if ch.upper().casefold() not in taken)


def ink(colour: str) -> str:
    """The mark's colour on a fill: white on a dark or saturated fill, near-black on a pale one."""
    red, green, blue = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#ffffff" if luminance < 0.3 else "#1a1a1a"
