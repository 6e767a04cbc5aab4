"""What a file is, told from its first bytes (never from its name), and whether it is a
protected container: encrypted content is counted as protected, not read as a leak.
"""

from __future__ import annotations

import re
import struct
from enum import StrEnum
from typing import BinaryIO

from audit.facts.documents import UTF16_BOMS

# Enough of a file's start to tell its format.
HEAD_BYTES = 64 * 1024


class FileFormat(StrEnum):
    """Formats the scanner tells apart."""

    EMPTY = "empty"
    TEXT = "text"
    CSV = "csv"
    TSV = "tsv"
    JSON = "json"
    XML = "xml"
    XLSX = "xlsx"
    XLSB = "xlsb"           # Excel's binary workbook: a ZIP package of BIFF12 records
    DOCX = "docx"
    ODS = "ods"
    ODT = "odt"
    ZIP = "zip"
    PDF = "pdf"
    OPENPGP = "openpgp"
    SEVEN_ZIP = "7z"
    LUKS = "luks"
    OLE2 = "ole2"           # legacy Office, or an encrypted OOXML package
    BINARY = "binary"


# Formats whose text the scanner reads as a stream of lines.
TEXT_FORMATS = frozenset({FileFormat.TEXT, FileFormat.CSV, FileFormat.TSV, FileFormat.XML})

ARMORED_PGP = b"-----BEGIN PGP MESSAGE-----"
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
LUKS_MAGIC = b"LUKS\xba\xbe"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# An OOXML file saved with a password is an OLE2 file holding this stream.
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# OpenPGP packets that open an encrypted message: public-key (1) or symmetric-key (3)
# encrypted session key, or a symmetrically encrypted data packet (9, 18, 20).
PGP_ENCRYPTION_TAGS = frozenset({1, 3, 9, 18, 20})
_DELIMITED_LINE = re.compile(rb"[^\n]*\n")


def sniff(head: bytes) -> FileFormat:
    """The format of a file whose first bytes are `head` (ZIP packages refined later)."""
    if not head:
        return FileFormat.EMPTY
    for magic, found in ((b"%PDF-", FileFormat.PDF), (SEVEN_ZIP_MAGIC, FileFormat.SEVEN_ZIP),
                         (LUKS_MAGIC, FileFormat.LUKS), (OLE2_MAGIC, FileFormat.OLE2)):
        if head.startswith(magic):
            return found
    if head.startswith(ZIP_MAGICS):
        return FileFormat.ZIP
    if head.lstrip().startswith(ARMORED_PGP) or _binary_pgp_message(head):
        return FileFormat.OPENPGP
    if head.startswith(UTF16_BOMS):
        return FileFormat.TEXT
    if b"\x00" in head:
        return FileFormat.BINARY
    return _text_kind(head.removeprefix(b"\xef\xbb\xbf"))


def _binary_pgp_message(head: bytes) -> bool:
    first = head[0]
    if not first & 0x80:
        return False
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag in PGP_ENCRYPTION_TAGS and len(head) > 2


def _text_kind(head: bytes) -> FileFormat:
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return FileFormat.JSON
    if stripped[:1] == b"<":
        return FileFormat.XML
    lines = _DELIMITED_LINE.findall(head)[:20]
    for delimiter, found in ((b"\t", FileFormat.TSV), (b";", FileFormat.CSV),
                             (b",", FileFormat.CSV)):
        counts = {line.count(delimiter) for line in lines}
        if len(lines) >= 2 and len(counts) == 1 and counts != {0}:
            return found
    return FileFormat.TEXT


def encrypted_ole2(head: bytes) -> bool:
    """Whether an OLE2 file is a password-protected OOXML package."""
    return ENCRYPTED_PACKAGE in head


# 7z: a 32-byte signature header points at the end header.
_SEVEN_ZIP_START = struct.Struct("<6s2sIQQI")
SEVEN_ZIP_ENCODED_HEADER = 0x17
SEVEN_ZIP_AES = b"\x06\xf1\x07\x01"
MAX_SEVEN_ZIP_HEADER = 1024 * 1024


def seven_zip_encrypted(stream: BinaryIO) -> bool:
    """Whether a 7z archive is encrypted (its headers, or its content, use 7zAES)."""
    stream.seek(0)
    start = stream.read(_SEVEN_ZIP_START.size)
    if len(start) < _SEVEN_ZIP_START.size:
        return False
    _, _, _, next_offset, next_size, _ = _SEVEN_ZIP_START.unpack(start)
    stream.seek(_SEVEN_ZIP_START.size + next_offset)
    header = stream.read(min(next_size, MAX_SEVEN_ZIP_HEADER))
    # An encoded header names its coders: 7zAES among them means names and content are hidden.
    # A plain header with 7zAES means the names show but the content is encrypted.
    return SEVEN_ZIP_AES in header
