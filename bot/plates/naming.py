"""A plate's name, so that the same plate imaged again is recognised: `plate42_2026-11-26.zip` and
`plate42_2026-12-01_0930.zip` are both plate42. Pure."""
from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Sequence

from bot.plates.stamps import remove_stamps
from bot.plates.wells import PLATE_SHAPES, Position, parse_hwi_name, parse_position

# Names that say nothing about which plate it is: what zip tools, browsers and imagers call things.
GENERIC_WORDS = frozenset({
    "archive", "compressed", "download", "downloads", "export", "files", "folder", "image", "images", "img",
    "inspection", "new", "photos", "pictures", "plate", "untitled", "vis", "visible", "uv", "sonicc", "well",
    "wells", "drop", "drops", "scan", "copy",
})
_COPY_SUFFIX = re.compile(r"(?:[-_ ]*\(\d+\)|[-_ ]+copy(?:[-_ ]*\d+)?)+$", re.IGNORECASE)  # `x (1)`, `x copy 2`
_INSPECTION_COUNTER = re.compile(r"(?<![a-z0-9])(?:day|inspection|insp|time ?point|tp)[-_ ]?\d+(?![a-z0-9])",
                                 re.IGNORECASE)
_EDGE_SEPARATORS = re.compile(r"^[-_.\s]+|[-_.\s]+$")
_SEPARATOR_RUNS = re.compile(r"([-_.\s])[-_.\s]+")
_TOKEN_SEPARATORS = re.compile(r"[-_.\s/\\]+")


def plate_name(zip_name: str | None, image_paths: Sequence[str]) -> str | None:
    """The plate's name: the zip's name without date and time stamps, inspection counters (`day3`) or
    copy suffixes (`(1)`); when that leaves nothing telling (`Archive.zip`), the id the images' names
    share; failing that, the zip's name as it is, or None for loose images with nothing shared."""
    stem = _zip_stem(zip_name) if zip_name else ""
    cleaned = _tidy(_INSPECTION_COUNTER.sub("_", remove_stamps(_COPY_SUFFIX.sub("", stem))))
    if cleaned and cleaned.casefold() not in GENERIC_WORDS:
        return cleaned
    return shared_plate_id(image_paths) or cleaned or stem or None


def shared_plate_id(image_paths: Sequence[str]) -> str | None:
    """The HWI plate id all the images' names carry (`X000015862` of `X0000158620361202008111512.jpg`);
    else the first word every image's path has that is no drop, stamp or generic word (`12345` of
    `12345_A01_1_Vis_20261126_093000.jpg`, ...), which needs two images at least; or None.

    A shared word that looks like a well (`P12` of `P12_A01.jpg`, `P12_A02.jpg`) is the id only when
    there is no other and the images still have wells without it.
    """
    hwi_ids = {hwi.plate_id if (hwi := parse_hwi_name(path)) else None for path in image_paths}
    if len(hwi_ids) == 1 and None not in hwi_ids:
        return hwi_ids.pop()
    if len(image_paths) < 2:
        return None
    token_lists = [_path_tokens(path) for path in image_paths]
    shared = set.intersection(*(set(t.casefold() for t in tokens) for tokens in token_lists))
    candidates = [t for t in token_lists[0] if t.casefold() in shared and _may_be_plate_id(t)]
    plain = [t for t in candidates if parse_position(t) is None]
    well_like = [t for t in candidates
                 if parse_position(t) is not None and any(parse_position(p, plate_ids=[t]) for p in image_paths)]
    return next(iter(plain + well_like), None)


def plate_positions(image_paths: Sequence[str], plate: str | None) -> dict[str, Position | None]:
    """Each image's well and drop (None: no well in its name), reading neither the plate's name nor the
    id its images share as a well (`P12_A01.jpg` in `plate42.zip` is A1).

    The names are read as a 1536-well plate's (rows to AF, columns to 48) when that gives more of them
    a well than reading them as a 384-well plate's: `AF48.jpg` is a well then, while `T4_A01.jpg` of a
    96-well plate stays A1 (on 1536 wells T4 is a well too, and the name would name two).
    """
    ids = [i for i in (plate, shared_plate_id(image_paths)) if i]
    readings = [{path: parse_position(path, plate_ids=ids, layout=layout) for path in image_paths}
                for layout in sorted(PLATE_SHAPES)[1:]]  # 384, then 1536
    return max(readings, key=lambda reading: sum(position is not None for position in reading.values()))


def file_stem(plate: str) -> str:
    """A plate's name as the stem of a file name: `plate 42/B` -> `plate_42_B`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", plate).strip("_.") or "plate"


def _may_be_plate_id(token: str) -> bool:
    return token.casefold() not in GENERIC_WORDS and not (token.isdigit() and len(token) < 3)


def _path_tokens(path: str) -> list[str]:
    without_extension = str(PurePosixPath(path.replace("\\", "/")).with_suffix(""))
    return [t for t in _TOKEN_SEPARATORS.split(remove_stamps(without_extension, " ")) if t]


def _zip_stem(zip_name: str) -> str:
    name = PurePosixPath(zip_name.replace("\\", "/")).name
    return name[:-4] if name.lower().endswith(".zip") else name


def _tidy(name: str) -> str:
    return _SEPARATOR_RUNS.sub(r"\1", _EDGE_SEPARATORS.sub("", name))
