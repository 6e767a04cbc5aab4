"""Benchmark of the personal-data scanner (not a test): generate a corpus in a temporary
directory (a large CSV; XLSX as Excel writes it, shared strings in UTF-8, and as openpyxl
does, inline strings with character references; ODS as LibreOffice writes it; XLS, DOCX and
PDF files; a share of many small files of mixed types), then print each figure beside its
baseline, measured in the same run: the CSV beside `LC_ALL=C grep -oE '[0-9]{12}' FILE |
sort -u | wc -l`, each reader beside the one it replaced.

    python bench/pii_scan.py [--csv-mib 1024] [--small-files 100000] [--big-xlsx-mib 0]
                             [--keep DIR]

Each measurement runs in its own process, so its peak resident memory is its own; its pool's
workers are sampled apart. The machine is shared: run it twice and read the figures as a range.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pii_corpus as corpus

MIB = 1024 * 1024
WORKERS_MODE = f"workers={len(os.sched_getaffinity(0))}"
# Distinct valid IINs (and as many decoys) the rows draw from: each value recurs about five
# times in 1 GiB, as in a share holding several exports of the same registry.
POOL = 1_000_000
SCANNER = """
import json, os, sys, threading, time
def descendants_rss_kib():
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(pid)] = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    mine, total = {os.getpid()}, 0
    for _ in range(4):             # the forkserver, then its workers
        mine |= {pid for pid, parent in parents.items() if parent in mine}
    for pid in mine - {os.getpid()}:
        try:
            total += int(next(line.split()[1] for line in open(f"/proc/{pid}/status")
                              if line.startswith("VmRSS:")))
        except (OSError, StopIteration):
            pass
    return total
worker_peak = 0
def watch():
    global worker_peak
    while True:
        worker_peak = max(worker_peak, descendants_rss_kib())
        time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
from audit.facts.pii import scan_paths
from audit.facts.pii.text import TextScanner
from audit.transports.filesystem import LocalTransport
class Bounds: max_file_bytes = 1 << 40; max_files = 10 ** 7; max_total_bytes = 1 << 42
mode, paths = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
counts, files, size = {}, 0, 0
if mode.startswith("workers="):
    facts = scan_paths(LocalTransport(), paths, Bounds(), workers=int(mode[8:]))
    size, files = facts.bytes_scanned, len(facts.files)
    for scan in facts.files:
        for kind, count in scan.identifiers.items():
            counts[kind] = counts.get(kind, 0) + count
else:          # a reader the scanner used before, on its own
    from audit.facts.pii import readers
    import audit.facts.documents as documents
    for path in paths:
        scanner = TextScanner()
        with open(path, "rb") as stream:
            if mode == "calamine":
                from audit.facts.pii.workbooks import read_workbook
                read_workbook(stream, scanner)
            elif mode == "raw-strings":
                readers.read_raw_strings(stream, scanner)
            elif mode == "python-docx":
                for paragraph in documents.docx_paragraphs(stream, documents.DocumentLimits()):
                    scanner.scan_str(paragraph)
            elif mode == "pypdf":
                from pypdf import PdfReader
                for page in PdfReader(stream).pages:
                    scanner.scan_str(page.extract_text() or "")
        for kind, count in scanner.tally.distinct().items():
            counts[kind] = counts.get(kind, 0) + count
        files += 1
        size += len(open(path, "rb").read())
elapsed = time.perf_counter() - started
# Peak resident memory of this process and, sampled every 0.2 s, of its workers together.
own = int(next(line.split()[1] for line in open("/proc/self/status")
               if line.startswith("VmHWM:")))
print(json.dumps({"seconds": elapsed, "bytes": size, "files": files, "identifiers": counts,
                  "peak_mib": own / 1024, "worker_peak_mib": worker_peak / 1024}))
"""


def measure(mode: str, paths: list[Path]) -> dict[str, float]:
    """Run the scanner (or an old reader) in a child process: its time and peak memory."""
    done = subprocess.run([sys.executable, "-c", SCANNER, mode, *map(str, paths)],
                          capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent.parent)
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def grep_baseline(csv: Path, locale: str | None) -> tuple[float, int]:
    """Seconds and distinct 12-digit numbers of the plain shell pipeline."""
    env = dict(os.environ)
    if locale:
        env["LC_ALL"] = locale
    started = time.perf_counter()
    done = subprocess.run(["sh", "-c", f"grep -oE '[0-9]{{12}}' '{csv}' | sort -u | wc -l"],
                          capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, int(done.stdout)


def report(label: str, result: dict[str, float], baseline: float | None = None) -> float:
    """Print one line; the MB/s figure, for the lines that compare with it."""
    megabytes = result["bytes"] / 1e6
    rate = megabytes / result["seconds"]
    ratio = f" = {rate / baseline:5.1f}x" if baseline else ""
    print(f"{label:34} {rate:7.1f} MB/s{ratio:9} {result['seconds']:6.1f} s  "
          f"{result['files'] / result['seconds']:8.0f} files/s  peak {result['peak_mib']:5.0f} "
          f"MiB (workers {result['worker_peak_mib']:4.0f})  {megabytes:.0f} MB in "
          f"{result['files']:.0f} file(s), {result['identifiers']}")
    return rate


def generate(root: Path, args: argparse.Namespace) -> None:
    """The corpus, unless `--keep` already holds it."""
    rng = random.Random(2026)
    valid = corpus.iin_pool(rng, POOL)
    invalid = corpus.decoys(valid)
    for name, size in (("patients.csv", args.csv_mib * MIB), ("quarter.csv", args.csv_mib * MIB // 4)):
        if not (root / name).exists():
            corpus.write_csv(root / name, size, valid, invalid, rng)
    office = root / "office"
    if not office.exists():
        office.mkdir()
        # Six of each spreadsheet kind: enough files for both cores to be busy to the end.
        for n in range(6):
            (office / f"excel{n}.xlsx").write_bytes(corpus.excel_xlsx_bytes(200_000, valid,
                                                                            rng))
            (office / f"list{n}.xlsx").write_bytes(corpus.xlsx_bytes(200_000, valid, rng))
            (office / f"calc{n}.ods").write_bytes(corpus.ods_bytes(200_000, valid, rng))
        for n in range(3):
            (office / f"list{n}.xls").write_bytes(corpus.xls_bytes(50_000, valid, rng))
            (office / f"letter{n}.docx").write_bytes(corpus.docx_bytes(1_000, valid, rng))
            (office / f"scan{n}.pdf").write_bytes(corpus.pdf_bytes(100, 60, valid, rng))
    if args.small_files and not (root / "share").exists():
        print("small files:", corpus.small_share(root / "share", args.small_files, valid,
                                                 invalid, rng))
    big = root / "big.xlsx"
    if args.big_xlsx_mib and not big.exists():
        rows = int(args.big_xlsx_mib * MIB / 27)      # about 27 bytes a row, compressed
        big.write_bytes(corpus.xlsx_bytes(rows, valid, rng))


def main() -> None:
    """Generate, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-mib", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=100_000)
    parser.add_argument("--big-xlsx-mib", type=int, default=0,
                        help="also a workbook of this size, for its peak memory")
    parser.add_argument("--keep", type=Path, help="generate here and keep the corpus")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pii-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        generate(root, args)
        print(f"corpus generated in {time.perf_counter() - started:.0f} s under {root}; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        csv, office = root / "patients.csv", root / "office"
        size_mb = csv.stat().st_size / 1e6
        grep = 0.0
        for label, locale in (("grep (environment locale)", None), ("grep (LC_ALL=C)", "C")):
            seconds, distinct = grep_baseline(csv, locale)
            grep = size_mb / seconds
            print(f"{label:34} {grep:7.1f} MB/s {'':9}{seconds:6.1f} s  {distinct} distinct "
                  f"12-digit numbers (valid or not)")
        report("scanner, CSV, 1 process", measure("workers=1", [csv]), grep)
        report("scanner, CSV, all cores", measure(WORKERS_MODE, [csv]), grep)
        report("scanner, CSV quarter, all cores", measure(WORKERS_MODE, [root / "quarter.csv"]),
               grep)
        for label, old, new, glob in (("XLSX, Excel", "calamine", WORKERS_MODE, "excel*.xlsx"),
                                      ("XLSX, openpyxl", "calamine", WORKERS_MODE, "list*.xlsx"),
                                      ("ODS", "calamine", WORKERS_MODE, "*.ods"),
                                      ("XLS", "raw-strings", WORKERS_MODE, "*.xls"),
                                      ("PDF", "pypdf", WORKERS_MODE, "*.pdf"),
                                      ("DOCX", "python-docx", WORKERS_MODE, "*.docx")):
            paths = sorted(office.glob(glob))
            before = report(f"before: {label} ({old})", measure(old, paths)) if old else None
            report(f"scanner: {label}, all cores", measure(new, paths), before)
            report(f"scanner: {label}, 1 process", measure("workers=1", paths), before)
        if (root / "share").exists():
            report("small files, 1 process", measure("workers=1", [root / "share"]))
            report("small files, all cores", measure(WORKERS_MODE, [root / "share"]))
        if (root / "big.xlsx").exists():
            report("big XLSX, all cores", measure(WORKERS_MODE, [root / "big.xlsx"]))
    finally:
        if args.keep is None:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
