"""bot.plates.archive: plate zips read one member at a time; hostile members skipped and counted,
hostile or broken zips refused with a message for the lab member."""
from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from bot.plates.archive import ArchiveError, Skip, ZipLimits, iter_images, open_zip, read_image, survey

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # image-like bytes that deflate hardly at all
LIMITS = ZipLimits()


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def contents_of(path: Path, limits: ZipLimits = LIMITS):
    with open_zip(path, path.name, limits) as archive:
        return survey(archive, path.name, limits)


def patch(path: Path, signature: bytes, offset: int, value: bytes, occurrence: int = 0) -> None:
    """Overwrite bytes at `offset` after the `occurrence`-th header with `signature`."""
    data = bytearray(path.read_bytes())
    at = -1
    for _ in range(occurrence + 1):
        at = data.index(signature, at + 1)
    data[at + offset:at + offset + len(value)] = value
    path.write_bytes(bytes(data))


def test_images_are_read_one_by_one_and_the_rest_is_counted(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "plate42.zip", {
        "plate42/A01_1.jpg": JPEG + b"1", "plate42/A02_1.JPG": JPEG + b"2", "plate42/B1.tif": JPEG + b"3",
        "plate42/plate42.xml": b"<plate/>", "plate42/notes.txt": b"imaged at 20 C",
        "__MACOSX/plate42/._A01_1.jpg": b"\x00\x05\x16\x07", "plate42/.DS_Store": b"\x00",
    })
    with open_zip(path, "plate42.zip", LIMITS) as archive:
        contents = survey(archive, "plate42.zip", LIMITS)
        members = list(iter_images(archive, contents, LIMITS))
    assert [e.name for e in contents.images] == ["plate42/A01_1.jpg", "plate42/A02_1.JPG", "plate42/B1.tif"]
    assert [m.data for m in members] == [JPEG + b"1", JPEG + b"2", JPEG + b"3"]
    assert contents.skipped_counts() == {Skip.NOT_IMAGE: 2, Skip.SYSTEM: 2}


def test_an_open_file_works_as_well_as_a_path(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"A1.png": JPEG}, zipfile.ZIP_STORED)
    with open_zip(io.BytesIO(path.read_bytes()), "p.zip", LIMITS) as archive:
        entry, = survey(archive, "p.zip", LIMITS).images
        assert read_image(archive, entry, LIMITS) == JPEG


def test_paths_outside_the_zip_are_skipped(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"../../etc/A1.jpg": JPEG, "/abs/A2.jpg": JPEG, "C:/x/A3.jpg": JPEG,
                                           "ok/../A4.jpg": JPEG, "..\\A5.jpg": JPEG, "A6.jpg": JPEG})
    contents = contents_of(path)
    assert [e.name for e in contents.images] == ["A6.jpg"]
    assert contents.skipped_counts() == {Skip.UNSAFE_PATH: 5}


def test_links_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("A1.jpg")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("A2.jpg", JPEG)
    contents = contents_of(path)
    assert [e.name for e in contents.images] == ["A2.jpg"]
    assert contents.skipped == (("A1.jpg", Skip.LINK),)


def test_encrypted_members_are_skipped(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"A1.jpg": JPEG, "A2.jpg": JPEG})
    patch(path, b"PK\x01\x02", 8, b"\x01\x00")  # the first member's central directory flags: encrypted
    contents = contents_of(path)
    assert [e.name for e in contents.images] == ["A2.jpg"]
    assert contents.skipped == (("A1.jpg", Skip.ENCRYPTED),)


def test_nested_archives_are_skipped(tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "inner.zip", {"A1.jpg": JPEG}).read_bytes()
    path = write_zip(tmp_path / "p.zip", {"more/inner.zip": inner, "older.tar.gz": b"\x1f\x8b", "A2.jpg": JPEG})
    assert contents_of(path).skipped_counts() == {Skip.NESTED_ARCHIVE: 2}


def test_a_zip_bomb_member_is_skipped(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"A1.jpg": bytes(20 * 1024 * 1024), "A2.jpg": JPEG})
    contents = contents_of(path)
    assert contents.skipped == (("A1.jpg", Skip.ZIP_BOMB),)
    assert [e.name for e in contents.images] == ["A2.jpg"]


def test_a_member_over_the_size_limit_is_skipped(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"A1.jpg": JPEG * 3, "A2.jpg": JPEG}, zipfile.ZIP_STORED)
    limits = ZipLimits(max_member_bytes=len(JPEG) + 1)
    assert contents_of(path, limits).skipped == (("A1.jpg", Skip.TOO_LARGE),)


def test_a_member_lying_about_its_size_is_read_no_further_and_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"A1.jpg": bytes(2 * 1024 * 1024)})
    patch(path, b"PK\x01\x02", 24, (1000).to_bytes(4, "little"))  # declared uncompressed size: 1,000 bytes
    with open_zip(path, "p.zip", LIMITS) as archive:
        entry, = survey(archive, "p.zip", LIMITS).images
        assert entry.size == 1000
        with pytest.raises(ArchiveError, match="A1.jpg is damaged inside the zip"):
            read_image(archive, entry, LIMITS)


def test_a_damaged_member_is_reported_and_the_others_still_read(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"A1.jpg": JPEG, "A2.jpg": JPEG}, zipfile.ZIP_STORED)
    patch(path, b"PK\x03\x04", 30 + len("A1.jpg") + 100, b"XXXX")  # inside A1's data: its CRC fails
    with open_zip(path, "p.zip", LIMITS) as archive:
        members = list(iter_images(archive, survey(archive, "p.zip", LIMITS), LIMITS))
    assert members[0].data is None and "A1.jpg is damaged inside the zip" in (members[0].error or "")
    assert members[1].data == JPEG and members[1].error is None


def test_duplicate_names_and_unreadable_methods_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("A1.jpg", JPEG)
        archive.writestr("A1.jpg", bytes(20 * 1024 * 1024))  # a bomb behind a harmless name
        archive.writestr("A2.jpg", JPEG)
        archive.writestr("A3.jpg", JPEG)
    patch(path, b"PK\x01\x02", 10, (9).to_bytes(2, "little"), occurrence=2)  # A2: Deflate64, as Windows writes
    assert contents_of(path).skipped == (("A1.jpg", Skip.DUPLICATE), ("A1.jpg", Skip.DUPLICATE),
                                         ("A2.jpg", Skip.UNREADABLE_METHOD))


@pytest.mark.parametrize("damage", ["not a zip", "cut short", "empty"])
def test_a_corrupt_zip_gets_a_message_that_says_so(tmp_path: Path, damage: str) -> None:
    good = write_zip(tmp_path / "good.zip", {"A1.jpg": JPEG, "A2.jpg": JPEG}).read_bytes()
    path = tmp_path / "plate42.zip"
    path.write_bytes({"not a zip": b"Rar!\x1a\x07\x00" + JPEG, "cut short": good[: len(good) // 2],
                      "empty": b""}[damage])
    with pytest.raises(ArchiveError) as caught:
        contents_of(path)
    assert str(caught.value) == ("plate42.zip is not a zip file I can read: it may be damaged or only partly "
                                 "uploaded. Zip the images again and upload the new file.")


def test_too_many_members_are_refused_before_the_directory_is_read(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {f"A{i}.jpg": JPEG for i in range(1, 13)})
    with pytest.raises(ArchiveError, match="p.zip holds 12 files; the most I read in one zip is 10"):
        contents_of(path, ZipLimits(max_members=10))


def test_a_zip_without_images_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {"plate.xml": b"<plate/>", "../A1.jpg": JPEG})
    with pytest.raises(ArchiveError, match=r"p.zip holds no images I can read \(JPEG, PNG, TIFF, BMP, WebP or GIF\)"):
        contents_of(path)


def test_too_many_images_are_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {f"A{i}.jpg": JPEG for i in range(1, 5)})
    with pytest.raises(ArchiveError, match="holds 4 images; the most I classify from one zip is 3. Split"):
        contents_of(path, ZipLimits(max_images=3))
    assert len(contents_of(path, ZipLimits(max_images=4)).images) == 4


def test_too_many_bytes_in_all_are_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.zip", {f"A{i}.jpg": bytes(400_000) + JPEG for i in range(1, 4)})
    with pytest.raises(ArchiveError, match="p.zip unpacks to 1.2 MB of images; the most I read from one zip is 1.0 MB"):
        contents_of(path, ZipLimits(max_total_bytes=1_000_000, max_ratio=1e9))


def test_zip64_member_counts_are_read(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for i in range(1, 4):
            archive.writestr(f"A{i}.jpg", JPEG)
    data = bytearray(path.read_bytes())  # rewrite as a zip64 end record announcing 0xFFFF entries
    end = data.rindex(b"PK\x05\x06")
    directory_size, directory_offset = int.from_bytes(data[end + 12:end + 16], "little"), \
        int.from_bytes(data[end + 16:end + 20], "little")
    zip64_end = (b"PK\x06\x06" + (44).to_bytes(8, "little") + (45).to_bytes(2, "little") * 2 + bytes(8)
                 + (3).to_bytes(8, "little") * 2 + directory_size.to_bytes(8, "little")
                 + directory_offset.to_bytes(8, "little"))
    locator = b"PK\x06\x07" + bytes(4) + end.to_bytes(8, "little") + (1).to_bytes(4, "little")
    record = b"PK\x05\x06" + bytes(4) + b"\xff\xff" * 2 + b"\xff" * 8 + bytes(2)
    path.write_bytes(bytes(data[:end]) + zip64_end + locator + record)
    assert len(contents_of(path).images) == 3
    with pytest.raises(ArchiveError, match="holds 3 files"):
        contents_of(path, ZipLimits(max_members=2))
