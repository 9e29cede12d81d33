"""The strategy import and export services and their commands: what a program manager sees after each run."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from governance.models import ControlledDocument
from governance.services import controlled_document_update
from metrics.models import Metric
from roadmap import services as roadmap_services
from roadmap.models import ChecklistItem, Phase, Program, Section
from strategy.parser import StrategyError
from strategy.services import strategy_export, strategy_import
from tests.factories import ItemFactory, ProgramFactory, SectionFactory, member

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
STRATEGY = CORPUS / "advanced_cloud_infrastructure_strategy.md"
KEY = "advanced-cloud-infrastructure-strategy"

pytestmark = pytest.mark.django_db


def run_import(path: Path | str, *args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("import_strategy", str(path), "--json", *args, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object"
    return json.loads(lines[0])


def counts(report: dict[str, Any], what: str = "items") -> tuple[int, int, int, int]:
    c = report[what]
    return c["added"], c["changed"], c["archived"], c["unchanged"]


@pytest.fixture
def imported() -> Program:
    run_import(STRATEGY)
    return Program.objects.get(key=KEY)


def edited(tmp_path: Path, replacements: list[tuple[str, str]], name: str = "edited.md") -> Path:
    text = STRATEGY.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_corpus_strategy_becomes_a_program():
    report = run_import(STRATEGY)

    assert report["program"] == KEY
    assert report["created"] is True
    assert report["dry_run"] is False
    assert report["phases"] == 3
    assert counts(report) == (264, 0, 0, 0)
    assert counts(report, "metrics") == (32, 0, 0, 0)
    assert report["document"] == {
        "version": "1.0",
        "last_updated": "December 2024",
        "review_date": "March 2025",
        "next_review": "March 2025",
        "owner": "Chief Cloud Officer",
        "approver": "CEO",
        "distribution": "All Cloud Team Members",
    }
    assert report["warnings"] == []
    program = Program.objects.get(key=KEY)
    assert program.title == "Advanced Cloud Infrastructure Strategy"
    assert program.subtitle == "Business Continuity Cloud Infrastructure Framework"
    assert program.summary.startswith("This document outlines")
    assert report["sections"] == program.sections.count()


def test_phases_get_their_windows_objectives_and_name_the_levels(imported):
    phases = list(imported.phases.order_by("order"))
    assert [(p.code, p.name, p.start_month, p.end_month) for p in phases] == [
        ("P1", "Cloud Foundation", 1, 6),
        ("P2", "Cloud Enhancement", 7, 12),
        ("P3", "Cloud Excellence", 13, 18),
    ]
    assert phases[0].objectives.startswith("Establish cloud foundation")
    assert [level["name"] for level in imported.levels] == [
        "Cloud Foundation",
        "Cloud Enhancement",
        "Cloud Excellence",
    ]


def test_items_are_tasks_and_practices_with_phase_levels(imported):
    items = ChecklistItem.objects.filter(program=imported)
    assert items.filter(kind="task").count() == 216
    assert items.filter(kind="practice").count() == 48
    phase_items = items.filter(phase__isnull=False)
    assert phase_items.count() == 48  # 3 phases x 2 groups x 8 tasks
    for phase in imported.phases.all():
        levels = set(phase_items.filter(phase=phase).values_list("level", flat=True))
        assert levels == {phase.order}
    assert not items.filter(phase__isnull=True, level__isnull=False).exists()
    grouped = items.get(title="Virtual machine deployment")
    assert grouped.section.title == "Core Cloud Features"
    assert grouped.section.style == "bold"
    assert grouped.section.parent.title == "Phase 1: Cloud Foundation (Months 1-6)"
    practice = items.get(title="Microservices")
    assert practice.description == "Microservices architecture implementation"
    assert practice.section.style == "numbered"


def test_metrics_are_definitions_in_their_category(imported):
    metrics = Metric.objects.filter(program=imported)
    assert metrics.count() == 32
    availability = metrics.get(name="Availability")
    assert availability.description == "Cloud infrastructure uptime"
    assert availability.category.title == "Infrastructure Performance"
    assert availability.category.parent.title == "Cloud Infrastructure Metrics"
    assert not availability.is_measurable  # no target yet: "defined, not yet measurable"


def test_appendix_headings_are_kept_as_empty_sections(imported):
    appendices = Section.objects.get(program=imported, title="Appendices")
    titles = list(appendices.children.values_list("title", flat=True))
    assert titles == [
        "A. Cloud Architecture Diagrams",
        "B. Cloud Implementation Procedures",
        "C. Cloud Metrics Dashboard",
        "D. Cloud Security Framework",
        "E. Cloud Best Practices Library",
    ]
    assert not ChecklistItem.objects.filter(section__parent=appendices).exists()


def test_the_strategy_becomes_a_controlled_document_with_its_text(imported):
    document = ControlledDocument.objects.get(program=imported, doc_type="strategy")
    assert (document.owner, document.approver, document.version_label) == (
        "Chief Cloud Officer",
        "CEO",
        "1.0",
    )
    assert document.last_updated_on == date(2024, 12, 1)
    assert document.last_reviewed_on == date(2025, 3, 1)
    assert document.next_review_due == date(2025, 3, 1)
    assert (document.category, document.tags, document.created) == (
        "04_business_strategy",
        ["strategy"],
        "2025-10-29",
    )
    version = document.versions.get()
    assert version.source_text == STRATEGY.read_text(encoding="utf-8")
    assert len(version.sha256) == 64


def test_reimporting_the_same_file_changes_nothing(imported):
    report = run_import(STRATEGY)
    assert report["created"] is False
    assert counts(report) == (0, 0, 0, 264)
    assert counts(report, "metrics") == (0, 0, 0, 32)
    document = ControlledDocument.objects.get(program=imported)
    assert document.versions.count() == 1
    assert ChecklistItem.history.filter(program_id=imported.pk).count() == 264  # only the creations


def test_what_managers_set_in_cairn_survives_a_reimport(imported):
    manager = member(imported, "manager", "maria")
    item = ChecklistItem.objects.get(program=imported, title="Container orchestration")
    roadmap_services.checklist_item_update(
        item=item, by=manager, data={"status": "blocked", "status_reason": "Vendor", "owner": manager}
    )
    run_import(STRATEGY)
    item.refresh_from_db()
    assert (item.status, item.status_reason, item.owner) == ("blocked", "Vendor", manager)


def test_an_edited_document_adds_archives_and_ticks(tmp_path, imported):
    manager = member(imported, "manager", "maria")
    removed = ChecklistItem.objects.get(program=imported, title="Serverless functions")
    roadmap_services.checklist_item_update(
        item=removed, by=manager, data={"status": "in_progress", "owner": manager}
    )
    path = edited(
        tmp_path,
        [
            ("- [ ] Serverless functions\n", ""),
            ("- [ ] Cloud storage setup\n", "- [ ] Cloud storage setup\n- [ ] Cloud key management\n"),
            ("- [ ] Virtual machine deployment", "- [x] Virtual machine deployment"),
        ],
    )

    report = run_import(path)

    assert counts(report) == (1, 1, 1, 262)
    removed.refresh_from_db()
    assert removed.archived_at is not None
    assert (removed.status, removed.owner) == ("in_progress", manager)  # archived, not deleted
    added = ChecklistItem.objects.get(program=imported, title="Cloud key management")
    assert added.section.title == "Core Cloud Features"
    assert added.level == 1
    ticked = ChecklistItem.objects.get(program=imported, title="Virtual machine deployment")
    assert ticked.status == "done"
    assert ticked.completed_at is not None
    latest = ticked.history.first()
    assert latest.status == "done"
    assert latest.history_change_reason.startswith("Strategy import")


def test_a_line_that_comes_back_restores_its_item(tmp_path, imported):
    manager = member(imported, "manager", "maria")
    item = ChecklistItem.objects.get(program=imported, title="Serverless functions")
    roadmap_services.checklist_item_update(item=item, by=manager, data={"owner": manager})
    run_import(edited(tmp_path, [("- [ ] Serverless functions\n", "")]))

    report = run_import(STRATEGY)

    assert counts(report) == (1, 0, 0, 263)
    item.refresh_from_db()
    assert item.archived_at is None
    assert item.owner == manager
    assert ChecklistItem.objects.filter(program=imported, title="Serverless functions").count() == 1


def test_removed_metrics_and_sections_are_archived(tmp_path, imported):
    path = edited(
        tmp_path,
        [
            ("   - **Availability:** Cloud infrastructure uptime\n", ""),
            ("### E. Cloud Best Practices Library\n", ""),
        ],
    )
    report = run_import(path)
    assert counts(report, "metrics") == (0, 0, 1, 31)
    assert Metric.objects.get(program=imported, name="Availability").archived_at is not None
    section = Section.objects.get(program=imported, title="E. Cloud Best Practices Library")
    assert section.archived_at is not None
    assert report["sections"] == Section.objects.filter(program=imported, archived_at__isnull=True).count()


def test_a_changed_practice_description_is_a_change(tmp_path, imported):
    path = edited(
        tmp_path,
        [("**Microservices:** Microservices architecture implementation", "**Microservices:** Service mesh")],
    )
    report = run_import(path)
    assert counts(report) == (0, 1, 0, 263)
    assert ChecklistItem.objects.get(program=imported, title="Microservices").description == "Service mesh"


def test_items_added_by_hand_are_not_archived_and_are_exported(imported):
    manager = member(imported, "manager", "maria")
    section = Section.objects.get(program=imported, title="Core Cloud Features")
    roadmap_services.checklist_item_create(
        by=manager, program=imported, section=section, title="Cloud DNS failover"
    )

    report = run_import(STRATEGY)
    assert counts(report) == (0, 0, 0, 264)
    exported = strategy_export(program=imported, by=None)
    assert (
        "- [ ] Cloud continuous improvement\n- [ ] Cloud DNS failover\n"
        in exported.split("**Advanced Cloud Features:**")[0]
    )

    again = strategy_import(data=exported, by=None, program_key=KEY)
    assert (again.items.added, again.items.changed, again.items.archived) == (0, 0, 0)
    assert again.items.unchanged == 265


def test_export_then_import_reports_no_change_and_diffs_only_ticks_and_control(imported):
    manager = member(imported, "manager", "maria")
    done = list(
        ChecklistItem.objects.filter(
            program=imported, title__in=["Container orchestration", "Storage management"]
        )
    )
    roadmap_services.checklist_items_set_status(
        item_ids=[item.pk for item in done], status="done", by=manager
    )
    document = ControlledDocument.objects.get(program=imported)
    controlled_document_update(document=document, by=manager, data={"owner": "Chief Technology Officer"})

    exported = strategy_export(program=imported, by=manager)

    original = STRATEGY.read_text(encoding="utf-8").split("\n")
    lines = exported.split("\n")
    assert len(lines) == len(original)
    differing = [(old, new) for old, new in zip(original, lines, strict=True) if old != new]
    assert differing == [
        ("- [ ] Container orchestration", "- [x] Container orchestration"),
        ("   - [ ] Storage management", "   - [x] Storage management"),
        ("- **Owner:** Chief Cloud Officer", "- **Owner:** Chief Technology Officer"),
    ]
    report = strategy_import(data=exported, by=manager, program_key=KEY)
    assert (report.items.added, report.items.changed, report.items.archived) == (0, 0, 0)
    assert (report.metrics.added, report.metrics.changed, report.metrics.archived) == (0, 0, 0)


def test_a_program_without_a_document_is_written_from_its_outline(imported):
    ControlledDocument.objects.get(program=imported).versions.all().delete()
    generated = strategy_export(program=imported, by=None)
    assert generated.startswith("---\ntitle: Advanced Cloud Infrastructure Strategy\n")
    assert "#### Phase 2: Cloud Enhancement (Months 7-12)\n**Objectives:** Enhance" in generated

    report = strategy_import(data=generated, by=None, program_key=KEY)
    assert (report.items.added, report.items.changed, report.items.archived, report.items.unchanged) == (
        0,
        0,
        0,
        264,
    )
    assert (report.metrics.added, report.metrics.changed, report.metrics.archived) == (0, 0, 0)
    copy = strategy_import(data=generated, by=None, program_key="copy")
    assert (copy.items.added, copy.metrics.added, copy.phases) == (264, 32, 3)


def test_a_hand_built_program_exports_and_imports_into_an_equal_program():
    program = ProgramFactory(key="handmade", title="Handmade")
    root = SectionFactory(program=program, title="Platform")
    ItemFactory(section=root, title="Provision clusters", status="done")
    ItemFactory(section=SectionFactory(program=program, parent=root, title="Security"), title="Rotate keys")
    text = strategy_export(program=program, by=None)

    report = strategy_import(data=text, by=None, program_key="handmade-copy")

    copy = Program.objects.get(key="handmade-copy")
    assert report.items.added == 2
    assert ChecklistItem.objects.get(program=copy, title="Provision clusters").status == "done"
    assert ChecklistItem.objects.get(program=copy, title="Rotate keys").section.parent.title == "Platform"


def test_a_dry_run_reports_the_same_and_writes_nothing(tmp_path):
    dry = run_import(STRATEGY, "--dry-run")
    assert dry["dry_run"] is True
    assert not Program.objects.exists()
    assert not ChecklistItem.objects.exists()
    real = run_import(STRATEGY)
    assert {**dry, "dry_run": False} == real


def test_level_rules_map_sections_to_levels_and_are_kept(imported):
    report = run_import(
        STRATEGY, "--levels", "Cloud Capabilities > Advanced*=3", "--levels", "Cloud Capabilities*=2"
    )
    assert counts(report)[1] > 0
    imported.refresh_from_db()
    assert imported.level_rules == [
        {"pattern": "Cloud Capabilities > Advanced*", "level": 3},
        {"pattern": "Cloud Capabilities*", "level": 2},
    ]
    assert ChecklistItem.objects.get(program=imported, title="Virtual machine management").level == 2
    assert ChecklistItem.objects.get(program=imported, title="Machine learning platforms").level == 3
    assert ChecklistItem.objects.get(program=imported, title="Container orchestration").level == 1  # phase 1
    assert counts(run_import(STRATEGY))[:3] == (0, 0, 0)  # the saved rules apply to the next import


def test_a_bad_level_rule_is_refused():
    with pytest.raises(CommandError, match="PATTERN=LEVEL"):
        call_command("import_strategy", str(STRATEGY), "--levels", "Cloud=high", stdout=io.StringIO())
    assert not Program.objects.exists()


def test_the_readable_summary_says_what_happened(tmp_path):
    out = io.StringIO()
    call_command("import_strategy", str(STRATEGY), stdout=out)
    text = out.getvalue()
    assert f"Program {KEY} was created: 3 phases" in text
    assert "Items: 264 added, 0 changed, 0 archived, 0 unchanged." in text
    assert "Metrics: 32 added" in text
    assert "owner Chief Cloud Officer" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# Title\n\n## Section\n- [ ] caf\xe9\n", "line 4: the file is not UTF-8"),
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"Just a paragraph.\n- [ ] a task\n", "no headings"),
        (b"---\ntitle: [unclosed\n---\n# T\n", "front matter is not valid YAML"),
        (b"# T\n\n## S\n- [ ] Same\n- [ ] same\n", "line 5: duplicate item"),
    ],
)
def test_bad_documents_fail_with_the_line_and_write_nothing(tmp_path, content, message):
    path = tmp_path / "bad.md"
    path.write_bytes(content)
    out = io.StringIO()
    with pytest.raises(CommandError, match=message):
        call_command("import_strategy", str(path), "--json", stdout=out)
    error = json.loads(out.getvalue())
    assert message in error["error"]
    assert not Program.objects.exists()


def test_a_file_over_the_size_limit_is_refused(tmp_path, settings):
    settings.CAIRN_STRATEGY_MAX_BYTES = 1024
    with pytest.raises(StrategyError, match="CAIRN_STRATEGY_MAX_BYTES"):
        strategy_import(data=STRATEGY.read_bytes(), by=None)
    assert not Program.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_strategy", str(tmp_path / "nope.md"), stdout=io.StringIO())


def test_a_failure_half_way_leaves_nothing_behind(monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr("strategy.services._Importer._metrics", explode)
    with pytest.raises(RuntimeError):
        strategy_import(data=STRATEGY.read_bytes(), by=None)
    assert not Program.objects.exists()
    assert not Section.objects.exists()
    assert not ChecklistItem.objects.exists()


def test_importing_as_a_user_needs_the_manager_role_and_signs_the_history(imported):
    manager = member(imported, "manager", "maria")
    executive = member(imported, "executive", "eve")
    with pytest.raises(CommandError, match="Only managers"):
        call_command("import_strategy", str(STRATEGY), "--user", executive.username, stdout=io.StringIO())
    with pytest.raises(CommandError, match="no active user"):
        call_command("import_strategy", str(STRATEGY), "--user", "nobody", stdout=io.StringIO())

    item = ChecklistItem.objects.get(program=imported, title="Container orchestration")
    text = STRATEGY.read_text(encoding="utf-8").replace(
        "- [ ] Container orchestration", "- [x] Container orchestration"
    )
    strategy_import(data=text, by=manager, program_key=KEY)
    assert item.history.first().history_user == manager
    assert item.history.first().history_change_reason == "Strategy import"


def test_a_phase_dropped_from_the_document_is_kept_with_a_warning(tmp_path, imported):
    text = STRATEGY.read_text(encoding="utf-8")
    start = text.index("#### Phase 3")
    end = text.index("---", start)
    path = tmp_path / "two-phases.md"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    report = run_import(path)
    assert report["phases"] == 3
    assert any("phase P3 is no longer in the document" in warning for warning in report["warnings"])
    assert counts(report)[2] == 16
    assert Phase.objects.filter(program=imported, code="P3").exists()


def test_export_strategy_writes_a_file(tmp_path, imported):
    target = tmp_path / "out.md"
    call_command("export_strategy", KEY, "--output", str(target), stderr=io.StringIO())
    assert target.read_text(encoding="utf-8") == STRATEGY.read_text(encoding="utf-8")
    out = io.StringIO()
    call_command("export_strategy", KEY, stdout=out)
    assert out.getvalue() == STRATEGY.read_text(encoding="utf-8")
    with pytest.raises(CommandError, match="no program"):
        call_command("export_strategy", "missing", stdout=io.StringIO())


def test_other_corpus_documents_import(tmp_path):
    hipaa = run_import(CORPUS / "hipaa_attachments_security_hardening_roadmap.md", "--program", "hardening")
    assert counts(hipaa)[0] == 182
    assert hipaa["document"]["next_review"].startswith("Quarterly")
    assert any("Next Review" in warning for warning in hipaa["warnings"])
    policy = run_import(CORPUS / "noorg_board_governance_policy.md")
    assert policy["document"]["version"] == "1.0"
    assert ControlledDocument.objects.get(program__key=policy["program"]).doc_id == "POL-BOD-2024-001"
    education = run_import(CORPUS / "noorg_educational_technology_strategy.md")
    assert education["phases"] == 5
    assert counts(education, "metrics")[0] == 7
    for report in (hipaa, policy, education):
        assert counts(run_import_again(report["program"]))[:3] == (0, 0, 0)


def run_import_again(key: str) -> dict[str, Any]:
    program = Program.objects.get(key=key)
    text = ControlledDocument.objects.get(program=program).versions.first().source_text
    return strategy_import(data=text, by=None, program_key=key).as_dict()


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\r", "\u2028"])
def test_a_title_with_line_breaks_cannot_inject_markdown_into_the_export(sep):
    program = ProgramFactory(key="injected", title="Injected")
    root = SectionFactory(program=program, title=f"Platform{sep}## Phase 9: Smuggled (Months 1-2)")
    ItemFactory(section=root, title=f"Provision clusters{sep}- [x] Smuggled item{sep}# New program")
    text = strategy_export(program=program, by=None)

    report = strategy_import(data=text, by=None, program_key="injected-copy")

    copy = Program.objects.get(key="injected-copy")
    assert report.items.added == 1
    assert not copy.phases.exists()
    assert ChecklistItem.objects.get(program=copy).title.startswith("Provision clusters - [x] Smuggled item")
