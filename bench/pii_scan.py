"""Benchmark of the personal-data scanner (not a test): generate a corpus (>= 1 GiB of CSV,
plus XLSX and DOCX files) in a temporary directory, then report MB/s and peak memory of the
scanner beside a plain `grep -oE '[0-9]{12}' | sort -u | wc -l` over the same CSV.

    python bench/pii_scan.py [--csv-mib 1024] [--keep DIR]

Each measurement runs in its own process, so its peak resident memory is its own. The CSV is
scanned at full size and at a quarter of it: flat memory means the two peaks are close.
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
from datetime import date, timedelta
from pathlib import Path

MIB = 1024 * 1024
# Distinct valid IINs (and as many decoys) the rows draw from: each value recurs about five
# times in 1 GiB, as in a share holding several exports of the same registry.
POOL = 1_000_000
SCANNER = """
import json, sys, time
from audit.facts.pii import scan_paths
from audit.transports.filesystem import LocalTransport
class Bounds: max_file_bytes = 1 << 40; max_files = 10 ** 6; max_total_bytes = 1 << 42
started = time.perf_counter()
facts = scan_paths(LocalTransport(), sys.argv[1:], Bounds())
elapsed = time.perf_counter() - started
counts = {}
for scan in facts.files:
    for kind, count in scan.identifiers.items():
        counts[kind] = counts.get(kind, 0) + count
# This process's own high-water mark (ru_maxrss would include the parent's at fork).
peak_kib = int(next(line.split()[1] for line in open("/proc/self/status")
                    if line.startswith("VmHWM:")))
print(json.dumps({"seconds": elapsed, "bytes": facts.bytes_scanned, "files": len(facts.files),
                  "identifiers": counts, "problems": len(facts.problems),
                  "peak_mib": peak_kib / 1024}))
"""


def iin_pool(rng: random.Random, size: int) -> list[str]:
    """Valid IINs with random birth dates (1940-2009), computed from the published rule."""
    pool: list[str] = []
    while len(pool) < size:
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(25_500))
        century = 5 if born.year >= 2000 else 3
        first = f"{born:%y%m%d}{century + rng.randrange(2)}{rng.randrange(10_000):04d}"
        digits = [int(c) for c in first]
        for weights in (range(1, 12), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)):
            control = sum(d * w for d, w in zip(digits, weights)) % 11
            if control != 10:
                pool.append(first + str(control))
                break
    return pool


def decoys(pool: list[str]) -> list[str]:
    """Same numbers, wrong control digit: they must not be counted."""
    return [value[:-1] + str((int(value[-1]) + 1) % 10) for value in pool]


NAMES = ["Иванова Айгерим Сериковна", "Петров Пётр Петрович", "Нурланов Ерлан Нурланұлы",
         "Ахметова Динара Маратовна", "Smith John"]
DIAGNOSES = ["J18.9 Пневмония", "I10 Гипертензия", "U07.1 COVID-19", "Z00.0 Осмотр"]


def write_csv(path: Path, target_bytes: int, valid: list[str], invalid: list[str],
              rng: random.Random) -> None:
    """A patient list: one IIN (or a checksum-failing decoy) and a phone per row."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("id;ФИО;ИИН;телефон;дата;диагноз;сумма\n")
        row = 0
        while written < target_bytes:
            numbers = rng.choices(valid, k=5000) + rng.choices(invalid, k=5000)
            # A phone per row, nearly all distinct (a multiplicative hash of the row number).
            phones = [(row + n) * 7919 % 10 ** 7 for n in range(len(numbers))]
            lines = [f"{row + n};{NAMES[n % 5]};{number};+7 70{n % 10} {phone // 10 ** 4:03d} "
                     f"{phone // 100 % 100:02d} {phone % 100:02d};19{50 + n % 50}-0{1 + n % 9}"
                     f"-1{n % 10};{DIAGNOSES[n % 4]};{n * 37 % 100000}.00\n"
                     for n, (number, phone) in enumerate(zip(numbers, phones))]
            row += len(lines)
            text = "".join(lines)
            handle.write(text)
            written += len(text.encode("utf-8"))


def write_xlsx(path: Path, rows: int, valid: list[str], rng: random.Random) -> None:
    """A workbook in write-only mode: IINs as text, some as numbers (leading zero lost)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Пациенты")
    sheet.append(["ФИО", "ИИН", "диагноз", "сумма"])
    for n, number in enumerate(rng.choices(valid, k=rows)):
        cell: str | int = int(number) if n % 10 == 0 else number
        sheet.append([NAMES[n % 5], cell, DIAGNOSES[n % 4], n * 37 % 100000])
    workbook.save(path)


def write_docx(path: Path, rows: int, valid: list[str], rng: random.Random) -> None:
    """A letter with paragraphs and a table of patients."""
    import docx

    document = docx.Document()
    for n, number in enumerate(rng.choices(valid, k=rows)):
        document.add_paragraph(f"{NAMES[n % 5]}, ИИН {number}, {DIAGNOSES[n % 4]}")
    table = document.add_table(rows=rows // 4, cols=2)
    for row, number in zip(table.rows, rng.choices(valid, k=rows // 4)):
        row.cells[0].text, row.cells[1].text = NAMES[0], number
    document.save(str(path))


def measure(paths: list[Path]) -> dict[str, float]:
    """Run the scanner in a child process; its own time and peak resident memory."""
    done = subprocess.run([sys.executable, "-c", SCANNER, *map(str, paths)],
                          capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout)
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


def main() -> None:
    """Generate, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-mib", type=int, default=1024)
    parser.add_argument("--keep", type=Path, help="generate here and keep the corpus")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pii-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    try:
        valid = iin_pool(rng, POOL)
        invalid = decoys(valid)
        started = time.perf_counter()
        csv, quarter = root / "patients.csv", root / "quarter.csv"
        if not csv.exists():
            write_csv(csv, args.csv_mib * MIB, valid, invalid, rng)
        if not quarter.exists():
            write_csv(quarter, args.csv_mib * MIB // 4, valid, invalid, rng)
        office = root / "office"
        if not office.exists():
            office.mkdir()
            for n in range(3):
                write_xlsx(office / f"list{n}.xlsx", 50_000, valid, rng)
                write_docx(office / f"letter{n}.docx", 1_000, valid, rng)
        print(f"corpus generated in {time.perf_counter() - started:.0f} s under {root}")
        size_mb = csv.stat().st_size / 1e6
        for label, locale in (("grep (environment locale)", None), ("grep (LC_ALL=C)", "C")):
            seconds, distinct = grep_baseline(csv, locale)
            print(f"{label:28} {size_mb / seconds:7.1f} MB/s  {seconds:6.1f} s  "
                  f"{'':15}{distinct} distinct 12-digit numbers (valid or not)")
        for label, paths in (("scanner, CSV", [csv]), ("scanner, CSV quarter", [quarter]),
                             ("scanner, XLSX", sorted(office.glob("*.xlsx"))),
                             ("scanner, DOCX", sorted(office.glob("*.docx")))):
            result = measure(paths)
            megabytes = result["bytes"] / 1e6
            print(f"{label:28} {megabytes / result['seconds']:7.1f} MB/s  "
                  f"{result['seconds']:6.1f} s  peak {result['peak_mib']:6.0f} MiB  "
                  f"{megabytes:.0f} MB in {result['files']:.0f} file(s), "
                  f"identifiers {result['identifiers']}")
    finally:
        if args.keep is None:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
