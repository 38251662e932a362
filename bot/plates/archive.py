"""Reading a plate's zip safely, one member at a time: nothing is extracted to disk, and at most one
member's bytes are in memory.

`survey` reads only the zip's directory: it lists the images to classify and counts what it skips
(unsafe paths, links, encrypted members, zips in the zip, files that are not images, zip bombs), and
refuses a zip over the limits as a whole. `read_image` then reads one image's bytes, checked again
as they are decompressed, so each job of a plate can read its own image when it runs.
Errors are `ArchiveError`s, whose message is for the lab member who uploaded the zip.
"""
from __future__ import annotations

import re
import stat
import struct
import zipfile
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from os import PathLike
from pathlib import PurePosixPath
from typing import BinaryIO, Iterator

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"})
ARCHIVE_EXTENSIONS = frozenset({".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst"})
SYSTEM_FILES = frozenset({"__macosx", ".ds_store", "thumbs.db", "desktop.ini"})
READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_OF_DIRECTORY = b"PK\x06\x06"
_MIB = 1024 * 1024

Source = str | PathLike[str] | BinaryIO


@dataclass(frozen=True)
class ZipLimits:
    max_images: int = 1536  # 384 wells x 4 drops
    max_members: int = 10_000  # entries of any kind, checked before the zip's directory is read
    max_total_bytes: int = 4096 * _MIB  # uncompressed, all images together
    max_member_bytes: int = 50 * _MIB  # uncompressed, one image
    max_ratio: float = 100.0  # uncompressed / compressed size of one member; zip bombs reach 1,000 and more


class Skip(Enum):
    """Why a member is not classified; the value names the group ("links: 3")."""

    SYSTEM = "system files like .DS_Store"
    UNSAFE_PATH = "with a path outside the zip (.. or absolute)"
    LINK = "links"
    ENCRYPTED = "encrypted"
    NESTED_ARCHIVE = "archives inside the zip"
    NOT_IMAGE = "not images"
    DUPLICATE = "with a name that appears twice"  # both are skipped: which one is meant?
    UNREADABLE_METHOD = "compressed with a method I cannot read"
    TOO_LARGE = "over the size limit for one image"
    ZIP_BOMB = "compressed suspiciously well (possible zip bomb)"


@dataclass(frozen=True)
class Entry:
    """An image member: its path inside the zip and its declared sizes."""

    name: str
    size: int
    compressed_size: int


@dataclass(frozen=True)
class Contents:
    images: tuple[Entry, ...]
    skipped: tuple[tuple[str, Skip], ...]  # (member name, why)

    def skipped_counts(self) -> dict[Skip, int]:
        return dict(Counter(reason for _, reason in self.skipped))


@dataclass(frozen=True)
class Member:
    """One image read from the zip: its bytes, or why they could not be read."""

    entry: Entry
    data: bytes | None
    error: str | None = None


class ArchiveError(ValueError):
    """A zip (or one member) we cannot use; str() is a short message for the person who sent it."""


@contextmanager
def open_zip(source: Source, zip_name: str, limits: ZipLimits) -> Iterator[zipfile.ZipFile]:
    """The zip, opened for reading; a corrupt file or one with too many members raises ArchiveError."""
    with _binary(source) as file:
        declared = _declared_member_count(file)
        if declared is None:
            raise _corrupt(zip_name)
        if declared > limits.max_members:
            raise ArchiveError(f"{zip_name} holds {declared:,} files; the most I read in one zip is "
                               f"{limits.max_members:,}. Zip only the plate's images and upload that.")
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise _corrupt(zip_name) from exc
        with archive:
            yield archive


def survey(archive: zipfile.ZipFile, zip_name: str, limits: ZipLimits) -> Contents:
    """The images to classify and the members skipped, from the zip's directory alone."""
    images: list[Entry] = []
    skipped: list[tuple[str, Skip]] = []
    name_counts = Counter(info.filename for info in archive.infolist())
    for info in archive.infolist():
        if info.is_dir():
            continue
        reason = _skip_reason(info, name_counts[info.filename] > 1, limits)
        if reason:
            skipped.append((info.filename, reason))
        else:
            images.append(Entry(info.filename, info.file_size, info.compress_size))
    _check_totals(images, zip_name, limits)
    return Contents(tuple(images), tuple(skipped))


def read_image(archive: zipfile.ZipFile, entry: Entry, limits: ZipLimits) -> bytes:
    """One image's bytes, decompressed in memory; a damaged member raises ArchiveError.

    zipfile reads no further than the size the zip's directory declares, which survey checked (and
    is checked again here, should the limits have changed since), and then checks the CRC.
    """
    try:
        info = archive.getinfo(entry.name)  # unique: survey skips every member of a name that appears twice
        if info.file_size > limits.max_member_bytes:
            raise ArchiveError(f"{entry.name} is over the size limit for one image")
        with archive.open(info) as member:
            return member.read()
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, RuntimeError, NotImplementedError,
            ValueError, struct.error) as exc:
        raise ArchiveError(f"{entry.name} is damaged inside the zip ({exc}); zip the images again") from exc


def iter_images(archive: zipfile.ZipFile, contents: Contents, limits: ZipLimits) -> Iterator[Member]:
    """Each image in turn; only the current one's bytes are held."""
    for entry in contents.images:
        try:
            yield Member(entry, read_image(archive, entry, limits))
        except ArchiveError as exc:
            yield Member(entry, None, str(exc))


def _skip_reason(info: zipfile.ZipInfo, duplicate: bool, limits: ZipLimits) -> Skip | None:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    checks = [
        (Skip.SYSTEM, any(part.casefold() in SYSTEM_FILES for part in path.parts) or path.name.startswith(".")),
        (Skip.UNSAFE_PATH, _is_unsafe(info.filename)),
        (Skip.LINK, info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)),
        (Skip.ENCRYPTED, bool(info.flag_bits & 0x1)),
        (Skip.NESTED_ARCHIVE, path.suffix.lower() in ARCHIVE_EXTENSIONS),
        (Skip.NOT_IMAGE, path.suffix.lower() not in IMAGE_EXTENSIONS),
        (Skip.DUPLICATE, duplicate),
        (Skip.UNREADABLE_METHOD, info.compress_type not in READABLE_METHODS),
        (Skip.TOO_LARGE, info.file_size > limits.max_member_bytes),
        (Skip.ZIP_BOMB, info.file_size > limits.max_ratio * max(info.compress_size, 1)),
    ]
    return next((reason for reason, applies in checks if applies), None)


def _is_unsafe(name: str) -> bool:
    normal = name.replace("\\", "/")
    return normal.startswith("/") or bool(re.match(r"[A-Za-z]:", normal)) or ".." in normal.split("/")


def _check_totals(images: list[Entry], zip_name: str, limits: ZipLimits) -> None:
    if not images:
        raise ArchiveError(f"{zip_name} holds no images I can read (JPEG, PNG, TIFF, BMP, WebP or GIF). "
                           "Zip the plate's image files themselves and upload that.")
    if len(images) > limits.max_images:
        raise ArchiveError(f"{zip_name} holds {len(images):,} images; the most I classify from one zip is "
                           f"{limits.max_images:,}. Split the plate into several zips and upload them one by one.")
    total = sum(entry.size for entry in images)
    if total > limits.max_total_bytes:
        raise ArchiveError(f"{zip_name} unpacks to {_megabytes(total)} of images; the most I read from one zip "
                           f"is {_megabytes(limits.max_total_bytes)}. Split it into several zips, or export "
                           "the images as JPEG.")


def _megabytes(size: int) -> str:
    return f"{size / _MIB:,.1f} MB" if size < 100 * _MIB else f"{size / _MIB:,.0f} MB"


def _declared_member_count(file: BinaryIO) -> int | None:
    """How many members the zip's end record announces (None when there is none: not a zip, or cut
    short), read before zipfile builds its directory in memory."""
    size = file.seek(0, 2)
    tail_length = min(size, 22 + 0xFFFF)  # the end record, and a comment of at most 64 KiB
    file.seek(size - tail_length)
    tail = file.read(tail_length)
    at = tail.rfind(_END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < 22:
        return None
    (count,) = struct.unpack_from("<H", tail, at + 10)
    locator = tail[max(at - 20, 0):at]
    if count != 0xFFFF or not locator.startswith(_ZIP64_LOCATOR):
        return count
    (zip64_end,) = struct.unpack_from("<Q", locator, 8)
    file.seek(zip64_end)
    record = file.read(56)
    return struct.unpack_from("<Q", record, 32)[0] if record.startswith(_ZIP64_END_OF_DIRECTORY) else None


@contextmanager
def _binary(source: Source) -> Iterator[BinaryIO]:
    if hasattr(source, "read"):
        yield source  # type: ignore[misc]  # the caller's open file: the caller closes it
        return
    with open(source, "rb") as file:  # type: ignore[arg-type]
        yield file


def _corrupt(zip_name: str) -> ArchiveError:
    return ArchiveError(f"{zip_name} is not a zip file I can read: it may be damaged or only partly uploaded. "
                        "Zip the images again and upload the new file.")
