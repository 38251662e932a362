"""How a message's files are handled (bot.slack.intake.sort_upload) and how a plate's image is named
in its replies. Pure."""
from __future__ import annotations

from bot.plates.wells import Position, Well
from bot.slack.intake import sort_upload
from bot.slack.plates import image_label


def file(name: str, mimetype: str = "image/jpeg", filetype: str = "jpg") -> dict:
    return {"id": f"F-{name}", "name": name, "mimetype": mimetype, "filetype": filetype,
            "url_private_download": f"https://files.slack.com/{name}"}


def names(files: list[dict]) -> list[str]:
    return [f["name"] for f in files]


def test_zips_are_plates_and_other_files_are_left_alone():
    upload = sort_upload([file("plate42.zip", "application/zip", "zip"), file("notes.pdf", "application/pdf", "pdf"),
                          file("drop.jpg")])
    assert (names(upload.zips), upload.plate_images, names(upload.images)) == (["plate42.zip"], [], ["drop.jpg"])


def test_two_or_more_images_named_by_well_make_a_plate_and_the_rest_are_answered_one_by_one():
    upload = sort_upload([file("A1.jpg"), file("plate7_B12_2.png", "image/png", "png"), file("overview.jpg")])
    assert names(upload.plate_images) == ["A1.jpg", "plate7_B12_2.png"]
    assert names(upload.images) == ["overview.jpg"]


def test_a_single_image_with_a_well_is_answered_on_its_own():
    upload = sort_upload([file("A1.jpg"), file("drop.jpg")])
    assert upload.plate_images == [] and names(upload.images) == ["A1.jpg", "drop.jpg"]


def test_the_id_the_images_share_is_not_read_as_a_well():
    upload = sort_upload([file("P12_A01.jpg"), file("P12_A02.jpg")])  # P12 is the plate, not well P12
    assert names(upload.plate_images) == ["P12_A01.jpg", "P12_A02.jpg"]


def test_a_plate_image_is_named_by_its_well_and_file():
    assert image_label("day3/12345_B04_1_Vis.jpg", Position(Well(1, 4))) == "B4 · 12345_B04_1_Vis.jpg"
    assert image_label("B4_d2.jpg", Position(Well(1, 4), 2)) == "B4 drop 2 · B4_d2.jpg"
    assert image_label("notes/overview.jpg", None) == "overview.jpg"
