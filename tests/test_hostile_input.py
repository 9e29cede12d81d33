"""Hostile input: the strategy parser and the checklist importer answer anything with a clean error or a
result, never a crash or a half-written program; spreadsheet bombs are refused at every door; every spreadsheet
export escapes cells a spreadsheet would run as formulas.

Fuzzing is bounded: each `@given` names its `max_examples`, and no example database is written into the
project. A quadratic regular expression makes `test_long_runs_of_blanks_parse_in_linear_time` hang rather than
fail, which is the only way to see it without timing anything.
"""

from __future__ import annotations

import csv
import io
import random
import re
import struct
import zipfile
import zlib
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from rest_framework.test import APIClient

from cairn.lib.spreadsheets import Limits, SpreadsheetError, read_xlsx
from governance.models import ControlledDocument, DocumentVersion, Waiver
from metrics.models import Metric
from roadmap.checklists import CANONICAL_COLUMNS, ChecklistFileError, checklist_import
from roadmap.models import ChecklistItem, ImportRun, Phase, Program, Section
from scorecards import services as scorecard_services
from strategy.parser import Outline, StrategyError, parse_strategy
from strategy.services import strategy_import
from tests.factories import ItemFactory, SectionFactory, member

pytestmark = [pytest.mark.django_db, pytest.mark.heavy]

FUZZ = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}
CHECKLIST_IMPORT_URL = reverse("admin:roadmap_checklistitem_import_checklist")
API_CHECKLIST_IMPORT = "/api/v1/imports/checklist/"
API_STRATEGY_IMPORT = "/api/v1/imports/strategy/"


def db_counts() -> tuple[int, ...]:
    return (
        Program.objects.count(),
        Phase.objects.count(),
        Section.objects.count(),
        ChecklistItem.objects.count(),
        ChecklistItem.history.count(),
        Metric.objects.count(),
        ControlledDocument.objects.count(),
        DocumentVersion.objects.count(),
    )


# --- the strategy parser --------------------------------------------------------------------------------------

words = st.text(alphabet="abcXYZ Metric Phase Owner 0123456789:()|-–_*`.#[]x", max_size=30)
labels = st.sampled_from(
    ["Owner", "Document Version", "Version", "Last Updated", "Next Review", "Review Date", "Approver",
     "Distribution", "Document ID", "Classification", "Objectives", "Metrics", "Phase 1", "Core", "Cloud"]
) | words  # fmt: skip
months = st.integers(-2, 1300).map(str) | st.sampled_from(["", "x", "0", "12", "9" * 30])
window = (
    st.builds(
        lambda word, a, dash, b: f"({word} {a}{dash}{b})",
        st.sampled_from(["Months", "Month", "months", "Q", ""]),
        months,
        st.sampled_from(["-", "–", "—", " to ", ""]),
        months,
    )
    | st.builds(lambda a, b: f"({a}-{b} months)", months, months)
    | st.sampled_from(["(Q1-Q2)", "(Q4)", "(Q5-Q9)"])
)
front_matter = st.builds(
    lambda pairs: "---\n" + "\n".join(f"{k}: {v}" for k, v in pairs) + "\n---",
    st.lists(
        st.tuples(
            st.sampled_from(["title", "category", "tags", "created", "x", "- a", "title:"]),
            words
            | st.sampled_from(["[a, b", "2025-13-45", "{a: 1}", "&a x", "*a", "2025-03-01", "'", "[[[[["]),
        ),
        max_size=6,
    ),
)
markdown_lines = st.one_of(
    st.builds(lambda n, t: f"{'#' * n} {t}", st.integers(1, 8), words),
    st.builds(
        lambda n, p, name, w: f"{'#' * n} {p} {name} {w}",
        st.integers(1, 4),
        st.sampled_from(["Phase", "Stage", "phase"]),
        st.integers(0, 1000).map(str).map(lambda s: s + ":"),
        window,
    ),
    st.builds(
        lambda i, b, m, t: f"{' ' * i}{b} [{m}] {t}",
        st.integers(0, 40),
        st.sampled_from("-*+"),
        st.sampled_from(" xX"),
        words,
    ),
    st.builds(lambda i, lab, v: f"{' ' * i}- **{lab}:** {v}", st.integers(0, 12), labels, words),
    st.builds(lambda lab, v: f"**{lab}:** {v}", labels, words),
    st.builds(lambda lab, v: f"**{lab}**: {v}", labels, words),
    st.builds(lambda n, t: f"{n}. **{t}**", st.integers(0, 10**9), labels),
    st.builds(lambda t: f"**{t}**", labels),
    st.builds(lambda a, b: f"| {a} | {b} |", labels, words),
    st.builds(lambda a, b: f"| **{a}** | {b} |", labels, words),
    st.builds(lambda cells: "|" + "|".join(cells) + "|", st.lists(words, max_size=6)),
    st.sampled_from(
        [
            "",
            "---",
            "***",
            "```",
            "~~~",
            "|---|---|",
            "| Field | Value |",
            "**Document Control:**",
            "## Document Control",
            "**Metadata**",
            "## Executive Summary",
            "**Objectives:**",
            "- Owner: Jane",
            "- Next Review: {{ date }}",
            "## Key Metrics",
            "1. **Availability**",
            "   - **Uptime:** 99.9%",
        ]
    ),
    st.text(max_size=40).map(lambda text: text.replace("\n", " ").replace("\r", " ")),
)
documents = st.builds(
    lambda head, body, newline: newline.join([*head, *body]) + newline,
    st.lists(front_matter, max_size=1),
    st.lists(markdown_lines, max_size=50),
    st.sampled_from(["\n", "\r\n", "\r"]),
)


BINARY = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def parse_or_refuse(data: bytes | str) -> Outline | None:
    """The outline, or None when refused with a StrategyError naming a line of the document; anything else
    (another exception, a line outside the document) fails the test."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    last_line = raw.count(b"\n") + raw.count(b"\r") + 1
    try:
        outline = parse_strategy(data)
    except StrategyError as error:
        assert error.message
        assert error.line is None or 1 <= error.line <= last_line, error
        return None
    assert outline.title
    return outline


@settings(max_examples=200, **FUZZ)
@given(documents)
def test_markdown_built_from_the_grammar_parses_or_is_refused_with_a_line(text: str) -> None:
    parse_or_refuse(text)


@settings(max_examples=100, **FUZZ)
@given(
    documents, st.integers(0, 10_000), st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x01"])
)
def test_a_bad_byte_anywhere_is_refused_with_its_line(text: str, at: int, bad: bytes) -> None:
    assume(not BINARY.search(text))
    raw = text.encode()
    at = at % (len(raw) + 1)
    data = raw[:at] + bad + raw[at:]
    line = data[:at].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1

    with pytest.raises(StrategyError) as refused:
        parse_strategy(data)

    assert refused.value.line == line


@settings(max_examples=40, **FUZZ)
@given(
    documents,
    st.integers(0, 60),
    st.sampled_from(["- [ ] ", "# ", "## Phase 1: ", "**Owner:** ", "| ", "- **A:** ", "1. **", "    " * 50]),
    st.sampled_from([" ", "\t", "a", "*", "#", "|", "("]),
)
def test_huge_and_deeply_indented_lines_parse_or_are_refused(
    text: str, at: int, head: str, fill: str
) -> None:
    lines = text.splitlines()
    lines.insert(at % (len(lines) + 1), head + fill * 60_000 + "x")
    parse_or_refuse("\n".join(lines))


@pytest.mark.parametrize(
    "line",
    [
        "- [ ] a{blanks}b",
        "## a{blanks}b",
        "## a{blanks}#b",
        "**Owner:** a{blanks}b",
        "**a**{blanks}x",
        "1. **a**{blanks}x",
        "- a{blanks}b",
        "- Owner{blanks}:{blanks}a{blanks}b",
    ],
)
def test_long_runs_of_blanks_parse_in_linear_time(line: str) -> None:
    # Each of these took 3 to 25 s at 20,000 blanks before the patterns stopped backtracking; 300,000 would
    # take hours.
    text = "# Title\n## Document Control\n" + line.format(blanks=" \t" * 150_000) + "\n"
    parse_or_refuse(text)


@settings(max_examples=30, **FUZZ)
@given(documents | st.binary(max_size=300), st.sampled_from(["", "\x00", "\xff", "bad"]))
def test_a_refused_strategy_import_writes_nothing(text: str | bytes, spoil: str) -> None:
    data = text if isinstance(text, bytes) else text.encode()
    if spoil == "bad":
        data = b"\xff" + data
    elif spoil:
        data += spoil.encode("latin-1")
    before = db_counts()
    try:
        strategy_import(data=data, by=None, program_key="fuzzed")  # later examples update the program
    except StrategyError as error:
        assert error.message
        assert db_counts() == before


def test_a_strategy_over_the_size_limit_is_refused_by_the_admin(team: Any, settings: Any) -> None:
    settings.CAIRN_STRATEGY_MAX_BYTES = 1024
    client = Client()
    client.force_login(team.manager)
    document = ("# Plan\n## Work\n" + "- [ ] task\n" * 200).encode()
    before = db_counts()

    response = client.post(
        reverse("admin:roadmap_program_import_strategy"),
        {"file": SimpleUploadedFile("plan.md", document), "program": "alpha"},
    )

    assert "CAIRN_STRATEGY_MAX_BYTES" in str(response.context["form"].errors["file"])
    assert db_counts() == before


# --- the checklist importer: CSV ------------------------------------------------------------------------------

cell_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=",;\t|\"'\n\r =+-@ab", max_size=12),
    st.sampled_from(
        [
            "",
            "done",
            "blocked",
            "n/a",
            "P1",
            "maria",
            "2026-01-31",
            "2026-02-30",
            "1",
            "²",
            "9" * 5000,
            "NaN",
            "-1",
            "1e999",
            "yes",
            "http://x",
            "javascript:x",
            "=1+1",
            "'=1",
            "Foundations",
            "A > B > C",
            " > ",
            "x" * 40_000,
        ]
    ),
)
headers = st.lists(
    st.sampled_from(
        [*CANONICAL_COLUMNS, "program", "status_reason", "", "Title", " title ", "junk", "title"]
    ),
    min_size=1,
    max_size=16,
)
dialects = st.fixed_dictionaries(
    {
        "delimiter": st.sampled_from([",", ";", "\t", "|"]),
        "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
        "lineterminator": st.sampled_from(["\r\n", "\n", "\r"]),
    }
)


@st.composite
def csv_files(draw: Any) -> bytes:
    header = draw(headers)
    rows = draw(st.lists(st.lists(cell_text, max_size=len(header) + 2), max_size=12))
    out = io.StringIO()
    writer = csv.writer(out, **draw(dialects))
    writer.writerow(header)
    writer.writerows(rows)
    text = draw(st.sampled_from(["", "\ufeff"])) + out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1", "cp1252"]))
    return text.encode(encoding, errors="replace")


def import_or_refuse(program: Program, by: Any, data: bytes, file_format: str, commit_valid: bool) -> None:
    """Import, then check the outcome: a clean file error (row within the file) or a report whose errors name
    rows and columns; when the file is refused nothing is written."""
    before = db_counts()
    try:
        report = checklist_import(
            program=program, data=data, file_format=file_format, by=by, commit_valid=commit_valid
        )
    except ChecklistFileError as error:
        assert error.message
        assert error.row is None or error.row >= 1
        assert db_counts() == before
        return
    for row_error in report.errors:
        assert row_error.row >= 2 and row_error.column and row_error.message, row_error
    if report.invalid and not commit_valid:
        assert db_counts() == before
    else:
        assert report.committed


@settings(max_examples=80, **FUZZ)
@given(csv_files(), st.booleans())
def test_any_csv_imports_or_is_refused_cleanly(team: Any, data: bytes, commit_valid: bool) -> None:
    import_or_refuse(team.program, team.manager, data, "csv", commit_valid)


@settings(max_examples=60, **FUZZ)
@given(st.binary(max_size=400), st.sampled_from(["csv", "xlsx", "json", "yaml"]))
def test_any_bytes_import_or_are_refused_cleanly(team: Any, data: bytes, file_format: str) -> None:
    import_or_refuse(team.program, team.manager, data, file_format, False)


@pytest.mark.parametrize(
    ("data", "file_format", "row", "says"),
    [
        ("section,title,level\nFoundations,t,²\n", "csv", 2, "unknown level"),
        ("section,title,level\nFoundations,t," + "1" * 5000 + "\n", "csv", 2, "unknown level"),
        ("section,title\nFoundations,a\x00b\n", "csv", 2, "NUL byte"),
        ("section,title\nFoundations,a\x0bb\n", "csv", 2, "control character U+000B"),
        ('[{"section": "Foundations", "title": "a\\u0000b"}]', "json", 2, "control character U+0000"),
        ('- {section: Foundations, title: "a\\x01b"}\n', "yaml", 2, "control character U+0001"),
        ("[" * 100_000 + "]" * 100_000, "json", None, "nested too deeply"),
        ("[" * 1_000 + "]" * 1_000, "yaml", None, "nested too deeply"),
        ("section,title\nFoundations," + "x" * 40_000 + "\n", "csv", 2, "at most 32,767"),
        ("section,title\nFoundations," + "x" * 200_000 + "\n", "csv", 2, "the CSV cannot be read"),
        ("- {section: Foundations, due_date: 2026-02-30}\n", "yaml", None, "line 1"),
    ],
)
def test_it_refuses_hostile_cells_naming_the_row(
    team: Any, data: str, file_format: str, row: int | None, says: str
) -> None:
    before = db_counts()
    try:
        report = checklist_import(
            program=team.program, data=data.encode(), file_format=file_format, by=team.manager
        )
    except ChecklistFileError as error:
        assert says in error.message
        assert error.row == row
    else:
        assert [(e.row, e.message) for e in report.errors if says in e.message] != [], report.errors
        assert {e.row for e in report.errors} == {row}
    assert db_counts() == before


def test_a_million_blank_lines_are_not_rows(team: Any) -> None:
    data = b"key,section,title\nk1,Foundations,Only row\n" + b"\n" * 1_000_000

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert (report.rows, report.added) == (1, 1)


def test_a_csv_over_the_row_limit_is_refused_at_the_first_row_too_many(team: Any, settings: Any) -> None:
    settings.CAIRN_CHECKLIST_MAX_ROWS = 50
    data = ("section,title\n" + "".join(f"Foundations,Task {n}\n" for n in range(5000))).encode()
    before = db_counts()

    with pytest.raises(ChecklistFileError) as refused:
        checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert refused.value.row == 52
    assert (
        "more than 50 rows" in refused.value.message and "CAIRN_CHECKLIST_MAX_ROWS" in refused.value.message
    )
    assert db_counts() == before


# --- the checklist importer: XLSX -----------------------------------------------------------------------------

xlsx_cell = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=15),
    st.sampled_from(["=1+1", '=HYPERLINK("http://x")', "'=x", "Foundations", "done", "P1", "x" * 33_000]),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=False),
    st.booleans(),
    st.dates(min_value=date(1900, 3, 1), max_value=date(2100, 1, 1)),
)


@st.composite
def xlsx_files(draw: Any) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(draw(headers))
    for row in draw(st.lists(st.lists(xlsx_cell, max_size=18), max_size=10)):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    # A share of the length, not an offset: openpyxl stamps the time, so the length varies between runs.
    at = int(draw(st.floats(0, 1, exclude_max=True)) * len(data))
    if damage == "truncate":
        data = data[:at]
    elif damage == "flip":
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    return data


@settings(max_examples=40, **FUZZ)
@given(xlsx_files(), st.booleans())
def test_any_xlsx_imports_or_is_refused_cleanly(team: Any, data: bytes, commit_valid: bool) -> None:
    import_or_refuse(team.program, team.manager, data, "xlsx", commit_valid)


def _stored(name: str, payload: bytes) -> tuple[str, bytes, int, int, int]:
    return name, payload, zlib.crc32(payload), len(payload), zipfile.ZIP_STORED


def _deflated(name: str, payload: bytes) -> tuple[str, bytes, int, int, int]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = compressor.compress(payload) + compressor.flush()
    return name, body, zlib.crc32(payload), len(payload), zipfile.ZIP_DEFLATED


def _zip(parts: list[tuple[str, bytes, int, int, int]], declared: dict[str, int] | None = None) -> bytes:
    """A zip written by hand, so a part can be deflated once and repeated, and its directory can lie."""
    out, directory = bytearray(), bytearray()
    for name, payload, crc, size, method in parts:
        size = (declared or {}).get(name, size)
        offset, encoded = len(out), name.encode()
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size, len(encoded), 0
        )
        out += encoded + payload
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(payload), size, len(encoded),
            0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        directory += encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(parts), len(parts), len(directory), len(out), 0)
    return bytes(out + directory + end)


SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
HEADER_ROW = b'<row r="1"><c r="A1" t="inlineStr"><is><t>section</t></is></c><c r="B1" t="inlineStr"><is><t>title</t></is></c></row>'


def _row(number: int, section: bytes = b"Foundations") -> bytes:
    return (
        b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c><c r="B%d" t="inlineStr"><is><t>Task %d</t></is></c></row>'
        % (number, number, section, number, number)
    )


@cache
def _workbook_parts() -> dict[str, bytes]:
    book = Workbook()
    book.active.append(["section", "title"])
    out = io.BytesIO()
    book.save(out)
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def xlsx_with_sheet(sheet: bytes, *, extra_parts: int = 0) -> bytes:
    sheet_name = "xl/worksheets/sheet1.xml"
    parts = [
        _deflated(name, sheet) if name == sheet_name else _stored(name, data)
        for name, data in _workbook_parts().items()
    ]
    parts += [_stored(f"xl/custom/{n}.xml", b"") for n in range(extra_parts)]
    return _zip(parts)


def repeated_sheet_xlsx(
    row: bytes, blocks: int, *, head: bytes = b"", declared: int | None = None
) -> tuple[bytes, int]:
    """An XLSX whose sheet is `blocks` MB of `row` repeated, deflated once and the block copied (so building
    it costs nothing); its directory may `declare` another size. Returns the file and the sheet's real size."""
    chunk = row * (1_048_576 // len(row))
    head = SHEET_HEAD + head + b"<sheetData>" + HEADER_ROW
    tail = b"</sheetData></worksheet>"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)  # the same bytes every time
    end = compressor.compress(tail) + compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(blocks):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + blocks * len(chunk) + len(tail)
    sheet = ("xl/worksheets/sheet1.xml", start + block * blocks + end, crc, size, zipfile.ZIP_DEFLATED)
    parts = [sheet if name == sheet[0] else _stored(name, data) for name, data in _workbook_parts().items()]
    return _zip(parts, declared={sheet[0]: declared} if declared is not None else None), size


@cache
def zip_bomb(*, declared: int | None = None) -> bytes:
    """A small XLSX whose sheet unpacks to 300 MB."""
    return repeated_sheet_xlsx(_row(2), 300, declared=declared)[0]


def sheet_of_rows(count: int) -> bytes:
    body = b"".join(_row(number) for number in range(2, count + 2))
    return SHEET_HEAD + b"<sheetData>" + HEADER_ROW + body + b"</sheetData></worksheet>"


@cache
def million_rows() -> bytes:
    # Rows without numbers count from the last one. With a <dimension>, as Excel writes it: without one
    # openpyxl reads the whole sheet once to look for it (bounded by the unpacked-size limit).
    row = b"<row><c><v>1</v></c></row>"
    data, size = repeated_sheet_xlsx(row, 26, head=b'<dimension ref="A1:B1000001"/>')
    assert size // len(row) > 1_000_000
    return data


def test_the_zip_bomb_is_small_and_really_unpacks_to_hundreds_of_megabytes() -> None:
    bomb = zip_bomb()
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
        with archive.open(sheet) as part:
            first = part.read(len(SHEET_HEAD))
    assert len(bomb) < 1_500_000  # the upload limit is 20 MB
    assert sheet.file_size > 300_000_000
    assert first == SHEET_HEAD


HOSTILE_XLSX = {
    # name: (file, what the refusal says)
    "zip bomb": (lambda: zip_bomb(), "unpacks to more than 104,857,600 bytes"),
    "zip bomb whose directory understates it": (lambda: zip_bomb(declared=5000), "not a readable XLSX"),
    # With the row limit lowered (a separate test checks the default limit on CSV) so reading stops soon.
    "a million rows": (million_rows, "more than 1,000 rows, the limit (setting CAIRN_CHECKLIST_MAX_ROWS)"),
    "a cell in the last column": (
        lambda: xlsx_with_sheet(
            SHEET_HEAD
            + b"<sheetData>"
            + HEADER_ROW
            + b'<row r="2"><c r="XFD2" t="inlineStr"><is><t>x</t></is></c></row></sheetData></worksheet>'
        ),
        "value in column 16,384",
    ),
    "thousands of parts": (lambda: xlsx_with_sheet(sheet_of_rows(1), extra_parts=5000), "5,0"),
    "not a zip": (lambda: random.Random(3).randbytes(5000), "not an XLSX spreadsheet"),
    "malformed sheet XML": (
        lambda: xlsx_with_sheet(SHEET_HEAD + b"<sheetData>" + HEADER_ROW + b'<row r="2"><c r="A2"'),
        "not a readable XLSX",
    ),
    "entity expansion": (
        lambda: xlsx_with_sheet(
            b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY %c "%s">' % (97 + n, (b"&%c;" % (96 + n)) * 10) for n in range(1, 8))
            + b"]>"
            + SHEET_HEAD[38:]
            + b"<sheetData>"
            + HEADER_ROW
            + b'<row r="2"><c r="A2" t="inlineStr"><is><t>&h;</t></is></c></row></sheetData></worksheet>'
        ),
        "not a readable XLSX",
    ),
}


def through_door(door: str, team: Any, data: bytes, name: str, tmp_path: Path) -> str:
    """Post the file through one door as the program's manager; return the refusal's text."""
    if door == "api":
        client = APIClient()
        client.force_authenticate(team.manager)
        response = client.post(
            API_CHECKLIST_IMPORT,
            {"program": "alpha", "file": SimpleUploadedFile(name, data)},
            format="multipart",
        )
        assert response.status_code == 400, response.content[:300]
        return response.json()["detail"]
    if door == "admin":
        client = Client()
        client.force_login(team.manager)
        response = client.post(
            CHECKLIST_IMPORT_URL, {"program": team.program.pk, "file": SimpleUploadedFile(name, data)}
        )
        assert response.status_code == 200
        return str(response.context["form"].errors["file"])
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError) as refused:
        call_command("import_checklist", str(path), "--program", "alpha", stdout=io.StringIO())
    return str(refused.value)


@pytest.mark.parametrize("door", ["api", "admin", "cli"])
@pytest.mark.parametrize("case", list(HOSTILE_XLSX))
def test_hostile_spreadsheets_are_refused_at_every_door(
    team: Any, tmp_path: Path, door: str, case: str, settings: Any
) -> None:
    make, says = HOSTILE_XLSX[case]
    settings.CAIRN_CHECKLIST_MAX_ROWS = 1000
    before = (*db_counts(), ImportRun.objects.count())

    message = through_door(door, team, make(), "items.xlsx", tmp_path)

    assert says in message
    assert (*db_counts(), ImportRun.objects.count()) == before


@pytest.mark.parametrize("door", ["api", "admin", "cli"])
def test_an_oversized_upload_is_refused_at_every_door(
    team: Any, tmp_path: Path, door: str, settings: Any
) -> None:
    settings.CAIRN_CHECKLIST_MAX_BYTES = 4096
    data = ("section,title\n" + "Foundations,A task\n" * 400).encode()
    before = (*db_counts(), ImportRun.objects.count())

    message = through_door(door, team, data, "items.csv", tmp_path)

    assert "the file is over the limit of 4,096 bytes" in message
    assert "CAIRN_CHECKLIST_MAX_BYTES" in message
    assert (*db_counts(), ImportRun.objects.count()) == before


def test_a_declared_dimension_is_not_trusted(team: Any) -> None:
    # A1:XFD1048576 would be 17 billion padded cells if believed; the sheet holds one row.
    sheet = (
        SHEET_HEAD
        + b'<dimension ref="A1:XFD1048576"/><sheetData>'
        + HEADER_ROW
        + _row(2)
        + b"</sheetData></worksheet>"
    )

    report = checklist_import(
        program=team.program, data=xlsx_with_sheet(sheet), file_format="xlsx", by=team.manager
    )

    assert (report.rows, report.added) == (1, 1)


def test_a_sheet_with_too_many_cells_is_refused() -> None:
    rows = b"".join(
        b'<row r="%d">' % n
        + b"".join(b'<c r="%c%d"><v>1</v></c>' % (column, n) for column in b"ABCD")
        + b"</row>"
        for n in range(2, 40)
    )
    sheet = SHEET_HEAD + b"<sheetData>" + HEADER_ROW + rows + b"</sheetData></worksheet>"

    with pytest.raises(SpreadsheetError) as refused:
        read_xlsx(xlsx_with_sheet(sheet), Limits(rows=1000, unzipped_bytes=10**8, cells=100))

    assert refused.value.message == "the file has more than 100 cells; split it into smaller files."
    assert refused.value.row == 27  # rows 2..26 hold 100 cells


# --- every spreadsheet export escapes formulas ----------------------------------------------------------------

DANGEROUS = ["=", "+", "-", "@", "\t", "\r", "\x00"]
TEXT_COLUMNS = ("key", "section", "title", "description", "owner", "notes", "status_reason")


@pytest.fixture
def risky(team: Any) -> dict[str, dict[str, str]]:
    """Items whose every text column starts with a character a spreadsheet would run, keyed by item key.

    PostgreSQL cannot store NUL in text (and every door refuses it), so NUL is tried where the database can
    hold it."""
    prefixes = [p for p in DANGEROUS if p != "\x00" or connection.vendor != "postgresql"]
    expected: dict[str, dict[str, str]] = {}
    for n, prefix in enumerate(prefixes):
        owner = member(team.program, "contributor", f"{prefix}owner{n}")
        section = SectionFactory(program=team.program, title=f"{prefix}section {n}")
        item = ItemFactory(
            section=section,
            key=f"{prefix}key-{n}",
            title=f"{prefix}title {n}",
            description=f"{prefix}description",
            notes=f"{prefix}notes",
            owner=owner,
            status=ChecklistItem.Status.BLOCKED,
            status_reason=f"{prefix}reason",
        )
        expected[item.key] = {
            "key": item.key, "section": f"{prefix}section {n}", "title": item.title, "description": item.description,
            "owner": owner.username, "notes": item.notes, "status_reason": item.status_reason,
        }  # fmt: skip
    return expected


def csv_rows(content: bytes | str) -> list[dict[str, str]]:
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    return list(csv.DictReader(io.StringIO(text, newline="")))


def xlsx_rows(content: bytes) -> list[dict[str, Any]]:
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    cells = list(sheet.iter_rows())
    for row in cells:
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    header = [cell.value for cell in cells[0]]
    return [dict(zip(header, (cell.value for cell in row), strict=False)) for row in cells[1:]]


def export_through(door: str, file_format: str, team: Any, tmp_path: Path) -> bytes | str:
    if door == "api":
        client = APIClient()
        client.force_authenticate(team.manager)
        response = client.get(f"/api/v1/programs/alpha/checklist/?format={file_format}")
        assert response.status_code == 200
        return response.content
    if door == "admin":
        client = Client()
        client.force_login(team.manager)
        url = reverse("admin:roadmap_checklistitem_export")
        form = client.get(url).context["form"]
        choice = {"csv": "0", "xlsx": "1"}[file_format]
        data = {"format": choice, "resource": "0"} | {
            n: "on" for n in form.fields if n.startswith("checklistitem")
        }
        response = client.post(url, data)
        assert response.status_code == 200
        return response.content
    out = tmp_path / f"export.{file_format}"
    call_command(
        "export_checklist", "alpha", "--format", file_format, "--output", str(out), stderr=io.StringIO()
    )
    return out.read_bytes()


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
@pytest.mark.parametrize("door", ["api", "admin", "cli"])
def test_every_export_escapes_every_text_column(
    team: Any, risky: dict[str, dict[str, str]], tmp_path: Path, door: str, file_format: str
) -> None:
    content = export_through(door, file_format, team, tmp_path)

    rows = csv_rows(content) if file_format == "csv" else xlsx_rows(content)  # type: ignore[arg-type]
    by_number = {
        int(match.group(1)): row for row in rows if (match := re.search(r"key-([0-9]+)$", row["key"]))
    }
    assert len(by_number) == len(risky)
    for original in risky.values():
        row = by_number[int(original["key"].rpartition("-")[2])]
        for column in TEXT_COLUMNS:
            cell = str(row[column])
            assert cell.startswith("'"), (column, cell)
            if file_format == "csv":
                assert cell == f"'{original[column]}", (column, cell)
            else:  # XML turns CR into LF and the export NUL into U+FFFD: XLSX cannot hold either
                assert cell[2:] == original[column][1:], (column, cell)


def test_the_command_line_csv_export_escapes_to_standard_output(
    team: Any, risky: dict[str, dict[str, str]]
) -> None:
    out = io.StringIO()

    call_command("export_checklist", "alpha", "--format", "csv", stdout=out)

    rows = [row for row in csv_rows(out.getvalue()) if row["key"][1:] in risky]
    assert len(rows) == len(risky)
    assert all(row[column].startswith("'") for row in rows for column in TEXT_COLUMNS)


# --- reportlab: what the existing markup test does not cover --------------------------------------------------

MARKUP = "<b>&<i>"  # short: a table cell that wraps interleaves with its neighbours in the extracted text


def test_the_scorecard_prints_owners_waiver_reasons_and_document_fields_literally(team: Any) -> None:
    owner = member(team.program, "contributor", "<b>owner")
    ItemFactory(
        section=team.section,
        title="Risky",
        owner=owner,
        status=ChecklistItem.Status.BLOCKED,
        status_reason="r",
    )
    Program.objects.filter(pk=team.program.pk).update(subtitle=f"Sub {MARKUP}")
    Waiver.objects.create(
        program=team.program,
        item=team.unowned_item,
        type=Waiver.Type.RISK_ACCEPTED,
        reason=f"Waived {MARKUP}",
        requested_by=team.contributor,
        approved_by=team.manager,
        approved_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=30),
    )
    ControlledDocument.objects.create(
        program=team.program, title="Policy", doc_id=f"ID {MARKUP}", owner="o", approver=f"Approver {MARKUP}",
        next_review_due=date(2025, 1, 1),
    )  # fmt: skip
    program = Program.objects.get(pk=team.program.pk)

    scorecard, _ = scorecard_services.scorecard_generate(program=program)

    from pypdf import PdfReader

    content = scorecard_services.scorecard_content(scorecard=scorecard)
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())
    for shown in ("<b>owner", f"Waived {MARKUP}", f"Approver {MARKUP}", f"ID {MARKUP}", f"Sub {MARKUP}"):
        assert shown in text, shown


def test_an_upload_is_read_only_up_to_one_byte_past_the_limit() -> None:
    """A huge upload is never held whole in a web process: the importer needs only enough to refuse it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cairn.lib.uploads import read_upload

    upload = SimpleUploadedFile("big.csv", b"x" * 100_000)
    assert len(read_upload(upload, limit=4096)) == 4097
    assert read_upload(SimpleUploadedFile("small.csv", b"key,title\n"), limit=4096) == b"key,title\n"
