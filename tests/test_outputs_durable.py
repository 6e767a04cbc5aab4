"""Outputs are private (0700 directories, 0600 files) and never truncated: SIGKILL, full disk.

Every command runs the real CLI as a subprocess over offline host trees: nothing listens.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
from host_trees import HARDENED, WEAK, make_host

from audit.journal import JOURNAL_FILE, read_journal
from audit.outputs import OutputError, new_private_directory, private_directory, write_atomically
from audit.run import RESULTS_FILE, read_results
from reports import RENDERERS
from reports.csv_table import BYTE_ORDER_MARK, COLUMNS

ALL_FORMATS = ",".join(RENDERERS)
RENDERED = ",".join(name for name in RENDERERS if name != "json")
OUTPUT_FILES = {renderer.file_name for renderer in RENDERERS.values()}
# What a killed writer may leave: `.report.html.k3j9x1aq.tmp`, never an output's own name.
LEFTOVER = re.compile(r"\.(?P<target>.+)\.[A-Za-z0-9_]+\.tmp")
NO_SPACE = "No space left on device"


def mis_audit(*args: str, cwd: Path, history: str = "off", umask: int = 0o022,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False, umask=umask,
                          env={**os.environ, "MIS_AUDIT_HISTORY": history})


def offline_inventory(directory: Path, pairs: int = 1) -> Path:
    """An inventory of `pairs` weak and hardened host trees under `directory`."""
    lines = ["organisation: Offline clinic", "targets:"]
    for index in range(pairs):
        for name, files in ((f"weak{index}", WEAK), (f"hardened{index}", HARDENED)):
            make_host(directory / name, files)
            lines.append(f"  - {{name: {name}, roles: [host], root: {name}}}")
    inventory = directory / "inventory.yaml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _html(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>"), path


def _sarif(path: Path) -> None:
    assert json.loads(path.read_text(encoding="utf-8"))["runs"], path


def _junit(path: Path) -> None:
    assert ElementTree.fromstring(path.read_bytes()).tag in ("testsuites", "testsuite"), path


def _csv(path: Path) -> None:
    text = path.read_text(encoding="utf-8").removeprefix(BYTE_ORDER_MARK)
    assert text.endswith("\n"), path
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS and all(len(row) == len(COLUMNS) for row in rows), path


def _oscal(path: Path) -> None:
    assert json.loads(path.read_text(encoding="utf-8"))["assessment-results"]["results"], path


def _pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF"), path


def _results(path: Path) -> None:
    read_results(path)      # parses and validates as RunResults


VALIDATORS: dict[str, Callable[[Path], None]] = {
    RESULTS_FILE: _results, "report.html": _html, "results.sarif": _sarif,
    "junit.xml": _junit, "results.csv": _csv, "results.oscal.json": _oscal,
    "report.pdf": _pdf,
}


def leftovers(directory: Path) -> list[str]:
    """The temporary files a killed writer left in `directory`."""
    return sorted(name for name in os.listdir(directory) if LEFTOVER.fullmatch(name))


def assert_only_complete_outputs(directory: Path) -> set[str]:
    """Every output present is complete; anything else is a recognisable leftover, 0600 too."""
    present = set()
    for entry in directory.iterdir():
        assert entry.is_file() and not entry.is_symlink(), entry
        assert mode(entry) == 0o600, (entry, oct(mode(entry)))
        if entry.name in OUTPUT_FILES:
            VALIDATORS[entry.name](entry)
            present.add(entry.name)
        elif entry.name == JOURNAL_FILE:
            read_journal(directory)        # the checkpoint of a run cut short: readable
        else:
            leftover = LEFTOVER.fullmatch(entry.name)
            assert leftover and leftover["target"] in OUTPUT_FILES, entry
    return present


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results.json of a finished run over 16 offline hosts (some 250 KB), history embedded."""
    work = tmp_path_factory.mktemp("stored")
    inventory = offline_inventory(work, pairs=8)
    done = mis_audit("run", "-i", str(inventory), "-o", "run", "--format", ALL_FORMATS, "-q",
                     cwd=work, history=str(work / "history.sqlite"))
    assert done.returncode == 1, done.stderr
    return work / "run" / RESULTS_FILE


def test_every_format_has_a_validator() -> None:
    assert set(VALIDATORS) == OUTPUT_FILES


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    saved = os.umask(0o777)     # the harshest: mkdir and open alone would grant nothing
    try:
        directory = private_directory(tmp_path / "p/q")
        written = write_atomically(directory / "notes.txt", "text")
        assert new_private_directory(directory) is False    # taken: a run picks another name
    finally:
        os.umask(saved)
    assert (mode(tmp_path / "p"), mode(directory), mode(written)) == (0o700, 0o700, 0o600)
    assert written.read_text() == "text"


def test_a_failed_replace_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "report.html").mkdir()      # a file cannot replace a directory
    with pytest.raises(OutputError, match=r"could not write .*/report\.html: Is a directory"):
        write_atomically(tmp_path / "report.html", "new")
    assert os.listdir(tmp_path) == ["report.html"]


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_run_directory_its_parents_and_files_are_private(tmp_path: Path, umask: int) -> None:
    inventory = offline_inventory(tmp_path)
    done = mis_audit("run", "-i", str(inventory), "-o", "a/b/c", "--format", ALL_FORMATS, "-q",
                     cwd=tmp_path, history=str(tmp_path / "history.sqlite"), umask=umask)
    assert done.returncode == 1, done.stderr
    for directory in ("a", "a/b", "a/b/c"):
        assert mode(tmp_path / directory) == 0o700, directory
    assert sorted(os.listdir(tmp_path / "a/b/c")) == sorted(OUTPUT_FILES)
    assert assert_only_complete_outputs(tmp_path / "a/b/c") == OUTPUT_FILES
    # The history rewrite of results.json went through the same writer.
    assert read_results(tmp_path / "a/b/c" / RESULTS_FILE).history is not None


def test_the_default_run_directory_is_private(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    done = mis_audit("run", "-i", str(inventory), "-q", cwd=tmp_path, umask=0o000)
    assert done.returncode == 1, done.stderr
    runs = tmp_path / "mis-audit-runs"
    [stamp] = runs.iterdir()
    assert (mode(runs), mode(stamp)) == (0o700, 0o700)
    assert assert_only_complete_outputs(stamp) == {RESULTS_FILE, "report.html"}


def test_an_existing_directory_keeps_its_mode_but_our_files_are_private(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    chosen.chmod(0o755)     # the user's deliberate choice
    (chosen / "report.html").write_text("an old report")
    (chosen / "report.html").chmod(0o644)
    done = mis_audit("run", "-i", str(inventory), "-o", str(chosen), "-q", cwd=tmp_path,
                     umask=0o000)
    assert done.returncode == 1, done.stderr
    assert mode(chosen) == 0o755
    assert assert_only_complete_outputs(chosen) == {RESULTS_FILE, "report.html"}


def test_report_creates_private_directories(stored_run: Path, tmp_path: Path) -> None:
    done = mis_audit("report", str(stored_run), "--format", RENDERED, "-o", "x/y",
                     cwd=tmp_path, umask=0o000)
    assert done.returncode == 0, done.stderr
    assert (mode(tmp_path / "x"), mode(tmp_path / "x/y")) == (0o700, 0o700)
    assert assert_only_complete_outputs(tmp_path / "x/y") == OUTPUT_FILES - {RESULTS_FILE}


def test_an_output_path_that_is_a_file_is_one_line_and_exit_4(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    done = mis_audit("run", "-i", str(inventory), "-o", "inventory.yaml/out", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stderr == ("error: could not create directory inventory.yaml: exists and is "
                           "not a directory\n")


def run_and_kill(command: list[str], cwd: Path, history: str, delay: float,
                 watch: tuple[Path, str] | None) -> bool:
    """Start `command`; SIGKILL it after `delay` seconds, or as soon as a temporary file for
    `watch`'s output appears (the kill then lands while that file is being written).

    True when it was killed, False when it had finished first.
    """
    earlier = set(leftovers(watch[0])) if watch and watch[0].is_dir() else set()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "MIS_AUDIT_HISTORY": history})
    deadline = time.monotonic() + delay
    while process.poll() is None and time.monotonic() < deadline:
        if watch and watch[0].is_dir() and any(
                name.startswith(f".{watch[1]}.") for name in set(leftovers(watch[0])) - earlier):
            break
        time.sleep(0.0002)
    process.send_signal(signal.SIGKILL)     # a no-op once it has been reaped
    process.wait(timeout=30)
    return process.returncode == -signal.SIGKILL


def timed(command: list[str], cwd: Path, history: str) -> float:
    """Seconds an uninterrupted `command` takes; it must succeed or find the run not ready."""
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "MIS_AUDIT_HISTORY": history})
    assert done.returncode in (0, 1), done.stderr
    return time.monotonic() - started


def test_sigkill_during_a_run_leaves_only_complete_outputs(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    history = str(tmp_path / "history.sqlite")

    def command(directory: str) -> list[str]:
        return [sys.executable, "-m", "audit.cli", "run", "-i", str(inventory), "-o", directory,
                "--format", ALL_FORMATS, "-q"]

    duration = timed(command("clean"), tmp_path, history)
    rng = random.Random(os.environ.get("MIS_AUDIT_KILL_SEED", "run"))
    outcome: Counter[str] = Counter()
    for attempt in range(10):
        directory = tmp_path / f"killed-{attempt}"
        # Every other kill waits for a given output to be half-way written.
        watch = (directory, rng.choice(sorted(OUTPUT_FILES))) if attempt % 2 else None
        killed = run_and_kill(command(directory.name), tmp_path, history,
                              rng.uniform(0.5, 1.0) * duration if watch is None else 2 * duration,
                              watch)
        if not directory.exists():
            outcome["before the directory"] += 1
            continue
        assert mode(directory) == 0o700
        present = assert_only_complete_outputs(directory)
        outcome["killed" if killed else "finished"] += 1
        outcome["while writing"] += bool(leftovers(directory))
        outcome["some outputs"] += bool(present) and present != OUTPUT_FILES
    print(f"run kills: {dict(outcome)}")
    assert outcome["killed"] + outcome["before the directory"] >= 4, outcome   # not a no-op


def test_sigkill_during_a_rerender_keeps_every_previous_file_whole(stored_run: Path,
                                                                   tmp_path: Path) -> None:
    target = tmp_path / "rerender"
    command = [sys.executable, "-m", "audit.cli", "report", str(stored_run), "--format",
               RENDERED, "-o", str(target)]
    duration = timed(command, tmp_path, "off")
    # A re-render is byte for byte the same: any file there is the previous or the new one.
    reference = {name: (target / name).read_bytes() for name in os.listdir(target)}
    assert set(reference) == OUTPUT_FILES - {RESULTS_FILE}
    rng = random.Random(os.environ.get("MIS_AUDIT_KILL_SEED", "report"))
    outcome: Counter[str] = Counter()
    left_before = 0
    for attempt in range(18):
        watch = (target, rng.choice(sorted(reference))) if attempt % 2 else None
        killed = run_and_kill(command, tmp_path, "off",
                              rng.uniform(0.4, 1.0) * duration if watch is None else 2 * duration,
                              watch)
        assert assert_only_complete_outputs(target) == set(reference)
        for name, content in reference.items():
            assert (target / name).read_bytes() == content, (attempt, name)
        outcome["killed" if killed else "finished"] += 1
        left = len(leftovers(target))
        outcome["while writing"] += left > left_before
        left_before = left
    print(f"re-render kills: {dict(outcome)}")
    assert outcome["killed"] >= 6, outcome     # not a no-op, even on a loaded machine
    # Leftovers of killed writers do not disturb the next one.
    assert timed(command, tmp_path, "off") > 0
    assert {name: (target / name).read_bytes() for name in reference} == reference


NAMESPACE_SCRIPT = """
mount -t tmpfs -o "size=$1" tmpfs "$2" || exit 97
if [ -n "$4" ]; then cp -p "$4"/* "$2"/ || exit 98; fi
disk=$2 keep=$3
shift 4
"$@"
code=$?
cp -a "$disk"/. "$keep"/ || exit 99
exit $code
"""


def on_a_full_disk(tmp_path: Path, size_kib: int, args: list[str],
                   prefill: Path | None = None) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the CLI with `disk` (a private tmpfs of `size_kib`) holding `prefill`'s files.

    Returns the outcome and a copy of what the disk held afterwards.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("unshare(1) and mount(8) are needed for a private mount namespace")
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT,
               "sh", f"{size_kib}k", str(disk), str(kept), str(prefill or ""),
               sys.executable, "-m", "audit.cli", *[arg.replace("DISK", str(disk)) for arg in args]]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "MIS_AUDIT_HISTORY": "off"})
    assert done.returncode not in (97, 98, 99), done.stderr
    assert os.listdir(disk) == [], "the tmpfs leaked out of its mount namespace"
    return done, kept


def assert_one_line_error(done: subprocess.CompletedProcess[str], path: str) -> None:
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr == f"error: could not write {path}: {NO_SPACE}\n"


def kib(*paths: Path) -> int:
    """The tmpfs size that holds exactly these files (whole 4 KiB pages)."""
    return sum(-(-path.stat().st_size // 4096) * 4 for path in paths)


def test_a_full_disk_before_results_json_leaves_no_partial_file(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    done, kept = on_a_full_disk(tmp_path, 64, ["run", "-i", str(inventory), "-o", "DISK/out",
                                               "--format", ALL_FORMATS, "-q"])
    assert_one_line_error(done, f"{tmp_path}/disk/out/{RESULTS_FILE}")
    # only the checkpoint: the run can be resumed once there is room
    assert set(os.listdir(kept / "out")) <= {JOURNAL_FILE}


def test_a_full_disk_after_results_json_keeps_it_whole(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    sizes = mis_audit("run", "-i", str(inventory), "-o", "sizes", "-q", cwd=tmp_path)
    assert sizes.returncode == 1, sizes.stderr
    # Room for results.json (and a page of slack: its durations vary) and half a report.
    size = kib(tmp_path / "sizes" / RESULTS_FILE) + 8 + kib(tmp_path / "sizes/report.html") // 2
    done, kept = on_a_full_disk(tmp_path, size, ["run", "-i", str(inventory), "-o", "DISK/out",
                                                 "--format", "json,html", "-q"])
    assert_one_line_error(done, f"{tmp_path}/disk/out/report.html")
    assert sorted(os.listdir(kept / "out")) == sorted([RESULTS_FILE, JOURNAL_FILE])
    read_results(kept / "out" / RESULTS_FILE)


def test_a_full_disk_keeps_the_previous_report_whole(stored_run: Path, tmp_path: Path) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    shutil.copy(stored_run, previous)
    shutil.copy(stored_run.parent / "report.html", previous)
    (previous / "report.html").write_text((previous / "report.html").read_text() + "<!-- old -->")
    old = (previous / "report.html").read_bytes()
    # Both files fit, a second report beside the first does not.
    size = kib(previous / RESULTS_FILE, previous / "report.html") + 16
    done, kept = on_a_full_disk(tmp_path, size, ["report", f"DISK/{RESULTS_FILE}", "--format",
                                                 "html"], prefill=previous)
    assert_one_line_error(done, f"{tmp_path}/disk/report.html")
    assert sorted(os.listdir(kept)) == ["report.html", RESULTS_FILE]
    assert (kept / "report.html").read_bytes() == old


def test_sigterm_while_writing_outputs_is_exit_130_without_a_traceback(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path, pairs=4)
    caught = 0
    for attempt in range(8):
        directory = tmp_path / f"term-{attempt}"
        process = subprocess.Popen(
            [sys.executable, "-m", "audit.cli", "run", "-i", str(inventory), "-o",
             str(directory), "--format", ALL_FORMATS, "-q", "--history", "off"],
            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if directory.is_dir() and (RESULTS_FILE in os.listdir(directory)
                                       or leftovers(directory)):
                process.send_signal(signal.SIGTERM)      # the outputs are being written
                break
            time.sleep(0.0005)
        _, stderr = process.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr
        if process.returncode == 130:
            caught += 1
            assert "interrupted while writing outputs" in stderr, stderr
            assert_only_complete_outputs(directory)
        else:
            assert process.returncode == 1, stderr      # it had finished first
    assert caught >= 1, "no SIGTERM landed while outputs were written"
