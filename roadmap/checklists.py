"""Checklist spreadsheets in (CSV, XLSX, JSON, YAML) with one bulk engine behind the admin, the API and the CLI.

A file is read into rows, renamed through a mapping into the canonical columns, validated row by row against
the program (phases, members, levels), matched to existing items by key (or section path + normalised title),
and written in batches with history. By default any invalid row rejects the whole file; `commit_valid`
writes the valid rows and reports the rest. Rows absent from a file are reported, never deleted.

The engine is deliberately not django-import-export's row-by-row `import_data`: it loads every existing item
of the program once and writes with bulk statements, which is what makes 10,000 rows take seconds. The
resource in `roadmap.resources` serves the admin's export and defines the same columns.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from cairn import outbox
from cairn.lib.spreadsheets import Limits, SpreadsheetError, collect_rows, read_csv, read_xlsx, unescape_cell
from cairn.lib.yaml import load_yaml
from roadmap import access
from roadmap.keys import PATH_SEPARATOR, item_key, normalise_text
from roadmap.models import ChecklistItem, ImportRun, Phase, Program, Section
from roadmap.selectors import section_path_index

if TYPE_CHECKING:
    from roadmap.models import AnyUser

CANONICAL_COLUMNS = (
    "key", "phase", "section", "title", "description", "status", "owner", "due_date", "weight", "level",
    "blocking", "evidence_url", "notes",
)  # fmt: skip
# Accepted besides the canonical ones: our own export writes `program`; `status_reason` explains blocked rows.
EXTRA_COLUMNS = ("program", "status_reason")
REQUIRED_COLUMNS = ("section", "title")
FORMATS = ("csv", "xlsx", "json", "yaml")
BUILTIN_MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

STATUS_SPELLINGS = {
    ChecklistItem.Status.DONE: [
        "done",
        "complete",
        "completed",
        "x",
        "✓",
        "✔",
        "yes",
        "y",
        "closed",
        "finished",
    ],
    ChecklistItem.Status.IN_PROGRESS: [
        "in progress",
        "in_progress",
        "in-progress",
        "wip",
        "started",
        "ongoing",
    ],
    ChecklistItem.Status.BLOCKED: ["blocked", "on hold", "stuck"],
    ChecklistItem.Status.NOT_APPLICABLE: ["n/a", "na", "not applicable", "not_applicable", "n.a."],
    ChecklistItem.Status.NOT_STARTED: [
        "not started",
        "not_started",
        "todo",
        "to do",
        "open",
        "no",
        "new",
        "[ ]",
    ],
}
STATUS_BY_SPELLING = {spelling: status for status, names in STATUS_SPELLINGS.items() for spelling in names}
TRUE_WORDS = {"true", "yes", "y", "1", "x", "✓"}
FALSE_WORDS = {"false", "no", "n", "0"}
BATCH = 500
_COUNTERS = {"new": "added", "update": "changed", "unchanged": "unchanged"}
_url = URLValidator(schemes=["http", "https"])


class ChecklistFileError(ValueError):
    """A file that cannot be read as a checklist at all (as opposed to some invalid rows)."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}" if self.row else self.message


@dataclass
class RowError:
    row: int
    column: str
    value: str
    message: str


@dataclass(slots=True)  # one per row of the file: 100,000 of them without a __dict__ each
class RowResult:
    row: int
    action: str  # new | update | unchanged | invalid
    key: str
    title: str
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)


@dataclass
class ChecklistReport:
    program: str
    dry_run: bool
    rows: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    invalid: int = 0
    committed: bool = False
    results: list[RowResult] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # keys of items of the program the file does not mention
    warnings: list[str] = field(default_factory=list)
    sections_created: int = 0

    @property
    def errors(self) -> list[RowError]:
        return [error for result in self.results for error in result.errors]

    def as_dict(self) -> dict[str, Any]:
        """The JSON contract of `import_checklist --json` and the API."""
        return {
            "program": self.program,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "items": {
                "added": self.added,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "invalid": self.invalid,
            },
            "errors": [asdict(error) for error in self.errors],
        }

    def summary_lines(self) -> list[str]:
        if self.invalid and not self.committed:
            outcome = "nothing was written" if not self.dry_run else "the import would be refused"
            head = f"{self.invalid} of {self.rows} rows are invalid: {outcome} (use --commit-valid to import the rest)."
        else:
            verb = "would be" if self.dry_run else "were"
            head = (
                f"{self.rows} rows: {self.added} added, {self.changed} changed, {self.unchanged} unchanged, "
                f"{self.invalid} invalid; {self.sections_created} sections {verb} created."
            )
            if not self.added and not self.changed:
                head += " The file matches the program: nothing changed."
        lines = [f"Checklist import into {self.program}: {head}"]
        if self.absent:
            lines.append(
                f"{len(self.absent)} items of {self.program} are not in this file (kept, not deleted)."
            )
        return lines


# --- reading files ------------------------------------------------------------------------------------------


def detect_format(filename: str, requested: str = "") -> str:
    name = (requested or Path(filename).suffix.lstrip(".")).lower()
    name = {"yml": "yaml", "xlsm": "xlsx"}.get(name, name)
    if name not in FORMATS:
        raise ChecklistFileError(
            f"unknown file format {name or '(none)'!r}; expected one of {', '.join(FORMATS)}."
        )
    return name


def read_rows(data: bytes, file_format: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """Headers and (row number, {header: value}) of a file; row 1 is the header row as in a spreadsheet."""
    if len(data) > settings.CAIRN_CHECKLIST_MAX_BYTES:
        raise ChecklistFileError(
            f"the file is over the limit of {settings.CAIRN_CHECKLIST_MAX_BYTES:,} bytes "
            "(setting CAIRN_CHECKLIST_MAX_BYTES)."
        )
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "json": _read_records, "yaml": _read_records}[file_format]
    try:
        headers, rows = reader(data) if file_format in ("csv", "xlsx") else reader(data, file_format)
    except SpreadsheetError as exc:
        raise ChecklistFileError(exc.message, exc.row) from None
    headers = [str(header or "").strip() for header in headers]
    if not any(headers):
        raise ChecklistFileError("the file has no header row naming its columns.", 1)
    numbered = [
        (number, dict(zip(headers, values, strict=False)))
        for number, values in rows
        if any(value not in (None, "") for value in values)  # a blank line is not a row (ASVS ends with one)
    ]
    return headers, numbered


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # UTF-8, with or without a byte-order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ChecklistFileError(
            f"the file is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8 CSV."
        ) from None


def _limits() -> Limits:
    # Rows, cells and an XLSX's unpacked size are capped while reading (cairn.lib.spreadsheets): a small
    # upload must not make the server unpack, parse or hold more than these.
    return Limits(
        rows=settings.CAIRN_CHECKLIST_MAX_ROWS,
        unzipped_bytes=settings.CAIRN_CHECKLIST_MAX_UNZIPPED_BYTES,
        rows_setting="CAIRN_CHECKLIST_MAX_ROWS",
        unzipped_setting="CAIRN_CHECKLIST_MAX_UNZIPPED_BYTES",
    )


def _read_csv(data: bytes) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    return read_csv(_text(data), _limits())


def _read_xlsx(data: bytes) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    return read_xlsx(data, _limits())


def _read_records(data: bytes, file_format: str) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    text = _text(data)
    try:
        records = json.loads(text) if file_format == "json" else load_yaml(text)
    except (ValueError, RecursionError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ChecklistFileError(
            f"the file is not valid {file_format.upper()}{where}: {problem}".splitlines()[0]
        ) from None
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise ChecklistFileError(f"the {file_format.upper()} file must be a list of objects, one per item.")
    headers: list[str] = []
    for record in records:
        headers += [str(name) for name in record if str(name) not in headers]
    rows = ((index + 2, [record.get(name) for name in headers]) for index, record in enumerate(records))
    return collect_rows(rows, _limits(), header=headers)


# --- mappings -----------------------------------------------------------------------------------------------


@dataclass
class Mapping:
    """Renames a file's columns into the canonical ones.

    YAML: `columns: {source: canonical}`, `section: [col, col]` (joined with ' > '), `values: {canonical:
    {written: meant}}`, `defaults: {canonical: value}`.
    """

    name: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    section: list[str] = field(default_factory=list)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


def builtin_mappings() -> list[str]:
    return sorted(path.stem for path in BUILTIN_MAPPINGS_DIR.glob("*.yaml"))


def load_mapping(name_or_text: str, *, is_text: bool = False) -> Mapping:
    """A built-in mapping by name, a YAML file path, or (is_text) YAML text."""
    if is_text:
        text, name = name_or_text, "uploaded mapping"
    else:
        path = BUILTIN_MAPPINGS_DIR / f"{name_or_text}.yaml"
        if not path.exists():
            path = Path(name_or_text)
        try:
            text, name = path.read_text(encoding="utf-8"), name_or_text
        except (OSError, UnicodeDecodeError):
            raise ChecklistFileError(
                f"no mapping {name_or_text!r}: give a built-in name ({', '.join(builtin_mappings())}) or a YAML file."
            ) from None
    try:
        data = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise ChecklistFileError(f"mapping {name!r} is not valid YAML: {exc}".splitlines()[0]) from None
    allowed = {"columns", "section", "values", "defaults"}
    if not isinstance(data, dict) or set(data) - allowed:
        raise ChecklistFileError(f"mapping {name!r} may only have the keys {', '.join(sorted(allowed))}.")
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    unknown = sorted(set(columns.values()) - set(CANONICAL_COLUMNS) - set(EXTRA_COLUMNS))
    if unknown:
        raise ChecklistFileError(f"mapping {name!r} maps to unknown columns {', '.join(unknown)}.")
    section = data.get("section") or []
    values = data.get("values") or {}
    defaults = data.get("defaults") or {}
    if not isinstance(section, list) or not isinstance(values, dict) or not isinstance(defaults, dict):
        raise ChecklistFileError(
            f"mapping {name!r}: section is a list of columns, values and defaults are maps."
        )
    return Mapping(
        name=name,
        columns=columns,
        section=[str(column) for column in section],
        values={str(k): {str(a): str(b) for a, b in (v or {}).items()} for k, v in values.items()},
        defaults={str(k): v for k, v in defaults.items()},
    )


def _apply_mapping(
    headers: list[str], rows: list[tuple[int, dict[str, Any]]], mapping: Mapping
) -> tuple[set[str], list[tuple[int, dict[str, Any]]]]:
    """Canonical column names present after mapping, and the rows renamed."""
    rename = {
        header: mapping.columns.get(header, header.strip().lower().replace(" ", "_")) for header in headers
    }
    present = {name for name in rename.values() if name in CANONICAL_COLUMNS or name in EXTRA_COLUMNS}
    present |= set(mapping.defaults)
    if mapping.section:
        missing = [column for column in mapping.section if column not in headers]
        if missing:
            raise ChecklistFileError(f"the mapping joins columns the file lacks: {', '.join(missing)}.", 1)
        present.add("section")
    out = []
    for number, row in rows:
        values = {**mapping.defaults}
        values.update({rename[name]: value for name, value in row.items() if name in rename})
        if mapping.section:
            parts = [_cell_text(row.get(column)) for column in mapping.section]
            values["section"] = PATH_SEPARATOR.join(part for part in parts if part)
        for column, table in mapping.values.items():
            written = _cell_text(values.get(column))
            if written in table:
                values[column] = table[written]
        out.append((number, values))
    return present, out


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


# --- the import ---------------------------------------------------------------------------------------------


def prepared_rows(
    data: bytes, file_format: str, mapping: Mapping | None
) -> tuple[set[str], list[tuple[int, dict[str, Any]]]]:
    """The canonical columns present and the mapped rows of a file, or ChecklistFileError."""
    headers, rows = read_rows(data, file_format)
    present, rows = _apply_mapping(headers, rows, mapping or Mapping())
    missing = [column for column in REQUIRED_COLUMNS if column not in present]
    if missing:
        raise ChecklistFileError(
            f"missing required column(s) {', '.join(missing)}; the file has {', '.join(h for h in headers if h)}. "
            f"Expected columns: {', '.join(CANONICAL_COLUMNS)} (or a mapping).",
            1,
        )
    return present, rows


def checklist_import(
    *,
    program: Program,
    data: bytes,
    file_format: str,
    by: AnyUser | None,
    mapping: Mapping | None = None,
    dry_run: bool = False,
    commit_valid: bool = False,
    source_name: str = "",
    progress: Callable[[int], None] | None = None,
) -> ChecklistReport:
    """Import a checklist file into `program`; see the module docstring. `by=None` is an operator (CLI)."""
    if by is not None and not access.can_manage_program(by, program.pk):
        raise PermissionDenied(f"Only managers of {program.key} may import checklists into it.")
    present, rows = prepared_rows(data, file_format, mapping)
    importer = _ChecklistImporter(program, by=by, present=present, source_name=source_name)
    with transaction.atomic():
        Program.objects.select_for_update().filter(pk=program.pk).first()
        report = importer.plan(rows, dry_run=dry_run)
        if report.invalid and not commit_valid:
            transaction.set_rollback(True)
            return report
        if not dry_run:
            importer.write(progress)
            report.committed = True
    return report


def _drained(rows: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows first to last, each let go of once taken: the plan keeps what it needs of a row, and 100,000
    rows' cells would otherwise stay in memory through the writes."""
    rows.reverse()
    while rows:
        yield rows.pop()


@dataclass(slots=True)
class _Planned:
    result: RowResult
    item: ChecklistItem
    section_path: tuple[str, ...]
    new: bool
    fields: set[str]
    status: tuple[str, str] | None  # (status, reason) to apply


class _ChecklistImporter:
    def __init__(self, program: Program, *, by: AnyUser | None, present: set[str], source_name: str) -> None:
        self.program = program
        self.by = by if by is not None and by.is_authenticated else None
        self.present = present
        self.reason = f"Checklist import{f' of {source_name}' if source_name else ''}"
        self.sections = section_path_index(Section.objects.filter(program=program))
        self.section_ids = {section.pk: path for path, section in self.sections.items()}
        self.items = list(ChecklistItem.objects.filter(program=program))
        self.by_key = {item.key: item for item in self.items}
        self.by_title = {
            (item.section_id, normalise_text(item.title)): item
            for item in self.items
            if item.archived_at is None
        }
        phases = list(Phase.objects.filter(program=program))
        self.phases = {phase.code.casefold(): phase for phase in phases} | {
            phase.name.casefold(): phase for phase in phases
        }
        members = get_user_model().objects.filter(memberships__program=program)
        self.owners: dict[str, Any] = {}
        for user in members:
            self.owners[user.get_username().casefold()] = user
            if user.email:
                self.owners.setdefault(user.email.casefold(), user)
        self.level_count = len(program.levels or [])
        self.planned: list[_Planned] = []

    # -- planning: validate and diff every row without writing --

    def plan(self, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> ChecklistReport:
        report = ChecklistReport(program=self.program.key, dry_run=dry_run, rows=len(rows))
        first_row_of_key: dict[str, int] = {}
        mentioned: set[int] = set()
        new_paths: set[tuple[str, ...]] = set()
        for number, values in _drained(rows):
            result, planned = self._plan_row(number, values)
            if planned is not None:
                key = planned.item.key
                if key in first_row_of_key:
                    result.errors.append(
                        RowError(
                            number, "key", key, f"duplicate key: row {first_row_of_key[key]} has it too."
                        )
                    )
                    planned = None
                else:
                    first_row_of_key[key] = number
            if result.errors:
                result.action = "invalid"
                report.invalid += 1
            elif planned is not None:
                self.planned.append(planned)
                if planned.item.pk:
                    mentioned.add(planned.item.pk)
                if planned.section_path not in self.sections:
                    new_paths.update(
                        planned.section_path[:depth] for depth in range(1, len(planned.section_path) + 1)
                    )
                counter = _COUNTERS[result.action]
                setattr(report, counter, getattr(report, counter) + 1)
            report.results.append(result)
        report.sections_created = len(new_paths - set(self.sections))
        report.absent = [
            item.key for item in self.items if item.archived_at is None and item.pk not in mentioned
        ]
        return report

    def _plan_row(self, number: int, values: dict[str, Any]) -> tuple[RowResult, _Planned | None]:
        errors: list[RowError] = []

        cells: dict[str, str] = {}

        def text(column: str) -> str:
            """The cell as text, read once per row (a formula is reported once, however often it is asked for)."""
            if column in cells:
                return cells[column]
            raw = values.get(column)
            if isinstance(raw, str) and raw.startswith("="):
                errors.append(
                    RowError(number, column, raw, "looks like a formula; Cairn imports values, not formulas.")
                )
                cells[column] = ""
            else:
                cells[column] = unescape_cell(_cell_text(raw))
            return cells[column]

        def problem(column: str, message: str) -> None:
            errors.append(RowError(number, column, _cell_text(values.get(column)), message))

        title = text("title")
        section_text = text("section")
        result = RowResult(row=number, action="new", key=text("key") if "key" in values else "", title=title)
        if "program" in values and text("program") and text("program") != self.program.key:
            problem("program", f"this row is for program {text('program')!r}, not {self.program.key!r}.")
        if not title and not any(error.column == "title" for error in errors):
            problem("title", "a title is required.")
        elif len(title) > 1000:
            problem("title", f"at most 1000 characters (this one has {len(title)}).")
        path = tuple(part.strip() for part in section_text.split(">") if part.strip())
        if not path and not any(error.column == "section" for error in errors):
            problem("section", "a section path is required, e.g. 'Cloud Capabilities > Cloud Security'.")
        elif any(len(part) > 300 for part in path):
            problem("section", "each part of the section path may have at most 300 characters.")

        key = result.key
        if len(key) > 200:
            problem("key", "at most 200 characters.")
        existing = self.by_key.get(key) if key else None
        if existing is None and path and title and not key:
            section = self.sections.get(path)
            existing = self.by_title.get((section.pk, normalise_text(title))) if section else None
        if existing is None and not key and path and title:
            key = item_key(PATH_SEPARATOR.join(path), title)
            existing = self.by_key.get(key)
        result.key = key

        wanted: dict[str, Any] = {}
        if "description" in self.present:
            wanted["description"] = text("description")
        if "notes" in self.present:
            wanted["notes"] = text("notes")
        if "evidence_url" in self.present:
            url = text("evidence_url")
            try:
                if url:
                    _url(url)
                wanted["evidence_url"] = url
            except ValidationError:
                problem("evidence_url", "expected an http(s) URL.")
        if "phase" in self.present:
            phase_text = text("phase")
            phase = self.phases.get(phase_text.casefold()) if phase_text else None
            if phase_text and phase is None:
                known = ", ".join(sorted({p.code for p in self.phases.values()})) or "none defined"
                problem(
                    "phase", f"unknown phase; expected a phase code or name of {self.program.key} ({known})."
                )
            wanted["phase_id"] = phase.pk if phase else None
        if "owner" in self.present:
            owner_text = text("owner")
            owner = self.owners.get(owner_text.casefold()) if owner_text else None
            if owner_text and owner is None:
                problem("owner", f"no member of {self.program.key} has this username or e-mail.")
            wanted["owner_id"] = owner.pk if owner else None
        if "due_date" in self.present:
            due = self._date(values.get("due_date"))
            if due is False:
                problem("due_date", "expected a date as YYYY-MM-DD.")
            else:
                wanted["due_date"] = due
        if "weight" in self.present and text("weight"):
            try:
                weight = Decimal(text("weight"))
                if not weight.is_finite() or weight <= 0 or weight >= Decimal("1000000"):
                    raise InvalidOperation
                wanted["weight"] = weight.quantize(Decimal("0.01"))
            except InvalidOperation:
                problem("weight", "expected a positive number such as 1 or 2.5.")
        if "level" in self.present:
            level_text = text("level")
            # ASCII digits only: "²" is a digit to isdigit() but not to int().
            if level_text and (
                not (level_text.isascii() and level_text.isdigit() and len(level_text) < 10)
                or not 1 <= int(level_text) <= self.level_count
            ):
                problem("level", f"unknown level; expected a number from 1 to {self.level_count} or empty.")
            else:
                wanted["level"] = int(level_text) if level_text else None
        if "blocking" in self.present and text("blocking"):
            word = text("blocking").casefold()
            if word not in TRUE_WORDS | FALSE_WORDS:
                problem("blocking", "expected yes or no.")
            else:
                wanted["blocking"] = word in TRUE_WORDS
        status = None
        if "status" in self.present and text("status"):
            status_text = text("status")
            status = STATUS_BY_SPELLING.get(status_text.casefold())
            if status is None:
                problem("status", "unknown status; expected done, in progress, blocked, n/a or not started.")
        reason = text("status_reason") if "status_reason" in self.present else ""
        reason = reason or (text("notes") if "notes" in self.present else "")
        if status in ChecklistItem.STATUSES_NEEDING_REASON and not reason:
            problem(
                "status",
                f"a {status.replace('_', ' ')} item needs a reason in the status_reason or notes column.",
            )
        if errors:
            result.errors = errors
            return result, None

        new = existing is None
        item = existing or ChecklistItem(program=self.program, key=key, title=title)
        result.key = item.key
        if not new and self.section_ids.get(item.section_id) != path:
            wanted["_section_path"] = path
        if new or title != item.title:
            wanted["title"] = title
        changes: dict[str, tuple[str, str]] = {}
        fields: set[str] = set()
        for name, value in wanted.items():
            if name == "_section_path":
                changes["section"] = (
                    PATH_SEPARATOR.join(self.section_ids.get(item.section_id, ())),
                    section_text,
                )
                fields.add("section_id")
                continue
            # A new item is inserted whole: only an update needs to know its changed fields.
            if not new and getattr(item, name) != value:
                changes[name.removesuffix("_id")] = (_shown(getattr(item, name)), _shown(value))
                fields.add(name)
        status_change = None
        needs_reason = status in ChecklistItem.STATUSES_NEEDING_REASON
        if status is not None and (
            new or status != item.status or (needs_reason and reason != item.status_reason)
        ):
            status_change = (status, reason if needs_reason else "")
            if not new and status != item.status:
                changes["status"] = (item.status, status)
            elif not new:
                changes["status_reason"] = (item.status_reason, reason)
        if not new:
            for name in fields - {"section_id"}:
                setattr(item, name, wanted[name])
        else:
            for name, value in wanted.items():
                if name != "_section_path":
                    setattr(item, name, value)
        if new:
            result.action = "new"
        elif changes:
            result.action = "update"
            result.changes = changes
        else:
            result.action = "unchanged"
        planned = _Planned(result, item, path, new, fields, status_change)
        if not new and "_section_path" not in wanted:
            planned.section_path = self.section_ids.get(item.section_id, path)
        return result, planned

    @staticmethod
    def _date(value: Any) -> date | bool | None:
        """The date in a cell, None for an empty cell, False for something that is not a date."""
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(unescape_cell(_cell_text(value))[:10])
        except ValueError:
            return False

    # -- writing --

    def write(self, progress: Callable[[int], None] | None) -> None:
        now = timezone.now()
        self._ensure_sections(planned.section_path for planned in self.planned)
        creates: list[ChecklistItem] = []
        # Updates grouped by the fields they change: one bulk UPDATE per group instead of CASE clauses for
        # every field on every row, which made re-imports of a few changed rows cost as much as a first import.
        updates: dict[frozenset[str], list[ChecklistItem]] = defaultdict(list)
        next_order = max((item.order for item in self.items), default=0)
        for index, planned in enumerate(self.planned, start=1):
            item = planned.item
            if planned.new:
                item.order = next_order + index
            section = self.sections[planned.section_path]
            if planned.new or "section_id" in planned.fields:
                item.section = section
                if "phase_id" not in self.present or item.phase_id is None:
                    item.phase_id = item.phase_id or self._phase_of(planned.section_path)
            fields = set(planned.fields)
            if planned.status is not None:
                was_done = item.status == ChecklistItem.Status.DONE
                item.set_status(planned.status[0], by=self.by, reason=planned.status[1])
                fields |= {"status", "status_reason"}
                if was_done != (item.status == ChecklistItem.Status.DONE):
                    fields |= {"completed_at", "attested_at", "attested_by"}
            if planned.new:
                creates.append(item)
            elif fields:
                item.updated_at = now
                item.version += 1  # an edit based on the version before this import is refused (EditConflict)
                updates[frozenset(fields | {"updated_at", "version"})].append(item)
            if progress is not None and index % BATCH == 0:
                progress(index)
        # One batch at a time, items then their history rows: the same statements as all at once, but the
        # history instances of 100,000 items no longer sit in memory together.
        for start in range(0, len(creates), BATCH):
            bulk_create_with_history(
                creates[start : start + BATCH], ChecklistItem, batch_size=BATCH, default_user=self.by,
                default_change_reason=self.reason, default_date=now,
            )  # fmt: skip
        for fields, items in updates.items():
            _update_rows(items, sorted(fields))
        changed = [item for items in updates.values() for item in items]
        for start in range(0, len(changed), BATCH):
            ChecklistItem.history.bulk_history_create(
                changed[start : start + BATCH], batch_size=BATCH, update=True, default_user=self.by,
                default_change_reason=self.reason, default_date=now,
            )  # fmt: skip
        if progress is not None:
            progress(len(self.planned))

    def _phase_of(self, path: tuple[str, ...]) -> int | None:
        """The phase of the section at `path` or of its nearest ancestor (sections are all in memory)."""
        for depth in range(len(path), 0, -1):
            if phase_id := self.sections[path[:depth]].phase_id:
                return phase_id
        return None

    def _ensure_sections(self, paths: Iterable[tuple[str, ...]]) -> None:
        """Create the sections of every path that does not exist yet, parents first, one batch per depth."""
        # A dict keeps the file's order, so new sections list the way the spreadsheet does.
        wanted = {
            path[:depth]: None
            for path in paths
            for depth in range(1, len(path) + 1)
            if path[:depth] not in self.sections
        }
        order = Section.objects.filter(program=self.program).count()
        for depth in sorted({len(path) for path in wanted}):
            batch = []
            for path in (p for p in wanted if len(p) == depth):
                order += 1
                parent = self.sections[path[:-1]] if depth > 1 else None
                section = Section(program=self.program, parent=parent, title=path[-1], order=order)
                self.sections[path] = section
                batch.append(section)
            Section.objects.bulk_create(batch)


def _update_rows(items: list[ChecklistItem], fields: list[str]) -> None:
    """Write `fields` of every item: one parameterised UPDATE by id, run over a batch of items at a time.

    Not `bulk_update`: its CASE WHEN id = … THEN … per field and item took longer to build than everything
    else a re-import of 1,000 changed rows out of 10,000 does. Values are prepared as bulk_update prepares them.
    """
    meta = ChecklistItem._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    # Only model column names, quoted, go into the text; every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(items), BATCH):
            cursor.executemany(
                sql,
                [
                    [column.get_db_prep_save(getattr(item, column.attname), connection) for column in columns]
                    + [item.pk]
                    for item in items[start : start + BATCH]
                ],
            )


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- import runs: the record of every import, and the way large ones reach a worker -------------------------


def import_run_start(
    *,
    program: Program,
    data: bytes,
    source_name: str,
    by: AnyUser | None,
    file_format: str = "",
    mapping: str = "",
    mapping_text: str = "",
    dry_run: bool = False,
    commit_valid: bool = False,
    inline: bool = False,
) -> tuple[ImportRun, ChecklistReport | None]:
    """Record an import and run it now, or, above CAIRN_CHECKLIST_INLINE_ROWS rows, queue it for a worker
    (`inline` runs it now whatever its size: the command line waits anyway).

    Returns the run and, when it ran inline, its report. Errors in the file itself raise ChecklistFileError
    before anything is recorded; a user who may not import raises PermissionDenied.
    """
    if by is not None and not access.can_manage_program(by, program.pk):
        raise PermissionDenied(f"Only managers of {program.key} may import checklists into it.")
    file_format = detect_format(source_name, file_format)
    parsed_mapping = mapping_from(mapping, mapping_text)
    # Refuse an unreadable file before recording it; keep only the count (the rows are read again to import).
    row_count = len(prepared_rows(data, file_format, parsed_mapping)[1])
    run = ImportRun.objects.create(
        program=program,
        source_name=source_name[:300],
        file_format=file_format,
        mapping=mapping or ("uploaded" if mapping_text else ""),
        mapping_text=mapping_text,
        sha256=file_sha256(data),
        dry_run=dry_run,
        commit_valid=commit_valid,
        rows=row_count,
        created_by=by if by is not None and by.is_authenticated else None,
    )
    if not inline and row_count > settings.CAIRN_CHECKLIST_INLINE_ROWS:
        from roadmap.tasks import checklist_import_run  # tasks import this module

        run.source = data
        run.save(update_fields=["source"])
        outbox.enqueue(checklist_import_run, run_id=run.pk)
        return run, None
    report = _execute(run, data, parsed_mapping, by)
    return run, report


def mapping_from(name: str, text: str) -> Mapping | None:
    """The mapping given as YAML text, else the built-in or file `name`, else none (canonical columns)."""
    if text:
        return load_mapping(text, is_text=True)
    return load_mapping(name) if name else None


class ImportRunBusy(Exception):
    """The run is claimed by an attempt that may still be running: try again once its lease has expired."""

    def __init__(self, run_id: int, retry_in: float) -> None:
        super().__init__(f"import run {run_id} is claimed by another attempt for {retry_in:.0f} more seconds")
        self.retry_in = max(retry_in, 0.0)


# Recording a failure outlives a database restart: a few reconnections, up to about half a minute in all.
RECORD_BACKOFF_SECONDS = (0.5, 1, 2, 4, 8, 8, 8)


def import_run_execute(*, run_id: int, task_id: str = "") -> str:
    """Run a queued import once.

    The claim (pending → running) makes a redelivered task a no-op while the attempt that claimed the run may
    still be running: ImportRunBusy says when to look again. A claim older than CAIRN_CHECKLIST_IMPORT_TIME_LIMIT
    belongs to a dead worker (the hard time limit ends any attempt still going), and the import is one
    transaction, so the killed attempt wrote nothing: the run is claimed again and runs from the start.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.CAIRN_CHECKLIST_IMPORT_TIME_LIMIT)
    abandoned = Q(status=ImportRun.Status.RUNNING, started_at__lt=now - lease)
    claimed = ImportRun.objects.filter(Q(status=ImportRun.Status.PENDING) | abandoned, pk=run_id).update(
        status=ImportRun.Status.RUNNING, started_at=now, task_id=task_id[:64]
    )
    run = ImportRun.objects.select_related("program", "created_by").get(pk=run_id)
    if not claimed:
        if run.status == ImportRun.Status.RUNNING and run.started_at is not None:
            raise ImportRunBusy(run.pk, (run.started_at + lease - now).total_seconds())
        return run.status
    try:
        _execute(
            run,
            bytes(run.source or b""),
            mapping_from(run.mapping if run.mapping != "uploaded" else "", run.mapping_text),
            run.created_by,
        )
    except Exception as exc:
        _run_failed(run.pk, exc)
        if not isinstance(exc, ChecklistFileError | PermissionDenied):
            raise
    return ImportRun.objects.values_list("status", flat=True).get(pk=run.pk)


def _run_failed(run_id: int, exc: Exception) -> None:
    """Record why the run failed. When the database itself failed (a restart drops every connection), the
    import's transaction was rolled back: reconnect, waiting for the server to come back, and say so."""
    error = str(exc)
    if isinstance(exc, DatabaseError):
        error = (
            f"The database failed during the import ({' '.join(error.split()) or type(exc).__name__}). "
            "The import runs in one transaction, which was rolled back: nothing was written. "
            "Import the file again."
        )
    for pause in (*RECORD_BACKOFF_SECONDS, None):
        try:
            ImportRun.objects.filter(pk=run_id).update(
                status=ImportRun.Status.FAILED, error=error[:2000], finished_at=timezone.now(), source=None
            )
            return
        except (OperationalError, InterfaceError):
            if pause is None:
                raise
            connection.close()  # a broken connection is not reused: the next query opens a new one
            time.sleep(pause)


def _execute(run: ImportRun, data: bytes, mapping: Mapping | None, by: AnyUser | None) -> ChecklistReport:
    def progress(rows: int) -> None:
        ImportRun.objects.filter(pk=run.pk).update(progress=rows)

    report = checklist_import(
        program=run.program,
        data=data,
        file_format=run.file_format,
        by=by,
        mapping=mapping,
        dry_run=run.dry_run,
        commit_valid=run.commit_valid,
        source_name=run.source_name,
        progress=progress,
    )
    rejected = report.invalid and not report.committed
    run.status = ImportRun.Status.REJECTED if rejected else ImportRun.Status.SUCCEEDED
    run.report = {
        **report.as_dict(),
        "errors": report.as_dict()["errors"][:1000],
        "absent": len(report.absent),
        "sections_created": report.sections_created,
    }
    run.progress = report.rows
    run.finished_at = timezone.now()
    run.source = None
    run.save(update_fields=["status", "report", "progress", "finished_at", "source"])
    return report
