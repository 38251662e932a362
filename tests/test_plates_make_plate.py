"""benchmarks/make_plate.py builds plate zips that the plate modules read as the plate it is."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from benchmarks.make_plate import write_plate_zip
from bot.plates.archive import Skip, ZipLimits, iter_images, open_zip, survey
from bot.plates.naming import plate_name, plate_positions
from bot.plates.wells import plate_size


def test_a_96_well_plate_reads_back_well_by_well(tmp_path: Path) -> None:
    path = tmp_path / "plate42_2026-11-26.zip"
    members = write_plate_zip(path, wells=96, drops=1)
    limits = ZipLimits()
    with open_zip(path, path.name, limits) as archive:
        contents = survey(archive, path.name, limits)
        names = [e.name for e in contents.images]
        plate = plate_name(path.name, names)
        positions = list(plate_positions(names, plate).values())
        digests = set()
        for member in iter_images(archive, contents, limits):
            assert member.data is not None
            digests.add(hashlib.sha256(member.data).hexdigest())
            if len(digests) == 1:
                with Image.open(io.BytesIO(member.data)) as image:
                    assert (image.format, image.size) == ("JPEG", (1280, 960))
    assert plate == "plate42"
    assert positions == [m.position for m in members] and len(set(positions)) == 96
    assert plate_size(p for p in positions if p) == 96
    assert len(digests) == 96  # no two images alike: no cache hits in a benchmark
    assert contents.skipped_counts() == {Skip.NOT_IMAGE: 2}
    assert {m.source_label for m in members} == {"clear", "crystals", "precipitate", "other"}
