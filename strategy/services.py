"""Import a markdown strategy into a program and export it back. The admin, the API and the CLI call these.

An import is one transaction: the program, its phases, sections, items, metric definitions and the strategy's
controlled document all change together or not at all. A dry run does the same work and rolls it back, so its
report is exactly what the real import would do.

Re-imports never delete: items, sections and metrics whose lines left the document are archived, keep their
status, owner, evidence and history, and come back when their line does. Identity is the stable key of
(section path, normalised text), so what people set in the admin survives a re-import.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from cairn.lib.history import save_with_history
from governance.models import ControlledDocument, DocumentVersion
from metrics.models import Metric
from roadmap import access
from roadmap import services as roadmap_services
from roadmap.keys import normalise_text
from roadmap.models import ChecklistItem, Phase, Program, Section, default_levels
from roadmap.selectors import section_path_index
from strategy.parser import PATH_SEPARATOR, Outline, OutlineItem, StrategyError, parse_strategy
from strategy.writer import DOCUMENT_COLUMNS, render_from_source, render_generated

if TYPE_CHECKING:
    from roadmap.models import AnyUser

# The control fields the import report shows, in the order the JSON contract lists them.
REPORT_DOCUMENT_FIELDS = (
    "version",
    "last_updated",
    "review_date",
    "next_review",
    "owner",
    "approver",
    "distribution",
)
DOCUMENT_DATE_FIELDS = {
    "last_updated": "last_updated_on",
    "review_date": "last_reviewed_on",
    "next_review": "next_review_due",
}
ITEM_FIELDS = ("title", "description", "kind", "level", "section_id", "phase_id")
ITEM_STATUS_FIELDS = ("status", "status_reason", "completed_at", "attested_at", "attested_by")
METRIC_FIELDS = ("name", "description", "category_id")


@dataclass
class Counts:
    added: int = 0
    changed: int = 0
    archived: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    program: str
    created: bool
    dry_run: bool
    phases: int = 0
    sections: int = 0
    items: Counts = field(default_factory=Counts)
    metrics: Counts = field(default_factory=Counts)
    document: dict[str, str | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # What changed, one readable line each, for the admin preview and the command's summary.
    changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON contract of `import_strategy --json` and the API."""
        return {
            "program": self.program,
            "created": self.created,
            "dry_run": self.dry_run,
            "phases": self.phases,
            "sections": self.sections,
            "items": asdict(self.items),
            "metrics": asdict(self.metrics),
            "document": dict(self.document),
            "warnings": list(self.warnings),
        }

    @property
    def changed_anything(self) -> bool:
        return self.created or any(
            counts.added or counts.changed or counts.archived for counts in (self.items, self.metrics)
        )

    def summary_lines(self) -> list[str]:
        verb = "would be" if self.dry_run else "was"
        state = "created" if self.created else "updated"
        lines = [f"Program {self.program} {verb} {state}: {self.phases} phases, {self.sections} sections."]
        for name, counts in (("Items", self.items), ("Metrics", self.metrics)):
            lines.append(
                f"{name}: {counts.added} added, {counts.changed} changed, {counts.archived} archived, "
                f"{counts.unchanged} unchanged."
            )
        shown = ", ".join(f"{key} {value}" for key, value in self.document.items() if value)
        lines.append(f"Document control: {shown or 'none found'}.")
        return lines


class _DryRun(Exception):
    """Raised inside the import transaction to roll a dry run back."""


def strategy_import(
    *,
    data: bytes | str,
    by: AnyUser | None,
    program_key: str = "",
    dry_run: bool = False,
    source_name: str = "",
    level_rules: list[dict[str, Any]] | None = None,
) -> ImportReport:
    """Create or update a program from a markdown strategy; see the module docstring.

    `by=None` is an operator at the command line. A user needs the program's manager role to update it and
    the permission to add programs to create one. Raises StrategyError for a document that cannot be imported
    and PermissionDenied for a user who may not import it; in both cases nothing is written.
    """
    outline = parse_strategy(data, max_bytes=settings.CAIRN_STRATEGY_MAX_BYTES)
    key = program_key or slugify(outline.front_matter.get("title") or outline.title)[:64].strip("-")
    if not key or slugify(key) != key:
        raise StrategyError(f"cannot use {key!r} as a program key; give one with letters, digits and dashes.")
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    importer = _Importer(outline, text=text, by=by, key=key, source_name=source_name, level_rules=level_rules)
    try:
        with transaction.atomic():
            report = importer.run(dry_run=dry_run)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except ValidationError as exc:
        # The parser refuses what does not fit; this is the safety net for a rule it does not know yet.
        raise StrategyError(f"the document does not fit Cairn's records: {'; '.join(exc.messages)}") from None
    return report


def level_for(path: tuple[str, ...], rules: list[dict[str, Any]], phase_number: int | None) -> int | None:
    """The first rule whose pattern matches the section path (or one of its ancestors) wins, then the phase."""
    candidates = [PATH_SEPARATOR.join(path[:depth]).casefold() for depth in range(len(path), 0, -1)]
    for rule in rules:
        pattern = str(rule["pattern"]).casefold()
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            return int(rule["level"])
    return phase_number


class _Importer:
    def __init__(
        self,
        outline: Outline,
        *,
        text: str,
        by: AnyUser | None,
        key: str,
        source_name: str,
        level_rules: list[dict[str, Any]] | None,
    ) -> None:
        self.outline = outline
        self.text = text
        self.by = by
        self.key = key
        self.source_name = source_name
        self.level_rules = level_rules
        self.now = timezone.now()
        self.reason = f"Strategy import{f' of {source_name}' if source_name else ''}"
        self.history_user = by if by is not None and by.is_authenticated else None

    def run(self, *, dry_run: bool) -> ImportReport:
        program, created = self._program()
        report = ImportReport(program=program.key, created=created, dry_run=dry_run)
        self.report = report
        report.warnings = list(self.outline.warnings)
        phases = self._phases(program)
        sections = self._sections(program, phases)
        self._items(program, sections, phases)
        self._metrics(program, sections)
        report.document = self._document(program)
        report.phases = program.phases.count()
        report.sections = program.sections.filter(archived_at__isnull=True).count()
        return report

    # --- program ---------------------------------------------------------------------------------------

    def _program(self) -> tuple[Program, bool]:
        outline = self.outline
        program = Program.objects.select_for_update().filter(key=self.key).first()
        fields: dict[str, Any] = {
            "title": outline.title,
            "subtitle": outline.subtitle,
            "summary": outline.summary,
        }
        if self.level_rules is not None:
            fields["level_rules"] = self.level_rules
        if program is None:
            roadmap_services.program_assert_creatable(self.by)
            fields.setdefault("level_rules", [])
            program = roadmap_services.program_create(
                by=self.by, key=self.key, levels=self._levels_from_phases(), reason=self.reason, **fields
            )
            return program, True
        if self.by is not None and not access.can_manage_program(self.by, program.pk):
            raise PermissionDenied(f"Only managers of {program.key} may import its strategy.")
        changed = {name: value for name, value in fields.items() if getattr(program, name) != value}
        if changed:
            for name, value in changed.items():
                setattr(program, name, value)
            save_with_history(program, by=self.history_user, reason=self.reason)
        return program, False

    def _levels_from_phases(self) -> list[dict[str, Any]]:
        numbers = sorted(phase.number for phase in self.outline.phases)
        if not numbers or numbers != list(range(1, len(numbers) + 1)):
            return default_levels()
        names = {phase.number: phase.name for phase in self.outline.phases}
        return [{"level": number, "name": names[number]} for number in numbers]

    # --- phases and sections ---------------------------------------------------------------------------

    def _phases(self, program: Program) -> dict[int, Phase]:
        existing = {phase.code: phase for phase in program.phases.all()}
        level_count = len(program.levels or [])
        result: dict[int, Phase] = {}
        for parsed in self.outline.phases:
            wanted = {
                "order": parsed.number,
                "name": parsed.name,
                "start_month": parsed.start_month,
                "end_month": parsed.end_month,
                "objectives": parsed.objectives,
                "target_level": parsed.number if parsed.number <= level_count else None,
            }
            phase = existing.get(parsed.code)
            if phase is None:
                phase = Phase(program=program, code=parsed.code, **wanted)
            elif all(getattr(phase, name) == value for name, value in wanted.items()):
                result[parsed.number] = phase
                continue
            else:
                for name, value in wanted.items():
                    setattr(phase, name, value)
                self.report.changes.append(f"phase {parsed.code} updated (line {parsed.line})")
            save_with_history(phase, by=self.history_user, reason=self.reason)
            result[parsed.number] = phase
        for code in sorted(set(existing) - {parsed.code for parsed in self.outline.phases}):
            self.report.warnings.append(f"phase {code} is no longer in the document; it is kept as it was.")
        return result

    def _sections(self, program: Program, phases: dict[int, Phase]) -> dict[tuple[str, ...], Section]:
        by_path = section_path_index(program.sections.all())
        seen: set[tuple[str, ...]] = set()
        to_update: list[Section] = []
        # Parents come before children in the outline, so one pass can create each level's parents first.
        pending_by_depth: dict[int, list[tuple[tuple[str, ...], Section]]] = {}
        for order, parsed in enumerate(self.outline.sections, start=1):
            seen.add(parsed.path)
            phase = phases.get(parsed.phase_number) if parsed.phase_number else None
            wanted = {
                "order": order,
                "style": parsed.style,
                "source_line": parsed.line,
                "phase_id": phase.pk if phase else None,
                "archived_at": None,
            }
            section = by_path.get(parsed.path)
            if section is None:
                section = Section(
                    program=program,
                    title=parsed.title,
                    is_capability_area=len(parsed.path) == program.area_depth and parsed.style == "heading",
                    **wanted,
                )
                pending_by_depth.setdefault(len(parsed.path), []).append((parsed.path, section))
                by_path[parsed.path] = section
            elif any(getattr(section, name) != value for name, value in wanted.items()):
                if section.archived_at is not None:
                    self.report.changes.append(f"section {PATH_SEPARATOR.join(parsed.path)!r} restored")
                for name, value in wanted.items():
                    setattr(section, name, value)
                to_update.append(section)
        for depth in sorted(pending_by_depth):
            batch = pending_by_depth[depth]
            for path, section in batch:
                section.parent = by_path[path[:-1]] if depth > 1 else None
            Section.objects.bulk_create([section for _, section in batch])
        for path, section in by_path.items():
            if path not in seen and section.source_line is not None and section.archived_at is None:
                section.archived_at = self.now
                to_update.append(section)
                self.report.changes.append(
                    f"section {PATH_SEPARATOR.join(path)!r} archived (no longer in the document)"
                )
        if to_update:
            Section.objects.bulk_update(
                to_update, ["order", "style", "source_line", "phase_id", "archived_at"], batch_size=500
            )
        return by_path

    # --- items -----------------------------------------------------------------------------------------

    def _items(
        self, program: Program, sections: dict[tuple[str, ...], Section], phases: dict[int, Phase]
    ) -> None:
        counts = self.report.items
        existing = {item.key: item for item in ChecklistItem.objects.filter(program=program)}
        unmatched = {
            (item.section_id, normalise_text(item.title)): item
            for item in existing.values()
            if item.archived_at is None
        }
        rules = program.level_rules or []
        level_count = len(program.levels or [])
        phase_of_path = self._phase_numbers_by_path()
        matched: set[int] = set()
        creates: list[ChecklistItem] = []
        updates: list[ChecklistItem] = []
        quiet: list[ChecklistItem] = []
        warned_levels: set[int] = set()
        for order, parsed in enumerate(self.outline.items, start=1):
            section = sections[parsed.path]
            phase_number = phase_of_path(parsed.path)
            level = level_for(parsed.path, rules, phase_number)
            if level is not None and level > level_count:
                if level not in warned_levels:
                    warned_levels.add(level)
                    self.report.warnings.append(
                        f"line {parsed.line}: level {level} is beyond the program's {level_count} levels; "
                        "such items are imported without a level."
                    )
                level = None
            phase = phases.get(phase_number) if phase_number else None
            wanted = {
                "title": parsed.title,
                "description": parsed.description,
                "kind": parsed.kind,
                "level": level,
                "section_id": section.pk,
                "phase_id": phase.pk if phase else None,
            }
            item = existing.get(parsed.key) or unmatched.get((section.pk, normalise_text(parsed.title)))
            if item is None or item.pk in matched:
                creates.append(self._new_item(program, parsed, wanted, order))
                counts.added += 1
                self.report.changes.append(f"item added: {parsed.title!r} (line {parsed.line})")
                continue
            matched.add(item.pk)
            if parsed.kind == "task":
                del wanted["description"]  # task lines carry none; one written in Cairn stays
            if item.source_line is None:
                del wanted["level"]  # an item added by hand keeps its level when its line first appears
            differs = [name for name, value in wanted.items() if getattr(item, name) != value]
            if item.key == parsed.key:
                differs = [name for name in differs if name != "title" or item.title.strip() != parsed.title]
            else:
                differs = [
                    name for name in differs if name != "title"
                ]  # renamed in the admin: keep its title
            restored = item.archived_at is not None
            ticked = parsed.done and item.status != ChecklistItem.Status.DONE
            for name in differs:
                setattr(item, name, wanted[name])
            if ticked:
                item.set_status(ChecklistItem.Status.DONE, by=self.history_user, reason="")
            if restored:
                item.archived_at = None
            moved = (item.order, item.source_line) != (order, parsed.line)
            item.order, item.source_line = order, parsed.line
            if differs or ticked or restored:
                updates.append(item)
                if restored:
                    counts.added += 1
                    self.report.changes.append(f"item restored: {parsed.title!r} (line {parsed.line})")
                else:
                    counts.changed += 1
                    what = ", ".join([*differs, *(["done"] if ticked else [])])
                    self.report.changes.append(
                        f"item changed ({what}): {parsed.title!r} (line {parsed.line})"
                    )
            else:
                counts.unchanged += 1
                if moved:
                    quiet.append(item)
        archived = [
            item
            for item in existing.values()
            if item.pk not in matched and item.archived_at is None and item.source_line is not None
        ]
        for item in archived:
            item.archived_at = self.now
            counts.archived += 1
            self.report.changes.append(f"item archived: {item.title!r} (no longer in the document)")
        for item in [*updates, *archived]:
            item.updated_at = self.now
            item.version += 1  # an edit based on the version before this import is refused (EditConflict)
        if creates:
            bulk_create_with_history(
                creates,
                ChecklistItem,
                batch_size=500,
                default_user=self.history_user,
                default_change_reason=self.reason,
                default_date=self.now,
            )
        if updates or archived:
            bulk_update_with_history(
                [*updates, *archived],
                ChecklistItem,
                [
                    *ITEM_FIELDS,
                    *ITEM_STATUS_FIELDS,
                    "archived_at",
                    "order",
                    "source_line",
                    "updated_at",
                    "version",
                ],
                batch_size=500,
                default_user=self.history_user,
                default_change_reason=self.reason,
                default_date=self.now,
            )
        if quiet:
            # Line numbers and order move whenever lines are added above: bookkeeping, not a change to record.
            ChecklistItem.objects.bulk_update(quiet, ["order", "source_line"], batch_size=500)

    def _new_item(
        self, program: Program, parsed: OutlineItem, wanted: Mapping[str, Any], order: int
    ) -> ChecklistItem:
        item = ChecklistItem(program=program, key=parsed.key, order=order, source_line=parsed.line, **wanted)
        if parsed.done:
            item.set_status(ChecklistItem.Status.DONE, by=self.history_user, reason="")
        return item

    def _phase_numbers_by_path(self) -> Any:
        phase_paths = {
            section.path: section.phase_number
            for section in self.outline.sections
            if section.phase_number is not None
        }

        def phase_number(path: tuple[str, ...]) -> int | None:
            for depth in range(len(path), 0, -1):
                if (number := phase_paths.get(path[:depth])) is not None:
                    return number
            return None

        return phase_number

    # --- metrics ---------------------------------------------------------------------------------------

    def _metrics(self, program: Program, sections: dict[tuple[str, ...], Section]) -> None:
        counts = self.report.metrics
        existing = {metric.key: metric for metric in Metric.objects.filter(program=program)}
        matched: set[int] = set()
        creates: list[Metric] = []
        updates: list[Metric] = []
        quiet: list[Metric] = []
        for order, parsed in enumerate(self.outline.metrics, start=1):
            wanted = {
                "name": parsed.name,
                "description": parsed.description,
                "category_id": sections[parsed.path].pk,
            }
            metric = existing.get(parsed.key)
            if metric is None:
                creates.append(
                    Metric(program=program, key=parsed.key, order=order, source_line=parsed.line, **wanted)
                )
                counts.added += 1
                self.report.changes.append(f"metric added: {parsed.name!r} (line {parsed.line})")
                continue
            matched.add(metric.pk)
            differs = [name for name, value in wanted.items() if getattr(metric, name) != value]
            restored = metric.archived_at is not None
            moved = (metric.order, metric.source_line) != (order, parsed.line)
            for name in differs:
                setattr(metric, name, wanted[name])
            metric.archived_at = None
            metric.order, metric.source_line = order, parsed.line
            if differs or restored:
                counts.added += restored
                counts.changed += not restored
                self.report.changes.append(
                    f"metric {'restored' if restored else 'changed'}: {parsed.name!r} (line {parsed.line})"
                )
                updates.append(metric)
            else:
                counts.unchanged += 1
                if moved:
                    quiet.append(metric)
        for metric in existing.values():
            if metric.pk not in matched and metric.archived_at is None and metric.source_line is not None:
                metric.archived_at = self.now
                updates.append(metric)
                counts.archived += 1
                self.report.changes.append(f"metric archived: {metric.name!r} (no longer in the document)")
        if creates:
            bulk_create_with_history(
                creates,
                Metric,
                batch_size=500,
                default_user=self.history_user,
                default_change_reason=self.reason,
                default_date=self.now,
            )
        if quiet:
            Metric.objects.bulk_update(quiet, ["order", "source_line"], batch_size=500)
        for metric in updates:
            metric.updated_at = self.now
        if updates:
            bulk_update_with_history(
                updates,
                Metric,
                [*METRIC_FIELDS, "archived_at", "order", "source_line", "updated_at"],
                batch_size=500,
                default_user=self.history_user,
                default_change_reason=self.reason,
                default_date=self.now,
            )

    # --- document control ------------------------------------------------------------------------------

    def _document(self, program: Program) -> dict[str, str | None]:
        document = ControlledDocument.objects.filter(
            program=program, doc_type=ControlledDocument.Type.STRATEGY
        ).first() or ControlledDocument(program=program, doc_type=ControlledDocument.Type.STRATEGY)
        latest = document.versions.order_by("-id").first() if document.pk else None
        in_force = (
            document.pk is not None
            and document.versions.filter(state=DocumentVersion.State.EFFECTIVE).exists()
        )
        new_text = latest is None or _content_key(latest.source_text) != _content_key(self.text)
        if in_force and new_text:
            # The version in force is never silently replaced: the new text waits as a draft for review and
            # approval, and the control block keeps describing the effective version until it is published.
            self._version(document, DocumentVersion.State.DRAFT)
            self.report.warnings.append(
                f"the document's text changed: version {self._label(document) or '(no label)'} is a new draft; "
                "submit it for review and approval to put it in force."
            )
        else:
            self._control_fields(document)
            if new_text:
                self._version(document, DocumentVersion.State.EFFECTIVE)
        return {name: (getattr(document, DOCUMENT_COLUMNS[name]) or None) for name in REPORT_DOCUMENT_FIELDS}

    def _control_fields(self, document: ControlledDocument) -> None:
        outline = self.outline
        wanted: dict[str, Any] = {"title": outline.title}
        # Only what the document states is taken; a field it leaves out keeps the value set in Cairn.
        for name, control in outline.control.items():
            wanted[DOCUMENT_COLUMNS[name]] = control.value
            if name in DOCUMENT_DATE_FIELDS:
                wanted[DOCUMENT_DATE_FIELDS[name]] = control.date
        front = outline.front_matter
        for name in ("category", "tags", "created"):
            if name in front:
                wanted[name] = front[name]
        differs = {name: value for name, value in wanted.items() if getattr(document, name) != value}
        if differs or document.pk is None:
            existed = document.pk is not None
            for name, value in differs.items():
                setattr(document, name, value)
            save_with_history(document, by=self.history_user, reason=self.reason)
            if existed and differs:
                self.report.changes.append(f"document control updated: {', '.join(sorted(differs))}")

    def _label(self, document: ControlledDocument) -> str:
        control = self.outline.control
        return control["version"].value if "version" in control else document.version_label

    def _version(self, document: ControlledDocument, state: str) -> DocumentVersion:
        effective = state == DocumentVersion.State.EFFECTIVE
        version = DocumentVersion(
            document=document,
            label=self._label(document),
            state=state,
            effective_on=self.now.date() if effective else None,
            source_name=self.source_name[:300],
            source_text=self.text,
            sha256=hashlib.sha256(self.text.encode()).hexdigest(),
            created_by=self.history_user,
            change_summary=self.reason,
        )
        save_with_history(version, by=self.history_user, reason=self.reason)
        return version


_TICK = re.compile(r"^([ \t]*[-*+][ \t]+\[)[xX](\])", re.MULTILINE)


def _content_key(text: str) -> str:
    """The text with every task unticked: progress is not a new version of the document."""
    return _TICK.sub(r"\1 \2", text.replace("\r\n", "\n"))


def strategy_export(*, program: Program, by: AnyUser | None) -> str:
    """The program as a markdown strategy: its last imported text with today's ticks and control values,
    or, for a program that never had a document, one written from its outline."""
    if by is not None and not Program.objects.for_user(by).filter(pk=program.pk).exists():
        raise PermissionDenied(f"You may not read {program.key}.")
    document = ControlledDocument.objects.filter(
        program=program, doc_type=ControlledDocument.Type.STRATEGY
    ).first()
    latest = document.versions.order_by("-id").first() if document else None
    items = list(
        ChecklistItem.objects.filter(program=program, archived_at__isnull=True).order_by("order", "pk")
    )
    metrics = list(Metric.objects.filter(program=program, archived_at__isnull=True).order_by("order", "pk"))
    sections = list(
        program.sections.filter(archived_at__isnull=True).select_related("phase").order_by("order", "pk")
    )
    if latest is not None:
        return render_from_source(
            latest.source_text, document=document, items=items, metrics=metrics, sections=sections
        )
    return render_generated(program, document=document, items=items, metrics=metrics, sections=sections)


def level_rule_from_text(text: str) -> dict[str, Any]:
    """'Cloud Capabilities > *=2' → {"pattern": "Cloud Capabilities > *", "level": 2} (the CLI's --levels)."""
    pattern, separator, level = text.rpartition("=")
    if not separator or not pattern.strip() or not level.strip().isdigit() or int(level) < 1:
        raise StrategyError(
            f"cannot read level rule {text!r}; expected PATTERN=LEVEL, e.g. 'Cloud Security*=2'."
        )
    return {"pattern": pattern.strip(), "level": int(level)}
