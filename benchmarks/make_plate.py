"""Build a realistic plate zip from the MARCO test images, for benchmarks and end-to-end tests.

    .venv/bin/python benchmarks/make_plate.py plate42_2026-11-26.zip [--wells 96|384|1536] [--drops 1-3] [--hwi]

Every well gets 1-3 drops, each a 1280x960 JPEG named as a Rock Maker-like imager names them
(`plate42_2026-11-26/12345_A01_1_Vis_20261126_093000.jpg`), or with --hwi (one drop per well) as HWI
names them (`X000015862-Visible/X0000158620361202611260930.jpg`: well 361 is H25), beside the XML
and text files imagers write. Each image is a MARCO image of a category drawn at random (fixed seed), mirrored and shifted
so that no two images have the same bytes: every one is a fresh model call, never a cache hit.
The images are written into the zip one at a time; the plate is never held in memory.
"""
from __future__ import annotations

import argparse
import io
import random
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.plates.wells import PLATE_SHAPES, ROWS, Position, Well  # noqa: E402

MARCO = ROOT / "tests" / "data" / "marco-gsk"
SHARES = {"clear": 40, "precipitate": 35, "other": 15, "crystals": 10}  # a typical screen's outcomes, in %
BARCODE = "12345"
HWI_PLATE = "X000015862"


@dataclass(frozen=True)
class PlateMember:
    name: str  # path inside the zip
    position: Position
    source_label: str  # the MARCO category of the image it was made from


def write_plate_zip(path: Path, wells: int = 96, drops: int = 1, seed: int = 42, hwi: bool = False) -> list[PlateMember]:
    """Write the plate zip at `path`; return its images in plate order with their source categories."""
    rng = random.Random(seed)
    sources = {label: [_load(p) for p in sorted((MARCO / label).glob("*.jpeg"))] for label in SHARES}
    rows, columns = PLATE_SHAPES[wells]
    folder = f"{HWI_PLATE}-Visible" if hwi else "plate42_2026-11-26"
    members: list[PlateMember] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder}/{BARCODE}.xml", _plate_xml(wells, drops))
        archive.writestr(f"{folder}/imaging_notes.txt", "Imaged at 20 C, visible light, 1 focus level.\n")
        for index, position in enumerate(Position(Well(r, c), d) for r in range(rows)
                                          for c in range(1, columns + 1) for d in range(1, drops + 1)):
            label = rng.choices(list(SHARES), weights=list(SHARES.values()))[0]
            picture = _variant(rng.choice(sources[label]), index)
            seconds = 9 * 3600 + 30 * 60 + index * 2  # one image every 2 s from 09:30:00
            well = position.well.row * columns + position.well.column  # HWI numbers wells row by row
            name = (f"{folder}/{HWI_PLATE}{well:04d}20261126{seconds // 3600:02d}{seconds // 60 % 60:02d}.jpg" if hwi
                    else f"{folder}/{BARCODE}_{ROWS[position.well.row]}{position.well.column:02d}_{position.drop}_Vis_"
                         f"20261126_{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}.jpg")
            archive.writestr(zipfile.ZipInfo(name, (2026, 11, 26, 9, 30, 0)), picture, zipfile.ZIP_STORED)
            members.append(PlateMember(name, position, label))
    return members


def _load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB").resize((1280, 960))


def _variant(image: Image.Image, index: int) -> bytes:
    """The image mirrored and shifted by an amount unique to `index`, as JPEG."""
    flipped = [image, ImageOps.mirror(image), ImageOps.flip(image), image.rotate(180)][index % 4]
    shifted = np.roll(np.asarray(flipped), shift=(index // 4 % 40, index // 160), axis=(0, 1))
    buffer = io.BytesIO()
    Image.fromarray(shifted).save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def _plate_xml(wells: int, drops: int) -> str:
    return (f'<?xml version="1.0"?>\n<plate barcode="{BARCODE}" name="plate42" wells="{wells}" '
            f'drops="{drops}" imaged="2026-11-26T09:30:00"/>\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path)
    parser.add_argument("--wells", type=int, choices=sorted(PLATE_SHAPES), default=96)
    parser.add_argument("--drops", type=int, choices=(1, 2, 3), default=1)
    parser.add_argument("--hwi", action="store_true", help="name the images as HWI does (one drop per well)")
    args = parser.parse_args()
    members = write_plate_zip(args.zip, args.wells, 1 if args.hwi else args.drops, hwi=args.hwi)
    counts = {label: sum(m.source_label == label for m in members) for label in SHARES}
    print(f"wrote {args.zip}: {len(members)} images ({args.zip.stat().st_size / 1e6:.1f} MB), {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
