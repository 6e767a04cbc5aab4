"""The workbook reader (`audit.facts.pii.sheet_xml`) against calamine, an independent reader of
the same cells: XLSX written by hand as Excel and other writers write it (shared strings, rich
text, a namespace prefix, numbers in several spellings, formulas, dates, character references)
and by openpyxl, OpenDocument as LibreOffice writes it; every value found, not only the
samples, must be the same, however the XML is cut into chunks.
"""

from __future__ import annotations

import io
import random
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from datetime import date, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from audit.facts.pii import scan_bytes
from audit.facts.pii import sheet_xml as xlsx_reader
from audit.facts.pii.formats import FileFormat
from audit.facts.pii.text import Tally, TextScanner
from tests.test_pii_corpus import decoy, make_bin, make_iin
from tests.test_pii_differential import KZ_KINDS, LargeBounds, Reference, counted_merges

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def package(sheets: list[str], shared: str | None) -> bytes:
    """A minimal workbook package around sheet XML (and a shared-strings part)."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
        f'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, len(sheets) + 1))
    relations = "".join(
        f'<Relationship Id="rId{n}" Type="{RELATIONSHIPS}/worksheet" '
        f'Target="worksheets/sheet{n}.xml"/>' for n in range(1, len(sheets) + 1))
    names = "".join(f'<sheet name="S{n}" sheetId="{n}" r:id="rId{n}"/>'
                    for n in range(1, len(sheets) + 1))
    parts = {
        "[Content_Types].xml":
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="rels" ContentType="application'
            '/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f'{overrides}</Types>',
        "_rels/.rels":
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
            f'{RELATIONSHIPS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml":
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="'
            f'{RELATIONSHIPS}"><sheets>{names}</sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships">' + relations
            + (f'<Relationship Id="rS" Type="{RELATIONSHIPS}/sharedStrings" '
               'Target="sharedStrings.xml"/>' if shared is not None else "")
            + "</Relationships>",
    }
    for n, sheet in enumerate(sheets, start=1):
        parts[f"xl/worksheets/sheet{n}.xml"] = sheet
    if shared is not None:
        parts["xl/sharedStrings.xml"] = shared
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


ODS_NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"')


def ods_package(rows: list[str], table_prefix: str = "table") -> bytes:
    """An OpenDocument spreadsheet around table rows, with the manifest calamine wants."""
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODS_NAMESPACES}'
               ' office:version="1.3"><office:body><office:spreadsheet><table:table '
               f'table:name="Пациенты">{"".join(rows)}</table:table></office:spreadsheet>'
               "</office:body></office:document-content>")
    if table_prefix != "table":
        content = content.replace("<table:", f"<{table_prefix}:").replace(
            "</table:", f"</{table_prefix}:").replace(" table:", f" {table_prefix}:").replace(
            "xmlns:table=", f"xmlns:{table_prefix}=")
    mimetype = "application/vnd.oasis.opendocument.spreadsheet"
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:'
                'oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
                f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type='
                '"text/xml"/></manifest:manifest>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", manifest)
    return buffer.getvalue()


def ods_cell(value: str | float, shown: str | None = None, repeated: int = 1) -> str:
    """A cell as LibreOffice writes it: a number's value in `office:value`, its display text
    (perhaps `8,50101E+11`) in the paragraph."""
    times = f' table:number-columns-repeated="{repeated}"' if repeated > 1 else ""
    if isinstance(value, str):
        return (f'<table:table-cell office:value-type="string" calcext:value-type="string"'
                f'{times}><text:p>{value}</text:p></table:table-cell>')
    return (f'<table:table-cell office:value-type="float" office:value="{value}" '
            f'calcext:value-type="float"{times}><text:p>{shown or value}</text:p>'
            "</table:table-cell>")


def identifiers(rng: random.Random, count: int) -> list[str]:
    """IINs (a third born in 2000-2009, whose numbers lose a leading zero), BINs, decoys."""
    found = []
    for n in range(count):
        born = date(2000 if n % 3 == 0 else 1950, 1, 1) + timedelta(days=rng.randrange(3600))
        found.append(make_iin(born, 5 if born.year >= 2000 else 3, rng.randrange(9000)))
        if n % 5 == 0:
            found.append(make_bin(f"{rng.randrange(100):02d}{rng.randrange(1, 13):02d}",
                                  rng.randrange(90_000)))
    return [v for value in found for v in (value, decoy(value))]


def excel_style(rng: random.Random, prefix: str = "", count: int = 60) -> bytes:
    """Text in shared strings (one identifier cut in two rich-text runs, Cyrillic header as
    character references), numbers written plain, with `.0`, in exponent form, as a formula's
    result, negative, beside dates and a formula's text result."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{MAIN}"' if prefix else f'xmlns="{MAIN}"'
    values = identifiers(rng, count)
    strings = ["&#1048;&#1048;&#1053; &#1087;&#1072;&#1094;&#1080;&#1077;&#1085;&#1090;&#1072;"]
    rows = []
    for n, value in enumerate(values, start=2):
        if n % 4 == 0:
            strings.append(f"<{p}r><{p}t>{value[:5]}</{p}t></{p}r><{p}r><{p}rPr><{p}b/>"
                           f"</{p}rPr><{p}t xml:space=\"preserve\">{value[5:]}</{p}t></{p}r>")
            cell = f'<{p}c r="A{n}" t="s"><{p}v>{len(strings) - 1}</{p}v></{p}c>'
        elif n % 4 == 1:
            strings.append(f"<{p}t>тел. {value}</{p}t>")
            cell = f'<{p}c r="A{n}" t="s"><{p}v>{len(strings) - 1}</{p}v></{p}c>'
        else:
            spelling = (str(int(value)), f"{int(value)}.0", f"{int(value):.11E}")[n % 3]
            formula = f"<{p}f>B{n}*1</{p}f>" if n % 5 == 0 else ""
            cell = f'<{p}c r="A{n}" s="1">{formula}<{p}v>{spelling}</{p}v></{p}c>'
        rows.append(f'<{p}row r="{n}">{cell}<{p}c r="B{n}" t="d"><{p}v>2024-01-{n % 28 + 1:02d}'
                    f'</{p}v></{p}c><{p}c r="C{n}"><{p}v>-{value}</{p}v></{p}c><{p}c r="D{n}">'
                    f'<{p}v>12345.678901</{p}v></{p}c></{p}row>')
    header = f'<{p}row r="1"><{p}c r="A1" t="s"><{p}v>0</{p}v></{p}c></{p}row>'
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {xmlns}><{p}sheetData>'
             f'{header}{"".join(rows)}</{p}sheetData></{p}worksheet>')
    shared = (f'<?xml version="1.0" encoding="UTF-8"?><{p}sst {xmlns} count="{len(strings)}"'
              f' uniqueCount="{len(strings)}">'
              + "".join(f"<{p}si>{string if string.startswith('<') else f'<{p}t>{string}</{p}t>'}"
                        f"</{p}si>" for string in strings)
              + f"</{p}sst>")
    inline = (f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {xmlns}><{p}sheetData>'
              + "".join(f'<{p}row r="{n}"><{p}c r="A{n}" t="inlineStr"><{p}is><{p}t>{value}'
                        f'</{p}t></{p}is></{p}c></{p}row>'
                        for n, value in enumerate(identifiers(rng, 20), start=1))
              + f"</{p}sheetData></{p}worksheet>")
    return package([sheet, inline], shared)


def libreoffice_style(rng: random.Random, table_prefix: str = "table") -> bytes:
    """Names and IINs as text, IINs as numbers shown plain or in exponent form (the display
    must not count: calamine reads the value), repeated cells, percentages, dates, an empty
    numeric cell written self-closed."""
    rows = [f"<table:table-row>{ods_cell('ИИН')}{ods_cell('пациент')}</table:table-row>"]
    for n, value in enumerate(identifiers(rng, 80)):
        number = int(value)
        cell = (ods_cell(value) if n % 3 == 0 else
                ods_cell(number, f"{number / 1e11:.5f}E+11".replace(".", ",")) if n % 3 == 1
                else ods_cell(float(number), repeated=2))
        rows.append(f"<table:table-row>{cell}{ods_cell(f'Иванов {n}')}"
                    '<table:table-cell office:value-type="percentage" office:value="0.15"/>'
                    '<table:table-cell office:value-type="date" office:date-value="2024-01-31">'
                    "<text:p>31.01.2024</text:p></table:table-cell></table:table-row>")
    return ods_package(rows, table_prefix)


def every_value(content: bytes) -> tuple[dict[str, int], dict[str, list[str]]]:
    """What the workbook reader finds: every distinct value of the kinds the reference knows,
    masked, by kind."""
    scanner = TextScanner(tally=Tally(max_samples=sys.maxsize))
    with zipfile.ZipFile(io.BytesIO(content)) as workbook:
        if "content.xml" in workbook.namelist():
            assert xlsx_reader.read_ods(workbook, scanner)
        else:
            xlsx_reader.read_xlsx(workbook, scanner)
    return ({kind.value: count for kind, count in scanner.tally.distinct().items()
             if kind.value in KZ_KINDS},
            {kind.value: sorted(tally.samples) for kind, tally in scanner.tally.kinds.items()
             if kind.value in KZ_KINDS})


def calamine_reference(content: bytes) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The same from calamine's cells, by the reference's published rules."""
    reference = Reference()
    workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
    for name in workbook.sheet_names:
        for row in workbook.get_sheet_by_name(name).iter_rows():
            for cell in row:
                if isinstance(cell, str):
                    reference.text(cell)
                elif isinstance(cell, int | float) and not isinstance(cell, bool):
                    reference.number(cell)
    masked = {"kz_bin": lambda v: "*" * 8 + v[-4:]}
    return (reference.counts(),
            {kind: sorted(masked.get(kind, lambda v: "*" * 10 + v[-2:])(value)
                          for value in values)
             for kind, values in reference.values.items() if values})


@pytest.mark.parametrize("prefix", ["", "x"])
def test_the_reader_finds_what_calamine_reads_in_an_excel_style_workbook(prefix: str) -> None:
    content = excel_style(random.Random(11), prefix)
    found = every_value(content)
    assert found == calamine_reference(content)
    assert found[0]["kz_iin"] > 40 and found[0]["kz_bin"] > 5


def test_an_open_document_spreadsheet_gives_what_calamine_reads() -> None:
    content = libreoffice_style(random.Random(17))
    found = every_value(content)
    assert found == calamine_reference(content)
    assert found[0]["kz_iin"] > 50
    scan = scan_bytes("list.ods", content)
    assert scan.format == "ods" and not scan.errors and scan.suspected_unverifiable == 0
    assert {"header:ИИН", "health:пациент"} <= set(scan.context)


def test_an_open_document_with_other_prefixes_is_read_by_iterparse() -> None:
    content = libreoffice_style(random.Random(18), table_prefix="tbl")
    with zipfile.ZipFile(io.BytesIO(content)) as workbook:
        assert not xlsx_reader.read_ods(workbook, TextScanner())
    assert scan_bytes("list.ods", content).identifiers["kz_iin"] > 50


@pytest.mark.parametrize("make", [excel_style, libreoffice_style])
def test_chunks_cut_anywhere_give_the_same_values(monkeypatch: pytest.MonkeyPatch,
                                                  make: Callable[[random.Random], bytes]
                                                  ) -> None:
    content = make(random.Random(12))
    whole = every_value(content)
    for chunk in (97, 1024):
        monkeypatch.setattr(xlsx_reader, "CHUNK_BYTES", chunk)
        monkeypatch.setattr(xlsx_reader, "MAX_CARRY", 4 * chunk)
        # Shorter than a cell: the cut is often found only in the second, longer look.
        monkeypatch.setattr(xlsx_reader._Inflated, "NEAR", chunk // 3)
        assert every_value(content) == whole


def test_context_words_written_as_character_references_are_found() -> None:
    scan = scan_bytes("list.xlsx", excel_style(random.Random(13)))
    assert scan.format == "xlsx" and not scan.errors
    assert {"header:ИИН", "health:пациент"} <= set(scan.context)


def openpyxl_list(path: Path, count: int, seed: int) -> bytes:
    """Inline strings with character references, as openpyxl writes them."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Пациенты")
    sheet.append(["ФИО", "ИИН", "телефон"])
    for n, value in enumerate(identifiers(rng, count)):
        sheet.append([f"Иванов {n}", int(value) if n // 2 % 2 else value,
                      f"+7 701 {n % 1000:03d} 12 34"])
    workbook.save(path)
    return path.read_bytes()


def test_a_workbook_from_openpyxl_is_read_as_calamine_reads_it(tmp_path: Path) -> None:
    """Enough rows for many chunks."""
    content = openpyxl_list(tmp_path / "list.xlsx", 3000, 14)
    found = every_value(content)
    reference = calamine_reference(content)
    assert found == reference
    assert scan_bytes("list.xlsx", content).identifiers["phone"] == 1000


def test_a_workbook_read_in_pieces_equals_one_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks and pieces, in this process: pieces start and end inside the sheet and
    inside the shared strings, and merged they give exactly the one-reading result."""
    import hashlib
    import secrets

    from audit.facts.pii import pieces
    monkeypatch.setattr(xlsx_reader, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(pieces, "PIECE_BYTES", 4096)
    monkeypatch.setattr(xlsx_reader, "CONTEXT_WINDOW", 2048)
    content = excel_style(random.Random(15), count=400)
    stream = io.BytesIO(content)
    key = secrets.token_bytes(32)
    plan = pieces.plan(stream, len(content), key, workers=64, file_format=FileFormat.XLSX)
    assert len({piece.part for piece in plan}) == 3 and len(plan) > 10
    scans = [pieces.scan_piece(stream, piece, None) for piece in plan]
    split = pieces.merged("book.xlsx", FileFormat.XLSX, len(content),
                          hashlib.sha256(content).hexdigest(), key, scans)
    whole = scan_bytes("book.xlsx", content)
    assert split.model_dump() == whole.model_dump()
    assert whole.identifiers["kz_iin"] > 300 and whole.context


def test_a_large_workbook_is_split_over_every_core(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the pool, with the reader's own chunk size: pieces of 1 MiB of XML."""
    from audit.facts.pii import parallel, pieces, scan_paths
    from audit.transports.filesystem import LocalTransport
    monkeypatch.setattr(pieces, "PIECE_BYTES", 1024 * 1024)
    monkeypatch.setattr(pieces, "SPLIT_BYTES", 4 * 1024 * 1024)
    monkeypatch.setattr(pieces, "WORKBOOK_MIN_BYTES", 64 * 1024)
    monkeypatch.setattr(parallel, "POOL_AFTER_FILES", 0)
    content = openpyxl_list(tmp_path / "big.xlsx", 12_000, 16)
    piece_counts = counted_merges(monkeypatch)
    facts = scan_paths(LocalTransport(), [str(tmp_path / "big.xlsx")], LargeBounds(),
                       workers=2)
    assert piece_counts == [3]
    split, = facts.files
    assert split.model_dump() == scan_bytes(str(tmp_path / "big.xlsx"), content).model_dump()
    assert split.identifiers["kz_iin"] > 10_000


def test_workbooks_count_what_they_inflate_to_and_start_the_pool(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workbooks, each small on disk but large inflated: the first calls for the pool and
    is scanned here while the workers start (with the second), the others in the workers, or
    here while both are busy; the results are a scan in one process's. A last file calling
    for the pool starts none: it would only take a core from this process's scan."""
    from audit.facts.pii import parallel, scan_paths
    from audit.transports.filesystem import LocalTransport
    monkeypatch.setattr(parallel, "BATCH_BYTES", 1)           # a task a file
    paths = [tmp_path / f"list{n}.xlsx" for n in range(6)]
    for n, path in enumerate(paths):
        openpyxl_list(path, 600, 20 + n)
    monkeypatch.setattr(parallel, "WORK_SNIFF_BYTES", 1024)
    with paths[0].open("rb") as first:
        inflated = parallel._work(first, paths[0].stat().st_size)
    assert inflated > 5 * paths[0].stat().st_size
    monkeypatch.setattr(parallel, "LARGE_WORK", inflated)
    started = []
    start_pool = parallel.Dispatcher._start_pool
    monkeypatch.setattr(parallel.Dispatcher, "_start_pool",
                        lambda self: started.append(self._files) or start_pool(self))
    together = scan_paths(LocalTransport(), [str(path) for path in paths], LargeBounds(),
                          workers=2)
    assert started == [2]
    alone = scan_paths(LocalTransport(), [str(path) for path in paths], LargeBounds(),
                       workers=1)
    assert [scan.model_dump() for scan in together.files] == \
        [scan.model_dump() for scan in alone.files]
    last = scan_paths(LocalTransport(), [str(paths[0])], LargeBounds(), workers=2)
    assert started == [2] and last.files[0].model_dump() == alone.files[0].model_dump()


def test_a_legacy_workbook_counts_what_decoding_its_cells_costs() -> None:
    """An .xls costs calamine ten times its size in text: a share of them starts the pool
    after a few, not after 64 MiB of them."""
    from audit.facts.pii import parallel
    from audit.facts.pii.formats import OLE2_MAGIC
    size = 2 * parallel.WORK_SNIFF_BYTES
    legacy = io.BytesIO(OLE2_MAGIC + bytes(size - len(OLE2_MAGIC)))
    assert parallel._work(legacy, size) == size * parallel.OLE2_COST
    assert parallel._work(io.BytesIO(bytes(size)), size) == size


class _IdlePool(Executor):
    """A pool whose workers never start a task: every task stays cancellable."""

    def __init__(self) -> None:
        self.tasks: list[Future[object]] = []

    def submit(self, fn: Callable[..., object], /, *args: object,   # type: ignore[override]
               **kwargs: object) -> Future[object]:
        self.tasks.append(Future())
        return self.tasks[-1]


def test_this_process_takes_back_the_tasks_no_worker_has_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rather than wait on workers that are busy (here: never start), this process scans the
    tasks waiting for them itself: each file is scanned once, and in walk order."""
    from audit.facts.pii import parallel, scan_paths
    from audit.transports.filesystem import LocalTransport
    monkeypatch.setattr(parallel, "BATCH_BYTES", 1)           # a task a file
    monkeypatch.setattr(parallel, "POOL_AFTER_FILES", 0)
    monkeypatch.setattr(parallel, "IN_FLIGHT", 1)             # the walk waits after 2 tasks
    pool = _IdlePool()
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda *args, **kwargs: pool)
    paths = [str(tmp_path / f"list{n}.xlsx") for n in range(6)]
    for n, path in enumerate(paths):
        openpyxl_list(Path(path), 100, 40 + n)
    together = scan_paths(LocalTransport(), paths, LargeBounds(), workers=2)
    alone = scan_paths(LocalTransport(), paths, LargeBounds(), workers=1)
    assert [scan.model_dump() for scan in together.files] == \
        [scan.model_dump() for scan in alone.files]
    # The first file was kept for this process; the others went to the pool and came back.
    assert sum(task.cancelled() for task in pool.tasks) == len(paths) - 1


class _BrokenPool(Executor):
    """A pool that broke: it refuses tasks, or (`failing`) takes them and fails each."""

    def __init__(self, failing: bool) -> None:
        self.failing = failing

    def submit(self, fn: Callable[..., object], /, *args: object,   # type: ignore[override]
               **kwargs: object) -> Future[object]:
        if not self.failing:
            raise BrokenProcessPool("a worker died")
        task: Future[object] = Future()
        task.set_exception(BrokenProcessPool("a worker died"))
        return task


@pytest.mark.parametrize("failing", [False, True], ids=["refusing", "failing"])
def test_a_broken_pool_costs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     failing: bool) -> None:
    """Batches and the pieces of a split workbook are scanned here when the pool refuses or
    fails them: every file once, as one process scans it."""
    from audit.facts.pii import parallel, pieces, scan_paths
    from audit.transports.filesystem import LocalTransport
    monkeypatch.setattr(pieces, "PIECE_BYTES", 1024 * 1024)
    monkeypatch.setattr(pieces, "SPLIT_BYTES", 4 * 1024 * 1024)
    monkeypatch.setattr(pieces, "WORKBOOK_MIN_BYTES", 64 * 1024)
    monkeypatch.setattr(parallel, "POOL_AFTER_FILES", 0)
    monkeypatch.setattr(parallel, "BATCH_BYTES", 1)           # a task a file
    monkeypatch.setattr(parallel, "ProcessPoolExecutor",
                        lambda *args, **kwargs: _BrokenPool(failing))
    paths = [tmp_path / f"list{n}.xlsx" for n in range(3)]
    for n, path in enumerate(paths):
        openpyxl_list(path, 100, 60 + n)
    openpyxl_list(tmp_path / "big.xlsx", 12_000, 16)
    paths.insert(1, tmp_path / "big.xlsx")
    together = scan_paths(LocalTransport(), [str(path) for path in paths], LargeBounds(),
                          workers=2)
    alone = scan_paths(LocalTransport(), [str(path) for path in paths], LargeBounds(),
                       workers=1)
    assert [scan.model_dump() for scan in together.files] == \
        [scan.model_dump() for scan in alone.files]
    assert together.files[1].identifiers["kz_iin"] > 10_000


def test_only_the_text_of_an_open_document_is_scanned_a_cut_inside_a_text_keeping_it() -> None:
    cell = ('<table:table-cell office:value-type="string"><text:p>ИИН 770101300123'
            '<text:s/>x</text:p></table:table-cell>').encode()
    assert xlsx_reader._text_of(cell) == "ИИН 770101300123\nx".encode()
    # A chunk cut inside a giant text (no tag within MAX_CARRY) starts or ends in it.
    assert xlsx_reader._text_of(b"770101300123 and more") == b"770101300123 and more"
    assert xlsx_reader._text_of(b"tail 770101300123</text:p><text:p>next") == (
        b"tail 770101300123\nnext")
