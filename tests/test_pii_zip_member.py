"""The ZIP member reader of the leak scanner (ISA-L's inflate) against `zipfile`'s own: the
same bytes for every member `zipfile` writes, and the same refusals of a damaged one."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from typing import IO

import pytest

from audit.facts.pii.archive import MemberReader, open_member


def text(seed: int, size: int) -> bytes:
    """Compressible text, as XML is, with enough noise to make several deflate blocks."""
    rng = random.Random(seed)
    words = [b"<c r=\"A1\">", b"</c>", b"\xd0\x98\xd0\x98\xd0\x9d ", b"770101300123\n"]
    return b"".join(rng.choice(words) + str(rng.random()).encode() for _ in range(size // 24))


def package(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, *,
            zip64: bool = False, streamed: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members.items():
            if streamed or zip64:      # sizes after the data (a data descriptor), or ZIP64
                with archive.open(name, "w", force_zip64=zip64) as member:
                    member.write(content)
            else:
                archive.writestr(name, content)
    return buffer.getvalue()


def read_all(reader: MemberReader | IO[bytes], sizes: list[int]) -> bytes:
    parts, n = [], 0
    while part := reader.read(sizes[n % len(sizes)]):
        parts.append(part)
        n += 1
    return b"".join(parts)


@pytest.mark.parametrize("options", [
    {}, {"method": zipfile.ZIP_STORED}, {"streamed": True}, {"zip64": True}])
def test_every_member_reads_as_zipfile_reads_it(options: dict[str, object]) -> None:
    members = {"xl/worksheets/sheet1.xml": text(1, 3_000_000), "empty.xml": b"",
               "small.xml": b"<x/>", "пациенты/список.csv": b"770101300123\n"}
    content = package(members, **options)            # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in archive.infolist():
            with open_member(archive, info) as member:
                assert isinstance(member, MemberReader)
                assert read_all(member, [1, 4096, 1 << 20, 77]) == members[info.filename]


def test_other_methods_are_read_by_zipfile() -> None:
    content = package({"list.csv": text(2, 100_000)}, zipfile.ZIP_BZIP2)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info, = archive.infolist()
        with open_member(archive, info) as member:
            assert not isinstance(member, MemberReader)
            assert member.read() == text(2, 100_000)


def damaged(content: bytes, at: int, value: bytes) -> bytes:
    return content[:at] + value + content[at + len(value):]


def first_member(content: bytes) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    return archive, archive.infolist()[0]


@pytest.mark.parametrize("damage", ["crc", "deflate", "declared smaller", "truncated",
                                    "local header", "local name"])
def test_a_damaged_member_is_refused_as_zipfile_refuses_it(damage: str) -> None:
    original = text(3, 400_000)
    content = package({"sheet.xml": original})
    archive, info = first_member(content)
    central = content.rindex(b"PK\x01\x02")
    if damage == "crc":          # in the central directory, which both readers trust
        content = damaged(content, central + 16, struct.pack("<L", info.CRC ^ 1))
    elif damage == "deflate":
        content = damaged(content, info.header_offset + 2000, b"\xff" * 64)
    elif damage == "declared smaller":      # a lying header inflates no further than it says
        content = damaged(content, central + 24, struct.pack("<L", 1000))
    elif damage == "truncated":           # the compressed data ends before the stream does
        content = damaged(content, central + 20, struct.pack("<L", 5000))
    elif damage == "local name":     # the data is another member's than the directory says
        content = damaged(content, info.header_offset + 30, b"x")
    else:
        content = damaged(content, info.header_offset, b"XX")
    archive, info = first_member(content)
    # zipfile's errors vary with the damage (zlib's own, EOFError); the reader's do not.
    for opened, errors in ((lambda: archive.open(info), (zipfile.BadZipFile, zlib.error,
                                                         EOFError)),
                           (lambda: MemberReader(archive, info), zipfile.BadZipFile)):
        with pytest.raises(errors), opened() as member:
            assert len(read_all(member, [65536])) <= info.file_size
