"""The probe: walking real directory trees through the local and offline transports, with
symbolic-link loops, a FIFO, a file that vanishes between listing and reading, bounds, and a
1 GiB file streamed in flat memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from audit.errors import FactUnavailable
from audit.facts.context import Environment, TargetContext
from audit.facts.pii import personal_data_files, scan_paths
from audit.model.inventory import Scope, Target
from audit.transports.base import DirEntry
from audit.transports.filesystem import FilesystemTransport, LocalTransport
from audit.vocabulary import Reason, Role
from tests.test_pii_corpus import IINS, delimited, xlsx_bytes


@dataclass(frozen=True)
class Bounds:
    max_file_bytes: int = 1 << 30
    max_files: int = 100
    max_total_bytes: int = 1 << 32


@pytest.fixture
def share(tmp_path: Path) -> Path:
    """A share: a leaking CSV, a nested workbook, a clean note, links that loop, a FIFO."""
    root = tmp_path / "share"
    (root / "reports" / "2026").mkdir(parents=True)
    (root / "list.csv").write_bytes(delimited(";"))
    (root / "reports" / "2026" / "book.xlsx").write_bytes(xlsx_bytes())
    (root / "reports" / "note.txt").write_text("nothing personal\n")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "reports" / "up").symlink_to("..")
    os.mkfifo(root / "pipe")
    return root


def test_walk_scans_files_and_reports_what_it_could_not_read(share: Path) -> None:
    facts = scan_paths(LocalTransport(), [str(share)], Bounds())
    scanned = {Path(scan.name).relative_to(share).as_posix(): scan for scan in facts.files}
    assert set(scanned) == {"list.csv", "reports/2026/book.xlsx", "reports/note.txt"}
    assert scanned["list.csv"].identifiers == {"kz_iin": 3, "kz_bin": 1}
    assert scanned["reports/2026/book.xlsx"].identifiers["kz_iin"] == 4
    problems = {Path(p.path).name: p.reason for p in facts.problems}
    assert "symbolic links" in problems["loop-a"] and "symbolic links" in problems["loop-b"]
    assert "not a regular file" in problems["pipe"]
    assert "not followed" in problems["up"]
    assert facts.truncated is None


def test_the_offline_transport_reads_the_same_tree(share: Path) -> None:
    transport = FilesystemTransport(share.parent)
    facts = scan_paths(transport, ["/share"], Bounds())
    assert sorted(scan.name for scan in facts.files) == \
        ["/share/list.csv", "/share/reports/2026/book.xlsx", "/share/reports/note.txt"]


class VanishingTransport(LocalTransport):
    """Lists a directory, then a file in it is deleted before it is read (a real race)."""

    def list_dir(self, path: str) -> list[DirEntry]:
        entries = super().list_dir(path)
        for entry in entries:
            if entry.name == "list.csv":
                os.unlink(os.path.join(path, entry.name))
        return entries


def test_a_file_removed_between_listing_and_reading_is_a_detail(share: Path) -> None:
    facts = scan_paths(VanishingTransport(), [str(share)], Bounds())
    reasons = {Path(p.path).name: p.reason for p in facts.problems}
    assert "no such file" in reasons["list.csv"]


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    """A directory others may enter (pytest's own temporary directories are private)."""
    directory = Path(tempfile.mkdtemp(prefix="pii-walk-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def test_a_file_unreadable_by_the_scanning_account_is_a_detail(searchable_dir: Path) -> None:
    """Root reads any file, so the scan runs as `nobody`, for whom a 0600 file is unreadable."""
    if os.geteuid() != 0:
        pytest.skip("switching to nobody needs root")
    secret = searchable_dir / "secret.csv"
    secret.write_bytes(delimited(";"))
    secret.chmod(0o600)
    program = textwrap.dedent(f"""
        import os
        from audit.facts.pii import scan_paths
        from audit.transports.filesystem import LocalTransport
        os.setgid(65534); os.setuid(65534)     # after the imports: root's Python is private
        class B: max_file_bytes = 1 << 30; max_files = 10; max_total_bytes = 1 << 30
        facts = scan_paths(LocalTransport(), [{str(searchable_dir)!r}], B())
        print([p.reason for p in facts.problems], len(facts.files))
    """)
    output = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=60, check=True, cwd=Path(__file__).parent.parent).stdout
    assert "permission denied" in output and output.strip().endswith("0")


def test_bounds_on_size_count_and_total(share: Path) -> None:
    small = scan_paths(LocalTransport(), [str(share)], Bounds(max_file_bytes=100))
    assert [Path(scan.name).name for scan in small.files] == ["note.txt"]
    assert sum("too large" in p.reason for p in small.problems) == 2
    counted = scan_paths(LocalTransport(), [str(share)], Bounds(max_files=1))
    assert len(counted.files) == 1 and "file count" in (counted.truncated or "")
    total = scan_paths(LocalTransport(), [str(share)], Bounds(max_total_bytes=300))
    assert "total size" in (total.truncated or "")


def test_a_deadline_stops_the_walk_and_keeps_what_was_found(share: Path) -> None:
    import time
    past = scan_paths(LocalTransport(), [str(share)], Bounds(), deadline=time.monotonic() - 1)
    assert past.files == [] and past.truncated == "time limit reached"
    from audit.facts.pii import scan_stream
    with open(share / "list.csv", "rb") as stream:
        cut = scan_stream("list.csv", stream, deadline=time.monotonic() - 1)
    assert cut.errors == ["list.csv: time limit reached: the rest of the file was not scanned"]


def _context(target: Target, transport: bool = True) -> TargetContext:
    environment = Environment(base_dir=Path("/"), today=date(2026, 6, 1), scope=Scope())
    from audit.transports import open_transport
    return TargetContext(target, environment, open_transport if transport else None)


def test_probe_uses_the_targets_paths_and_transport(share: Path) -> None:
    fileshare = Target(name="share", roles=[Role.FILESHARE], paths=[str(share / "list.csv")])
    facts = personal_data_files(_context(fileshare, transport=False), Bounds())
    assert [scan.identifiers for scan in facts.files] == [{"kz_iin": 3, "kz_bin": 1}]
    image = Target(name="image", roles=[Role.HOST], root=str(share.parent), paths=["/share"])
    assert len(personal_data_files(_context(image), Bounds()).files) == 3
    bare = Target(name="bare", roles=[Role.HOST])
    with pytest.raises(FactUnavailable) as raised:
        personal_data_files(_context(bare), Bounds())
    assert raised.value.reason is Reason.UNSUPPORTED


GIB = 1 << 30


@pytest.fixture(scope="session")
def one_gib_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GiB of CSV lines, made once per session: identifiers sit across 8 MiB boundaries."""
    path = tmp_path_factory.mktemp("big") / "huge.csv"
    line = b"row;some free text without any number at all, just words;x\n"
    block = bytearray(line * (8 * 1024 * 1024 // len(line) + 1))[:8 * 1024 * 1024]
    with open(path, "wb") as handle:
        for index in range(GIB // len(block)):
            chunk = bytearray(block)
            value = IINS[index % 3].encode()
            # Straddle the end of this block: the last 5 digits begin the next one.
            chunk[-8:] = b"\n" + value[:7]
            if index:
                chunk[:6] = IINS[(index - 1) % 3].encode()[7:] + b"\n"
            handle.write(chunk)
    return path


def test_a_1_gib_file_streams_in_flat_memory(one_gib_csv: Path) -> None:
    program = textwrap.dedent(f"""
        from audit.facts.pii import scan_paths
        from audit.transports.filesystem import LocalTransport
        class B: max_file_bytes = 2 << 30; max_files = 10; max_total_bytes = 4 << 30
        facts = scan_paths(LocalTransport(), [{str(one_gib_csv)!r}], B())
        scan, = facts.files
        print(scan.size, scan.identifiers, scan.errors)
        # This process's own high-water mark: ru_maxrss would include pytest's at fork.
        print(next(line.split()[1] for line in open("/proc/self/status")
                   if line.startswith("VmHWM:")))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=600, check=True, cwd=Path(__file__).parent.parent)
    summary, peak_kib = done.stdout.strip().splitlines()
    assert summary == f"{GIB} {{'kz_iin': 3}} []"
    assert int(peak_kib) < 200 * 1024, f"peak memory {int(peak_kib) // 1024} MiB"
