"""Checklist spreadsheets in and out: the import engine, import runs, the export and their commands."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook, load_workbook

from cairn.lib.spreadsheets import escape_cell, unescape_cell
from roadmap.checklists import (
    ChecklistFileError,
    checklist_import,
    import_run_execute,
    import_run_start,
)
from roadmap.models import ChecklistItem, ImportRun, Section
from roadmap.resources import checklist_export
from tests.factories import ItemFactory, PhaseFactory, ProgramFactory, SectionFactory, member

ASVS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "owasp_asvs_5.0.0_en.csv"
HEADER = [
    "key", "phase", "section", "title", "description", "status", "owner", "due_date", "weight", "level",
    "blocking", "evidence_url", "notes",
]  # fmt: skip

pytestmark = pytest.mark.django_db


# --- helpers ------------------------------------------------------------------------------------------------


def csv_bytes(rows: list[dict[str, Any]], header: list[str] | None = None) -> bytes:
    """A CSV file of `rows`; the header is `header` or every column the rows use, in first-seen order."""
    columns = header or list(dict.fromkeys(name for row in rows for name in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row.get(name) for name in columns])
    return out.getvalue().encode()


def xlsx_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def one_json_line(out: io.StringIO) -> dict[str, Any]:
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object"
    return json.loads(lines[0])


def run_import(path: Path, program: str, *args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("import_checklist", str(path), "--program", program, "--json", *args, stdout=out)
    return one_json_line(out)


def run_failing_import(path: Path, program: str, *args: str) -> tuple[dict[str, Any], CommandError]:
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_checklist", str(path), "--program", program, "--json", *args, stdout=out)
    return one_json_line(out), raised.value


def export(tmp_path: Path, program: str, file_format: str) -> Path:
    path = tmp_path / f"export-{program}.{file_format}"
    call_command(
        "export_checklist", program, "--format", file_format, "--output", str(path), stderr=io.StringIO()
    )
    return path


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    c = report["items"]
    return c["added"], c["changed"], c["unchanged"], c["invalid"]


def db_state() -> tuple[int, int, int, int]:
    return (
        ChecklistItem.objects.count(),
        Section.objects.count(),
        ImportRun.objects.count(),
        ChecklistItem.history.count(),
    )


def path_of(section: Section) -> str:
    parts = []
    cursor: Section | None = section
    while cursor is not None:
        parts.append(cursor.title)
        cursor = cursor.parent
    return " > ".join(reversed(parts))


def snapshot(program: Any) -> list[tuple[Any, ...]]:
    """Everything an import can set on the program's items, keyed by what a spreadsheet shows."""
    return sorted(
        (
            item.key,
            item.phase.code if item.phase else "",
            path_of(item.section),
            item.title,
            item.description,
            item.status,
            item.status_reason,
            item.owner.username if item.owner else "",
            item.due_date,
            item.weight,
            item.level,
            item.blocking,
            item.evidence_url,
            item.notes,
        )
        for item in ChecklistItem.objects.filter(program=program).select_related("phase", "owner", "section")
    )


def asvs_rows() -> list[dict[str, str]]:
    with ASVS.open(encoding="utf-8", newline="") as file:
        return [row for row in csv.DictReader(file) if row["req_id"]]


def numbered_rows(count: int, prefix: str, description: str = "") -> bytes:
    return csv_bytes(
        [
            {
                "key": f"{prefix}-{n}",
                "section": "Foundations",
                "title": f"Bulk task {prefix} {n}",
                "description": description,
            }
            for n in range(count)
        ]
    )


def insert_batches(model: Any, rows: int) -> int:
    """How many INSERTs the database needs for `rows` rows of `model` (SQLite caps the parameters per query)."""
    fields = model._meta.concrete_fields
    per_insert = min(500, connection.ops.bulk_batch_size(fields, [None] * rows) or rows)
    return -(-rows // per_insert)


def update_batches(fields: list[str], rows: int) -> int:
    """How many UPDATEs bulk_update needs for `rows` rows changing `fields` (as QuerySet.bulk_update counts)."""
    model_fields = [ChecklistItem._meta.get_field(name) for name in fields]
    per_update = min(500, connection.ops.bulk_batch_size(["pk", "pk", *model_fields], [None] * rows) or rows)
    return -(-rows // per_update)


# --- OWASP ASVS through the built-in mapping ----------------------------------------------------------------


def test_it_imports_the_asvs_catalogue_through_its_mapping() -> None:
    program = ProgramFactory(key="asvs")
    file_rows = asvs_rows()

    report = run_import(ASVS, "asvs", "--mapping", "asvs")

    assert report["program"] == "asvs"
    assert report["dry_run"] is False
    assert report["rows"] == 345
    assert counts(report) == (345, 0, 0, 0)
    assert report["errors"] == []
    items = ChecklistItem.objects.filter(program=program)
    assert items.count() == 345
    levels = Counter(items.values_list("level", flat=True))
    assert levels == Counter(int(row["L"]) for row in file_rows)
    assert levels == {1: 70, 2: 183, 3: 92}


def test_it_builds_the_asvs_chapters_and_sections_as_a_tree() -> None:
    program = ProgramFactory(key="asvs")
    file_rows = asvs_rows()

    run_import(ASVS, "asvs", "--mapping", "asvs")

    roots = Section.objects.filter(program=program, parent=None)
    assert sorted(roots.values_list("title", flat=True)) == sorted({row["chapter_name"] for row in file_rows})
    assert roots.count() == 17
    children = Section.objects.filter(program=program, parent__isnull=False).select_related("parent")
    assert {(s.parent.title, s.title) for s in children} == {
        (row["chapter_name"], row["section_name"]) for row in file_rows
    }
    assert all(child.parent.parent_id is None for child in children)
    memory = Section.objects.get(program=program, title="Memory, String, and Unmanaged Code")
    assert memory.parent.title == "Encoding and Sanitization"
    assert memory.parent.parent is None
    item = ChecklistItem.objects.get(program=program, key="V1.2.10")
    assert item.section.title == "Injection Prevention"
    assert item.section.parent.title == "Encoding and Sanitization"


def test_it_stores_long_asvs_requirements_whole() -> None:
    program = ProgramFactory(key="asvs")
    longest = max(asvs_rows(), key=lambda row: len(row["req_description"]))
    assert len(longest["req_description"]) > 500

    run_import(ASVS, "asvs", "--mapping", "asvs")

    item = ChecklistItem.objects.get(program=program, key=longest["req_id"])
    assert item.title == longest["req_description"]


def test_it_changes_nothing_when_the_asvs_file_is_imported_again() -> None:
    program = ProgramFactory(key="asvs")
    run_import(ASVS, "asvs", "--mapping", "asvs")
    history = ChecklistItem.history.filter(program=program).count()
    sections = Section.objects.filter(program=program).count()

    report = run_import(ASVS, "asvs", "--mapping", "asvs")

    assert counts(report) == (0, 0, 345, 0)
    assert ChecklistItem.history.filter(program=program).count() == history == 345
    assert Section.objects.filter(program=program).count() == sections


def test_it_records_each_asvs_import_as_a_run() -> None:
    program = ProgramFactory(key="asvs")

    run_import(ASVS, "asvs", "--mapping", "asvs")

    run = ImportRun.objects.get(program=program)
    assert run.sha256 == hashlib.sha256(ASVS.read_bytes()).hexdigest()
    assert run.source_name == ASVS.name
    assert run.file_format == "csv"
    assert run.mapping == "asvs"
    assert run.status == ImportRun.Status.SUCCEEDED
    assert run.rows == run.progress == 345
    assert run.report["items"] == {"added": 345, "changed": 0, "unchanged": 0, "invalid": 0}
    assert run.source is None
    assert run.finished_at is not None


# --- the canonical columns ----------------------------------------------------------------------------------


@pytest.fixture
def hardening(team: Any) -> Any:
    return PhaseFactory(program=team.program, code="P2", name="Hardening")


def test_it_sets_every_canonical_column(team: Any, hardening: Any) -> None:
    data = csv_bytes(
        [
            {
                "key": "ops-1",
                "phase": "p1",
                "section": "Foundations",
                "title": "Write the runbook",
                "description": "Steps for whoever is on call.",
                "status": "in progress",
                "owner": "carla",
                "due_date": "2026-03-31",
                "weight": "2.5",
                "level": "2",
                "blocking": "no",
                "evidence_url": "https://example.com/runbook",
                "notes": "Draft in the wiki.",
            },
            {
                "key": "",
                "phase": "HARDENING",
                "section": "Platform > Network > Firewalls",
                "title": "Close unused ports",
                "owner": "MARIA@Example.com",
                "blocking": "yes",
            },
        ],
        HEADER,
    )

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert (report.added, report.changed, report.unchanged, report.invalid) == (2, 0, 0, 0)
    assert report.sections_created == 3
    runbook = ChecklistItem.objects.get(program=team.program, key="ops-1")
    assert runbook.phase == team.phase
    assert runbook.section == team.section
    assert runbook.title == "Write the runbook"
    assert runbook.description == "Steps for whoever is on call."
    assert runbook.status == ChecklistItem.Status.IN_PROGRESS
    assert runbook.owner == team.contributor
    assert runbook.due_date == date(2026, 3, 31)
    assert runbook.weight == Decimal("2.50")
    assert runbook.level == 2
    assert runbook.blocking is False
    assert runbook.evidence_url == "https://example.com/runbook"
    assert runbook.notes == "Draft in the wiki."
    ports = ChecklistItem.objects.get(program=team.program, title="Close unused ports")
    assert ports.key  # derived from section path and title
    assert ports.phase == hardening
    assert ports.owner == team.manager
    assert ports.blocking is True
    assert ports.level is None
    assert ports.due_date is None
    firewalls = ports.section
    assert (firewalls.title, firewalls.parent.title, firewalls.parent.parent.title) == (
        "Firewalls",
        "Network",
        "Platform",
    )
    assert firewalls.parent.parent.parent is None
    assert firewalls.program == team.program


@pytest.mark.parametrize(
    ("written", "status"),
    [
        ("done", "done"),
        ("complete", "done"),
        ("x", "done"),
        ("✓", "done"),
        ("yes", "done"),
        ("Done", "done"),
        ("in progress", "in_progress"),
        ("wip", "in_progress"),
        ("blocked", "blocked"),
        ("n/a", "not_applicable"),
        ("not started", "not_started"),
    ],
)
def test_it_reads_the_usual_ways_of_writing_a_status(team: Any, written: str, status: str) -> None:
    data = csv_bytes(
        [{"section": "Foundations", "title": "Rotate keys", "status": written, "notes": "Vendor is late"}]
    )

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert report.invalid == 0, report.errors
    item = ChecklistItem.objects.get(program=team.program, title="Rotate keys")
    assert item.status == status
    if status in ChecklistItem.STATUSES_NEEDING_REASON:
        assert item.status_reason == "Vendor is late"
    if status == "done":
        assert item.completed_at is not None
        assert item.attested_by == team.manager


def test_it_matches_rows_without_a_key_by_section_and_title(team: Any) -> None:
    first = csv_bytes(
        [
            {"section": "Foundations", "title": "Write the runbook"},
            {"section": "Platform > Network", "title": "Close unused ports"},
        ]
    )
    checklist_import(program=team.program, data=first, file_format="csv", by=team.manager)
    before = dict(ChecklistItem.objects.filter(program=team.program).values_list("title", "pk"))
    respelled = csv_bytes(
        [
            {"section": "Foundations", "title": "  write THE   Runbook "},
            {"section": " Platform  >  Network ", "title": "Close unused ports"},
        ]
    )

    report = checklist_import(program=team.program, data=respelled, file_format="csv", by=team.manager)

    # The respelled title replaces the old spelling on the same item; the other row is as it was.
    assert (report.added, report.changed, report.unchanged, report.invalid) == (0, 1, 1, 0)
    after = ChecklistItem.objects.filter(program=team.program)
    assert after.count() == len(before)
    assert after.get(pk=before["Write the runbook"]).title == "write THE   Runbook"
    assert after.get(title="Close unused ports").pk == before["Close unused ports"]


def test_it_changes_only_the_item_whose_cell_changed(team: Any) -> None:
    rows = [
        {"key": f"ops-{n}", "section": "Foundations", "title": f"Task {n}", "description": "As planned."}
        for n in range(4)
    ]
    checklist_import(program=team.program, data=csv_bytes(rows), file_format="csv", by=team.manager)
    history = ChecklistItem.history.count()
    untouched = dict(
        ChecklistItem.objects.exclude(key="ops-2").values_list("pk", "updated_at"),
    )
    rows[2]["description"] = "Moved to next quarter."

    report = checklist_import(
        program=team.program, data=csv_bytes(rows), file_format="csv", by=team.manager, source_name="q2.csv"
    )

    assert (report.added, report.changed, report.unchanged, report.invalid) == (0, 1, 3, 0)
    changed = [result for result in report.results if result.action == "update"]
    assert [result.key for result in changed] == ["ops-2"]
    assert changed[0].changes == {"description": ("As planned.", "Moved to next quarter.")}
    item = ChecklistItem.objects.get(program=team.program, key="ops-2")
    assert item.description == "Moved to next quarter."
    assert ChecklistItem.history.count() == history + 1
    record = item.history.first()
    assert record.history_type == "~"
    assert record.history_change_reason.startswith("Checklist import")
    assert record.history_user == team.manager
    assert dict(ChecklistItem.objects.exclude(key="ops-2").values_list("pk", "updated_at")) == untouched


def test_it_reports_items_missing_from_the_file_and_keeps_them(team: Any) -> None:
    rows = [{"key": f"ops-{n}", "section": "Foundations", "title": f"Task {n}"} for n in range(3)]
    checklist_import(program=team.program, data=csv_bytes(rows), file_format="csv", by=team.manager)
    items = ChecklistItem.objects.filter(program=team.program).count()

    report = checklist_import(
        program=team.program, data=csv_bytes(rows[:1]), file_format="csv", by=team.manager
    )

    assert report.unchanged == 1
    assert sorted(report.absent) == sorted(["ops-1", "ops-2", team.owned_item.key, team.unowned_item.key])
    assert ChecklistItem.objects.filter(program=team.program).count() == items
    assert not ChecklistItem.objects.filter(program=team.program, archived_at__isnull=False).exists()
    assert "are not in this file (kept, not deleted)" in report.summary_lines()[-1]


# --- formats ------------------------------------------------------------------------------------------------

FORMAT_ROWS: list[dict[str, Any]] = [
    {
        "key": "fmt-1",
        "phase": "P1",
        "section": "Build > Pipelines",
        "title": "Sign every artefact",
        "description": "Keys live in the HSM, not on the runners.",
        "status": "done",
        "owner": "carla",
        "due_date": date(2026, 2, 27),
        "weight": 2.5,
        "level": 2,
        "blocking": False,
        "evidence_url": "https://example.com/signing",
        "notes": "",
    },
    {
        "key": "fmt-2",
        "phase": "P1",
        "section": "Build > Pipelines",
        "title": 'Pin third-party actions, "by digest"',
        "description": "",
        "status": "blocked",
        "owner": "",
        "due_date": None,
        "weight": 1,
        "level": 3,
        "blocking": True,
        "evidence_url": "",
        "notes": "Waiting for the platform team",
    },
    {
        "key": "",
        "phase": "",
        "section": "Run",
        "title": "Page the on-call engineer — café hours",
        "description": "Multi-line\nnotes, with commas.",
        "status": "not started",
        "owner": "carla",
        "due_date": None,
        "weight": None,
        "level": None,
        "blocking": None,
        "evidence_url": "",
        "notes": "",
    },
]


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def in_format(file_format: str) -> bytes:
    if file_format == "csv":
        return csv_bytes([{k: as_text(v) for k, v in row.items()} for row in FORMAT_ROWS], HEADER)
    if file_format == "xlsx":
        return xlsx_bytes(
            HEADER, [[row[name] if row[name] != "" else None for name in HEADER] for row in FORMAT_ROWS]
        )
    records = [{k: v for k, v in row.items() if v not in (None, "")} for row in FORMAT_ROWS]
    if file_format == "json":
        return json.dumps(
            [{k: v.isoformat() if isinstance(v, date) else v for k, v in r.items()} for r in records]
        ).encode()
    return yaml.safe_dump(records, allow_unicode=True).encode()


def format_program() -> Any:
    program = ProgramFactory()
    PhaseFactory(program=program, code="P1", name="Build")
    member(program, "contributor", "carla")
    return program


def test_it_imports_the_same_items_from_csv_xlsx_json_and_yaml(tmp_path: Path) -> None:
    snapshots = {}
    for file_format in ("csv", "xlsx", "json", "yaml"):
        program = format_program()
        path = write(tmp_path, f"items.{file_format}", in_format(file_format))

        report = run_import(path, program.key)

        assert counts(report) == (3, 0, 0, 0), (file_format, report["errors"])
        snapshots[file_format] = snapshot(program)

    assert snapshots["csv"] == snapshots["xlsx"] == snapshots["json"] == snapshots["yaml"]
    signed = next(row for row in snapshots["csv"] if row[0] == "fmt-1")
    assert signed[1:] == (
        "P1", "Build > Pipelines", "Sign every artefact", "Keys live in the HSM, not on the runners.", "done",
        "", "carla", date(2026, 2, 27), Decimal("2.50"), 2, False, "https://example.com/signing", "",
    )  # fmt: skip
    pinned = next(row for row in snapshots["csv"] if row[0] == "fmt-2")
    assert (pinned[3], pinned[5], pinned[6], pinned[10]) == (
        'Pin third-party actions, "by digest"',
        "blocked",
        "Waiting for the platform team",
        3,
    )
    paged = next(row for row in snapshots["csv"] if row[2] == "Run")
    assert paged[4] == "Multi-line\nnotes, with commas."
    assert (paged[9], paged[10], paged[11]) == (Decimal("1.00"), None, True)


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "json", "yaml"])
def test_it_reimports_its_own_export_unchanged(tmp_path: Path, file_format: str) -> None:
    program = format_program()
    run_import(write(tmp_path, "items.csv", in_format("csv")), program.key)
    before = snapshot(program)
    history = ChecklistItem.history.count()

    report = run_import(export(tmp_path, program.key, file_format), program.key)

    assert counts(report) == (0, 0, 3, 0), report["errors"]
    assert snapshot(program) == before
    assert ChecklistItem.history.count() == history


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "json", "yaml"])
def test_it_reimports_the_export_of_items_edited_by_hand(tmp_path: Path, file_format: str) -> None:
    """Items that never came from a spreadsheet: a reason kept apart from the notes, no phase, no level."""
    program = format_program()
    section = SectionFactory(program=program, title="Operations")
    ItemFactory(
        section=section,
        key="hand-1",
        title="Renew the certificates",
        status="blocked",
        status_reason="The CA contract lapsed",
    )
    ItemFactory(
        section=section,
        key="hand-2",
        title="Retire the old VPN",
        status="not_applicable",
        status_reason="Replaced by zero trust",
        notes="See the decision log",
    )
    before = snapshot(program)
    data = export(tmp_path, program.key, file_format).read_bytes()

    report = checklist_import(program=program, data=data, file_format=file_format, by=None)

    assert [(result.key, result.action, result.changes, result.errors) for result in report.results] == [
        ("hand-1", "unchanged", {}, []),
        ("hand-2", "unchanged", {}, []),
    ]
    assert snapshot(program) == before


def test_it_reads_a_csv_saved_with_a_byte_order_mark(team: Any) -> None:
    data = "\ufeff".encode() + csv_bytes(
        [{"key": "bom-1", "section": "Foundations", "title": "Ünïcode title"}]
    )

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert report.added == 1, report.errors
    assert ChecklistItem.objects.get(program=team.program, key="bom-1").title == "Ünïcode title"


# --- formula safety -----------------------------------------------------------------------------------------

FORMULA_TITLES = [
    "=SUM(A1:A3)",
    "+44 helpline",
    "-1 for the old VPN",
    "@channel heads-up",
    "'=already quoted",
]


@pytest.fixture
def formulas() -> Any:
    program = ProgramFactory(key="formulas")
    section = SectionFactory(program=program, title="Risky")
    for title in FORMULA_TITLES:
        ItemFactory(section=section, title=title)
    return program


def test_it_escapes_formula_cells_in_csv_exports(tmp_path: Path, formulas: Any) -> None:
    path = export(tmp_path, "formulas", "csv")

    titles = [row["title"] for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))]

    assert sorted(titles) == sorted(f"'{title}" for title in FORMULA_TITLES)


def test_it_escapes_formula_cells_in_xlsx_exports(tmp_path: Path, formulas: Any) -> None:
    path = export(tmp_path, "formulas", "xlsx")

    sheet = load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    column = list(rows[0]).index("title")
    titles = [row[column] for row in rows[1:]]

    assert sorted(titles) == sorted(f"'{title}" for title in FORMULA_TITLES)
    assert all(cell.data_type == "s" for row in sheet.iter_rows(min_row=2) for cell in row if cell.value)


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_it_restores_escaped_titles_when_reimporting_its_export(
    tmp_path: Path, formulas: Any, file_format: str
) -> None:
    report = run_import(export(tmp_path, "formulas", file_format), "formulas")

    assert counts(report) == (0, 0, len(FORMULA_TITLES), 0), report["errors"]
    titles = ChecklistItem.objects.filter(program=formulas).values_list("title", flat=True)
    assert sorted(titles) == sorted(FORMULA_TITLES)


def test_it_refuses_a_formula_written_in_a_csv_cell(team: Any) -> None:
    data = csv_bytes([{"section": "Foundations", "title": '=HYPERLINK("http://x")'}])
    before = db_state()

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert report.invalid == 1
    assert (
        2,
        "title",
        '=HYPERLINK("http://x")',
        "looks like a formula; Cairn imports values, not formulas.",
    ) in [(error.row, error.column, error.value, error.message) for error in report.errors]
    assert db_state() == before


def test_it_reports_a_formula_title_once_and_not_as_missing(team: Any) -> None:
    data = csv_bytes([{"section": "Foundations", "title": "=1+1"}])

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert [(error.column, error.message) for error in report.errors] == [
        ("title", "looks like a formula; Cairn imports values, not formulas.")
    ]


def test_it_refuses_a_real_formula_in_an_xlsx_cell(team: Any) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["key", "section", "status", "title"])
    sheet.append(["calc-1", "Foundations", "done", None])
    sheet["D2"] = "=1+1"
    out = io.BytesIO()
    book.save(out)
    before = db_state()

    report = checklist_import(program=team.program, data=out.getvalue(), file_format="xlsx", by=team.manager)

    assert report.invalid == 1
    assert (2, "title", "=1+1", "looks like a formula; Cairn imports values, not formulas.") in [
        (error.row, error.column, error.value, error.message) for error in report.errors
    ]
    assert db_state() == before


@pytest.mark.parametrize(
    "text",
    ["=x", "+x", "-x", "@x", "\tx", "\rx", "\x00x", "'=x", "''-y", "'", "''", "plain", "'plain", "", "a=b"],
)
def test_escaping_a_cell_and_unescaping_it_gives_back_the_text(text: str) -> None:
    assert unescape_cell(escape_cell(text)) == text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("=x", "'=x"),
        ("+x", "'+x"),
        ("-x", "'-x"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("'=x", "''=x"),
        ("''-y", "'''-y"),
        ("plain", "plain"),
        ("'plain", "'plain"),
        ("", ""),
    ],
)
def test_it_prefixes_an_apostrophe_to_cells_a_spreadsheet_would_run(text: str, escaped: str) -> None:
    assert escape_cell(text) == escaped


def test_it_leaves_non_text_cells_alone() -> None:
    assert escape_cell(-3) == -3
    assert escape_cell(None) is None
    assert escape_cell(date(2026, 1, 1)) == date(2026, 1, 1)


# --- bad input ----------------------------------------------------------------------------------------------


def valid_row(**values: str) -> dict[str, str]:
    return {"key": "ok-1", "section": "Foundations", "title": "A valid task", **values}


def test_it_refuses_a_file_that_is_not_utf8(team: Any) -> None:
    data = "key,section,title\nk1,Foundations,Café au lait\n".encode("latin-1")
    before = db_state()

    with pytest.raises(ChecklistFileError) as raised:
        import_run_start(program=team.program, data=data, source_name="latin.csv", by=team.manager)

    assert "UTF-8" in str(raised.value)
    assert "line 2" in str(raised.value)
    assert db_state() == before


def test_it_names_a_missing_required_column(team: Any) -> None:
    data = csv_bytes([{"key": "k1", "section": "Foundations", "description": "No title column"}])
    before = db_state()

    with pytest.raises(ChecklistFileError) as raised:
        import_run_start(program=team.program, data=data, source_name="untitled.csv", by=team.manager)

    assert "missing required column(s) title" in str(raised.value)
    assert raised.value.row == 1
    assert list(ImportRun.objects.values_list("status", flat=True)) == []
    assert db_state() == before


def test_the_command_reports_a_file_error_as_json(tmp_path: Path, team: Any) -> None:
    path = write(tmp_path, "latin.csv", "section,title\nFoundations,Crème brûlée\n".encode("latin-1"))
    before = db_state()

    report, error = run_failing_import(path, "alpha")

    assert report == {
        "error": "the file is not UTF-8 (byte 0xe8 on line 2); save it as UTF-8 CSV.",
        "row": None,
    }
    assert "not UTF-8" in str(error)
    assert db_state() == before


@pytest.mark.parametrize(
    ("bad", "column", "value", "message"),
    [
        ({"status": "finished-ish"}, "status", "finished-ish", "unknown status"),
        ({"level": "7"}, "level", "7", "expected a number from 1 to 3"),
        ({"due_date": "31/12/2025"}, "due_date", "31/12/2025", "expected a date as YYYY-MM-DD"),
        ({"owner": "oscar"}, "owner", "oscar", "no member of alpha"),
        ({"phase": "P9"}, "phase", "P9", "unknown phase"),
        ({"program": "beta"}, "program", "beta", "this row is for program 'beta'"),
        ({"weight": "-1"}, "weight", "-1", "expected a positive number"),
        ({"blocking": "maybe"}, "blocking", "maybe", "expected yes or no"),
        ({"evidence_url": "javascript:alert(1)"}, "evidence_url", "javascript:alert(1)", "http(s) URL"),
        ({"status": "blocked"}, "status", "blocked", "needs a reason"),
    ],
)
def test_it_reports_an_invalid_cell_by_row_and_column_and_writes_nothing(
    tmp_path: Path, team: Any, bad: dict[str, str], column: str, value: str, message: str
) -> None:
    rows = [valid_row(), {"key": "bad-1", "section": "Foundations", "title": "A broken task", **bad}]
    path = write(tmp_path, "bad.csv", csv_bytes(rows))
    items, sections, runs, history = db_state()

    report, error = run_failing_import(path, "alpha")

    assert counts(report) == (1, 0, 0, 1)
    [reported] = report["errors"]
    assert reported["row"] == 3  # the header is row 1, as a spreadsheet numbers it
    assert reported["column"] == column
    assert reported["value"] == value
    assert message in reported["message"]
    assert "1 invalid row" in str(error)
    assert db_state() == (items, sections, runs + 1, history)
    assert ImportRun.objects.latest("pk").status == ImportRun.Status.REJECTED


def test_the_first_data_row_is_row_2(team: Any) -> None:
    data = csv_bytes([{"section": "Foundations", "title": "Bad status", "status": "someday"}])

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert report.as_dict()["errors"] == [
        {
            "row": 2,
            "column": "status",
            "value": "someday",
            "message": "unknown status; expected done, in progress, blocked, n/a or not started.",
        }
    ]


def test_it_refuses_a_key_used_twice_in_one_file(team: Any) -> None:
    data = csv_bytes(
        [
            {"key": "dup", "section": "Foundations", "title": "First"},
            {"key": "other", "section": "Foundations", "title": "Between"},
            {"key": "dup", "section": "Foundations", "title": "Second"},
        ]
    )
    before = db_state()

    report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)

    assert report.invalid == 1
    [error] = report.errors
    assert (error.row, error.column, error.value) == (4, "key", "dup")
    assert "row 2" in error.message
    assert db_state() == before


def test_it_refuses_an_xlsx_upload_that_is_not_a_spreadsheet(team: Any) -> None:
    data = random.Random(7).randbytes(4096)
    before = db_state()

    with pytest.raises(ChecklistFileError) as raised:
        import_run_start(program=team.program, data=data, source_name="budget.xlsx", by=team.manager)

    assert "not an XLSX spreadsheet" in str(raised.value)
    assert db_state() == before


def test_it_refuses_a_file_over_the_size_limit(team: Any, settings: Any) -> None:
    settings.CAIRN_CHECKLIST_MAX_BYTES = 1024
    data = numbered_rows(40, "big")
    assert len(data) > 1024
    before = db_state()

    with pytest.raises(ChecklistFileError) as raised:
        import_run_start(program=team.program, data=data, source_name="big.csv", by=team.manager)

    assert "CAIRN_CHECKLIST_MAX_BYTES" in str(raised.value)
    assert "1,024" in str(raised.value)
    assert db_state() == before


def mixed_file(tmp_path: Path) -> Path:
    """Two valid rows, two invalid ones (one of them wrong twice)."""
    rows = [
        {"key": "good-1", "section": "Foundations", "title": "Good one", "status": "done"},
        {
            "key": "bad-1",
            "section": "Foundations",
            "title": "Bad one",
            "status": "soon",
            "due_date": "tomorrow",
        },
        {
            "key": "good-2",
            "section": "Elsewhere",
            "title": "Good two",
            "due_date": "2026-06-30",
            "level": "1",
        },
        {"key": "bad-2", "section": "Foundations", "title": "Bad two", "level": "0"},
    ]
    return write(tmp_path, "mixed.csv", csv_bytes(rows))


def test_any_invalid_row_rejects_the_whole_file(tmp_path: Path, team: Any) -> None:
    items, sections, runs, history = db_state()

    report, error = run_failing_import(mixed_file(tmp_path), "alpha")

    assert counts(report) == (2, 0, 0, 2)
    assert sorted((e["row"], e["column"], e["value"]) for e in report["errors"]) == [
        (3, "due_date", "tomorrow"),
        (3, "status", "soon"),
        (5, "level", "0"),
    ]
    assert "2 invalid row" in str(error)
    assert db_state() == (items, sections, runs + 1, history)
    assert not ChecklistItem.objects.filter(key__startswith="good-").exists()


def test_commit_valid_writes_the_valid_rows_and_still_fails(tmp_path: Path, team: Any) -> None:
    report, error = run_failing_import(mixed_file(tmp_path), "alpha", "--commit-valid")

    assert counts(report) == (2, 0, 0, 2)
    assert len(report["errors"]) == 3
    assert "2 invalid row" in str(error)
    assert set(ChecklistItem.objects.filter(program=team.program).values_list("key", flat=True)) >= {
        "good-1",
        "good-2",
    }
    assert not ChecklistItem.objects.filter(key__startswith="bad-").exists()
    assert Section.objects.filter(program=team.program, title="Elsewhere", parent=None).exists()
    assert ImportRun.objects.latest("pk").status == ImportRun.Status.SUCCEEDED


def test_a_dry_run_writes_nothing_and_reports_what_the_real_run_does(tmp_path: Path, team: Any) -> None:
    rows = [
        {
            "key": team.owned_item.key,
            "section": "Foundations",
            "title": team.owned_item.title,
            "status": "wip",
        },
        {"key": team.unowned_item.key, "section": "Foundations", "title": team.unowned_item.title},
        {"key": "new-1", "section": "Later > Much later", "title": "Something new", "owner": "maria"},
    ]
    path = write(tmp_path, "plan.csv", csv_bytes(rows))
    items, sections, runs, history = db_state()

    dry = run_import(path, "alpha", "--dry-run")

    assert db_state() == (items, sections, runs + 1, history)
    assert dry["dry_run"] is True
    real = run_import(path, "alpha")
    assert real["dry_run"] is False
    assert counts(dry) == counts(real) == (1, 1, 1, 0)
    assert {**dry, "dry_run": False} == real
    assert db_state() == (items + 1, sections + 2, runs + 2, history + 2)


# --- permissions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor", "outsider"])
@pytest.mark.parametrize("entry", ["checklist_import", "import_run_start"])
def test_only_a_manager_of_the_program_may_import(team: Any, persona: str, entry: str) -> None:
    data = csv_bytes([{"key": "perm-1", "section": "Foundations", "title": "Anything", "status": "done"}])
    before = db_state()

    with pytest.raises(PermissionDenied):
        if entry == "checklist_import":
            checklist_import(program=team.program, data=data, file_format="csv", by=team.user(persona))
        else:
            import_run_start(program=team.program, data=data, source_name="x.csv", by=team.user(persona))

    assert db_state() == before


def test_the_command_refuses_a_user_who_does_not_manage_the_program(tmp_path: Path, team: Any) -> None:
    path = write(tmp_path, "x.csv", csv_bytes([{"section": "Foundations", "title": "Anything"}]))
    before = db_state()

    report, error = run_failing_import(path, "alpha", "--user", "carla")

    assert "Only managers of alpha" in report["error"]
    assert "Only managers of alpha" in str(error)
    assert db_state() == before


@pytest.mark.parametrize("entry", ["checklist_import", "import_run_start"])
def test_a_manager_imports_and_signs_the_history(team: Any, entry: str) -> None:
    data = csv_bytes([{"key": "perm-1", "section": "Foundations", "title": "Anything", "status": "done"}])

    if entry == "checklist_import":
        report = checklist_import(program=team.program, data=data, file_format="csv", by=team.manager)
    else:
        run, report = import_run_start(program=team.program, data=data, source_name="x.csv", by=team.manager)
        assert run.created_by == team.manager
        assert run.status == ImportRun.Status.SUCCEEDED

    assert report is not None and report.added == 1
    item = ChecklistItem.objects.get(program=team.program, key="perm-1")
    record = item.history.get()
    assert record.history_user == team.manager
    assert record.history_type == "+"
    assert item.attested_by == team.manager


# --- query counts -------------------------------------------------------------------------------------------


def test_the_import_writes_in_bulk_whatever_the_number_of_rows(
    team: Any, django_assert_max_num_queries: Any
) -> None:
    with CaptureQueriesContext(connection) as small:
        report = checklist_import(
            program=team.program, data=numbered_rows(50, "s"), file_format="csv", by=team.manager
        )
    assert report.added == 50
    batching = sum(
        insert_batches(model, 500) - insert_batches(model, 50)
        for model in (ChecklistItem, ChecklistItem.history.model)
    )

    with django_assert_max_num_queries(len(small.captured_queries) + batching + 10):
        report = checklist_import(
            program=team.program, data=numbered_rows(500, "b"), file_format="csv", by=team.manager
        )
    assert report.added == 500


def test_a_reimport_changing_every_row_updates_in_bulk(team: Any, django_assert_max_num_queries: Any) -> None:
    for count, prefix in ((50, "s"), (500, "b")):
        checklist_import(
            program=team.program, data=numbered_rows(count, prefix), file_format="csv", by=team.manager
        )

    with CaptureQueriesContext(connection) as small:
        report = checklist_import(
            program=team.program, data=numbered_rows(50, "s", "Changed"), file_format="csv", by=team.manager
        )
    assert report.changed == 50
    batching = (
        update_batches(["description", "updated_at"], 500)
        - update_batches(["description", "updated_at"], 50)
        + insert_batches(ChecklistItem.history.model, 500)
        - insert_batches(ChecklistItem.history.model, 50)
    )

    with django_assert_max_num_queries(len(small.captured_queries) + batching + 10):
        report = checklist_import(
            program=team.program, data=numbered_rows(500, "b", "Changed"), file_format="csv", by=team.manager
        )
    assert report.changed == 500


def items_in_tree(count: int) -> Any:
    program = ProgramFactory()
    phase = PhaseFactory(program=program)
    owner = member(program, "contributor")
    root = SectionFactory(program=program, title="Root", phase=phase)
    leaves = [SectionFactory(program=program, parent=root, title=f"Leaf {n}") for n in range(3)]
    ChecklistItem.objects.bulk_create(
        ItemFactory.build(section=leaves[n % 3], phase=phase, owner=owner if n % 2 else None)
        for n in range(count)
    )
    return program


def test_the_export_needs_the_same_queries_for_50_and_500_items(django_assert_num_queries: Any) -> None:
    small, large = items_in_tree(50), items_in_tree(500)
    with CaptureQueriesContext(connection) as queries:
        content = checklist_export(program=small, by=None, file_format="csv")
    assert len(content.splitlines()) == 51

    with django_assert_num_queries(len(queries.captured_queries)):
        content = checklist_export(program=large, by=None, file_format="csv")
    assert len(content.splitlines()) == 501
    assert "Root > Leaf 1" in content


# --- large imports run in Celery ----------------------------------------------------------------------------


def test_a_large_import_is_queued_and_run_by_a_worker(
    team: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    data = numbered_rows(20, "q")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run, report = import_run_start(
            program=team.program, data=data, source_name="big.csv", by=team.manager
        )

        assert report is None
        run.refresh_from_db()
        assert run.status == ImportRun.Status.PENDING
        assert bytes(run.source) == data
        assert run.rows == 20
        assert not ChecklistItem.objects.filter(key__startswith="q-").exists()

    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.status == ImportRun.Status.SUCCEEDED
    assert run.progress == run.rows == 20
    assert run.report["items"]["added"] == 20
    assert run.source is None
    assert run.started_at is not None and run.finished_at is not None
    assert ChecklistItem.objects.filter(program=team.program, key__startswith="q-").count() == 20
    assert ChecklistItem.history.filter(key="q-0").get().history_user == team.manager


def test_running_a_queued_import_again_does_nothing(
    team: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = import_run_start(
            program=team.program, data=numbered_rows(20, "q"), source_name="big.csv", by=team.manager
        )
    state = db_state()
    finished = ImportRun.objects.values_list("status", "finished_at", "report").get(pk=run.pk)

    assert import_run_execute(run_id=run.pk) == ImportRun.Status.SUCCEEDED

    assert db_state() == state
    assert ImportRun.objects.values_list("status", "finished_at", "report").get(pk=run.pk) == finished


def test_a_queued_import_with_invalid_rows_is_rejected(
    team: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    rows = [
        {"key": f"q-{n}", "section": "Foundations", "title": f"Queued {n}", "level": "1"} for n in range(20)
    ]
    rows[12]["level"] = "9"
    items, sections, runs, history = db_state()

    with django_capture_on_commit_callbacks(execute=True):
        run, report = import_run_start(
            program=team.program, data=csv_bytes(rows), source_name="big.csv", by=team.manager
        )
    assert report is None

    run.refresh_from_db()
    assert run.status == ImportRun.Status.REJECTED
    assert run.report["items"]["invalid"] == 1
    assert [(e["row"], e["column"], e["value"]) for e in run.report["errors"]] == [(14, "level", "9")]
    assert run.source is None
    assert db_state() == (items, sections, runs + 1, history)


def test_a_formula_cell_read_several_times_is_reported_once(team):
    data = b"section,title,notes\nNetwork,Patch the edge,\"=cmd|' /C calc'!A0\"\n"
    report = checklist_import(program=team.program, data=data, file_format="csv", by=None)
    assert [(error.row, error.column) for error in report.errors] == [(2, "notes")]
