"""ZIP packages: what kind (OOXML, OpenDocument, a plain archive), whether their declared
sizes are safe to expand, and a bounded walk over a plain archive's members.
"""

from __future__ import annotations

import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, BinaryIO, Self

from isal import isal_zlib

from audit.facts.pii.formats import FileFormat

ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.spreadsheet": FileFormat.ODS,
    b"application/vnd.oasis.opendocument.text": FileFormat.ODT,
}
ZIP_ENCRYPTED_FLAG = 0x1
ZIP_UTF8_FLAG = 0x800            # the member's name is UTF-8, not code page 437
ZIP_AES_METHOD = 99              # WinZip AES; ZipCrypto is the encrypted flag alone
# A member is spooled to memory up to this size, then to a temporary file.
SPOOL_IN_MEMORY = 16 * 1024 * 1024
COPY_CHUNK = 1024 * 1024
# A member's local header: its signature, then the lengths of its name and extra field.
LOCAL_HEADER = struct.Struct("<4s22xHH")
LOCAL_SIGNATURE = b"PK\x03\x04"


@dataclass(frozen=True)
class ZipLimits:
    """How far a ZIP is expanded: a zip bomb is refused before it is inflated."""

    max_depth: int = 3
    max_members: int = 10_000
    max_member_bytes: int = 512 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    # Ordinary documents compress up to about 1:20 (text, XML); a bomb does 1:1000 and more.
    max_ratio: int = 200
    # Below this size the ratio is not judged: tiny members compress oddly.
    ratio_floor: int = 1024 * 1024


class ZipRefused(Exception):
    """The archive is not expanded: it would inflate beyond the limits."""


def package_format(package: zipfile.ZipFile) -> FileFormat:
    """OOXML workbook (XML or binary) or document, OpenDocument spreadsheet or text, or a
    plain ZIP."""
    names = set(package.namelist())
    if "[Content_Types].xml" in names:
        if "xl/workbook.xml" in names:
            return FileFormat.XLSX
        if "xl/workbook.bin" in names:
            return FileFormat.XLSB
        if "word/document.xml" in names:
            return FileFormat.DOCX
    if "mimetype" in names and "content.xml" in names:
        info = package.getinfo("mimetype")
        if info.file_size < 128 and not info.flag_bits & ZIP_ENCRYPTED_FLAG:
            return ODF_MIMETYPES.get(package.read(info).strip(), FileFormat.ZIP)
    return FileFormat.ZIP


def refuse_bomb(package: zipfile.ZipFile, limits: ZipLimits) -> None:
    """Raise ZipRefused when the declared sizes say the archive would inflate too far."""
    members = package.infolist()
    if len(members) > limits.max_members:
        raise ZipRefused(f"{len(members)} members (limit {limits.max_members})")
    total = sum(info.file_size for info in members)
    if total > limits.max_total_bytes:
        raise ZipRefused(f"would expand to {total} bytes (limit {limits.max_total_bytes})")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor and ratio > limits.max_ratio:
            raise ZipRefused(f"a member compressed {ratio:.0f}:1 (limit {limits.max_ratio}:1): "
                             f"a zip bomb")


def encryption_of(info: zipfile.ZipInfo) -> str | None:
    """"aes" or "zipcrypto" for an encrypted member, None for a clear one."""
    if info.compress_type == ZIP_AES_METHOD:
        return "aes"
    if info.flag_bits & ZIP_ENCRYPTED_FLAG:
        return "zipcrypto"
    return None


class MemberReader:
    """A stored or deflated member read from its package's file, inflated by ISA-L (Intel's
    inflate and CRC, three times zlib's: the XML of a workbook inflates 10 to 25 times its
    size, and zlib spent a tenth of its scan inflating it). Never more than the member's
    declared size; its CRC is checked at its end, as `zipfile` checks it."""

    def __init__(self, package: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        raw = package.fp
        assert raw is not None, "an open package"
        raw.seek(info.header_offset)
        name = _local_name(info)
        header = raw.read(LOCAL_HEADER.size + len(name))
        if len(header) < LOCAL_HEADER.size or not header.startswith(LOCAL_SIGNATURE):
            raise zipfile.BadZipFile(f"member {info.filename!r}: no local header")
        _, name_length, extra_length = LOCAL_HEADER.unpack_from(header)
        if name_length != len(name) or header[LOCAL_HEADER.size:] != name:
            # as zipfile refuses it: two names for one member is a crafted package
            raise zipfile.BadZipFile(f"member {info.filename!r}: its local header names "
                                     "another")
        self._raw = raw
        self._at = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
        self._compressed_left = info.compress_size
        self._left = info.file_size
        self._expected_crc = info.CRC
        self._crc = 0
        self._name = info.filename
        self._inflater = (isal_zlib.decompressobj(-15)
                          if info.compress_type == zipfile.ZIP_DEFLATED else None)
        self._input = b""

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, fewer only at the member's end."""
        parts = []
        wanted = min(size, self._left)
        while wanted > 0:
            data = self._next(wanted)
            parts.append(data)
            wanted -= len(data)
        data = b"".join(parts)
        self._crc = isal_zlib.crc32(data, self._crc)
        self._left -= len(data)
        if data and not self._left and self._crc != self._expected_crc:
            raise zipfile.BadZipFile(f"member {self._name!r}: bad CRC-32")
        return data

    def _next(self, wanted: int) -> bytes:
        """At least one byte and at most `wanted`, of what the member inflates to."""
        while True:
            if not self._input:
                self._input = self._compressed(COPY_CHUNK)
            if self._inflater is None:
                data, self._input = self._input[:wanted], self._input[wanted:]
            else:
                try:
                    data = self._inflater.decompress(self._input, wanted)
                except isal_zlib.error as error:  # type: ignore[misc]  # its stub: an instance
                    raise zipfile.BadZipFile(f"member {self._name!r}: {error}") from None
                self._input = self._inflater.unconsumed_tail
            if data:
                return data
            if not self._input and not self._compressed_left:
                raise zipfile.BadZipFile(f"member {self._name!r}: ends before its size")

    def _compressed(self, size: int) -> bytes:
        self._raw.seek(self._at)         # the file is shared with the package's own reads
        data = self._raw.read(min(size, self._compressed_left))
        self._at += len(data)
        self._compressed_left -= len(data)
        if not data and self._compressed_left:
            raise zipfile.BadZipFile(f"member {self._name!r}: truncated")
        return data

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._input = b""


def _local_name(info: zipfile.ZipInfo) -> bytes:
    """The member's name as its local header spells it, if it agrees with the directory."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & ZIP_UTF8_FLAG else "cp437")


def open_member(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes] | MemberReader:
    """A member to read: by ISA-L when it is stored or deflated in the clear, else by
    `zipfile` (other methods; an encrypted member, which it refuses)."""
    if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) and not (
            info.flag_bits & ZIP_ENCRYPTED_FLAG):
        return MemberReader(package, info)
    return package.open(info)


def spooled_member(package: zipfile.ZipFile, info: zipfile.ZipInfo,
                   limits: ZipLimits) -> IO[bytes]:
    """A member expanded into a seekable spool, never beyond its declared size (a lying
    header cannot make it inflate further)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    budget = min(info.file_size, limits.max_member_bytes)
    with open_member(package, info) as member:
        while chunk := member.read(COPY_CHUNK):
            budget -= len(chunk)
            if budget < 0:
                spool.close()
                raise ZipRefused(f"member {info.filename!r} inflates beyond its declared size")
            spool.write(chunk)
    spool.seek(0)
    return spool


MemberScanner = Callable[[str, BinaryIO, int], None]


@dataclass
class ArchiveWalk:
    """What a walk over a plain archive found besides identifiers."""

    scanned: int = 0
    protected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def walk_members(package: zipfile.ZipFile, limits: ZipLimits, depth: int,
                 scan_member: MemberScanner) -> ArchiveWalk:
    """Hand each clear member to `scan_member`; encrypted members are counted, not read."""
    walk = ArchiveWalk()
    for info in package.infolist():
        if info.is_dir():
            continue
        encryption = encryption_of(info)
        if encryption:
            walk.protected.append(f"zip member ({encryption})")
            continue
        if info.file_size > limits.max_member_bytes:
            walk.errors.append(f"member {info.filename}: larger than {limits.max_member_bytes} "
                               f"bytes, not scanned")
            continue
        try:
            with spooled_member(package, info, limits) as member:
                scan_member(info.filename, member, depth + 1)  # type: ignore[arg-type]
            walk.scanned += 1
        except (ZipRefused, zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
            walk.errors.append(f"member {info.filename}: {error}")
    return walk
