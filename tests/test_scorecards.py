"""The executive scorecard PDF: what a reader finds in it, read back with a PDF text extractor, and its data."""

from __future__ import annotations

import hashlib
import io
import re
import xml.dom.minidom
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader
from reportlab.graphics import renderSVG

from governance.models import ControlledDocument, Waiver
from metrics.models import Measurement, Metric
from roadmap.models import ChecklistItem, Phase, Program
from roadmap.services import checklist_items_set_status
from scorecards import charts, pdf, report, services
from scorecards.models import Scorecard, Snapshot
from strategy.services import strategy_import
from tests.factories import ItemFactory, PhaseFactory, ProgramFactory, SectionFactory, member

pytestmark = pytest.mark.django_db

STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)
Status = ChecklistItem.Status
FONT_MARKUP = '<font color="red">&<b>'
IMAGE_MARKUP = '<img src="/etc/passwd"/>'


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def read_pdf(content: bytes) -> tuple[str, int]:
    """The document's text with whitespace runs folded to one space (cells wrap), and its page count."""
    reader = PdfReader(io.BytesIO(content))
    text = " ".join(page.extract_text() for page in reader.pages)
    return " ".join(text.split()), len(reader.pages)


def scorecard_text(scorecard: Scorecard) -> tuple[str, int]:
    return read_pdf(services.scorecard_content(scorecard=scorecard))


# --- the corpus strategy ----------------------------------------------------------------------------------


@pytest.fixture
def corpus_program() -> Program:
    strategy_import(data=STRATEGY.read_bytes(), by=None)
    return Program.objects.get()


def test_it_renders_the_corpus_strategys_scorecard(corpus_program):
    manager = member(corpus_program, "manager", "mona")
    phase_1 = ChecklistItem.objects.filter(program=corpus_program, phase__order=1)
    checklist_items_set_status(
        item_ids=list(phase_1.values_list("pk", flat=True)), status=Status.DONE, by=manager
    )

    scorecard, created = services.scorecard_generate(program=corpus_program, by=manager)

    assert created
    text, pages = scorecard_text(scorecard)
    assert pages == scorecard.pages > 1
    assert "Advanced Cloud Infrastructure Strategy" in text
    assert "LEVEL 1 Cloud Foundation" in text  # the level tile: number and name
    assert "at level 1 (Cloud Foundation)" in text  # the summary says it in words
    for phase in Phase.objects.filter(program=corpus_program):
        assert f"{phase.code} {phase.name}" in text
    assert {"Cloud Foundation", "Cloud Enhancement", "Cloud Excellence"} <= {
        phase.name for phase in Phase.objects.filter(program=corpus_program)
    }
    # The review was due in March 2025: the document control table and the summary say how late it is.
    overdue = (timezone.localdate() - date(2025, 3, 1)).days
    assert f"2025-03-01 {overdue} days" in text
    assert f"was due 2025-03-01 and is {overdue} days overdue" in text
    names = list(Metric.objects.filter(program=corpus_program).values_list("name", flat=True))
    assert len(names) == 32
    assert all(name in text for name in names)
    assert text.count("defined, not yet measurable") >= 32
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert f"inputs sha256 {scorecard.snapshot.inputs_hash}" in text
    assert f"template {pdf.TEMPLATE_VERSION}" in text
    # The appendix lists every requirement the snapshot scored.
    assert "265 requirement(s)" in text
    assert all(item.title in text for item in phase_1)


def test_the_corpus_summary_says_where_the_program_is_and_what_needs_a_decision(corpus_program):
    scorecard, _ = services.scorecard_generate(program=corpus_program)
    sentences = re.split(r"(?<=\.)\s+(?=[A-Z])", scorecard.summary)
    assert 3 <= len(sentences) <= 6, sentences
    assert sentences[0].startswith(f"As of {timezone.localdate():%d %B %Y} the program is at level 0")
    assert "first scorecard" in scorecard.summary
    assert "Needs a decision:" in scorecard.summary
    assert "16 blocking requirement(s) stand between the program and level 1" in scorecard.summary


# --- what the reader sees ---------------------------------------------------------------------------------


def test_it_prints_markup_in_user_text_literally_and_loads_nothing(team):
    program = team.program
    program.title = f"Alpha {FONT_MARKUP}"
    program.save()
    Phase.objects.filter(pk=team.phase.pk).update(name=f"Phase {IMAGE_MARKUP}")
    section = SectionFactory(
        program=program, phase=team.phase, title=f"Area {FONT_MARKUP}", is_capability_area=True
    )
    ItemFactory(section=section, title=FONT_MARKUP)
    ItemFactory(
        section=section, title=IMAGE_MARKUP, status=Status.BLOCKED, status_reason=f"because {IMAGE_MARKUP}"
    )
    Metric.objects.create(program=program, key="m", name=f"Metric {IMAGE_MARKUP}")
    ControlledDocument.objects.create(
        program=program, title=f"Policy {FONT_MARKUP}", owner=IMAGE_MARKUP, next_review_due=date(2025, 1, 1)
    )

    scorecard, _ = services.scorecard_generate(program=program)

    content = services.scorecard_content(scorecard=scorecard)
    text, _ = read_pdf(content)
    assert f"Alpha {FONT_MARKUP}" in text
    assert f"Phase {IMAGE_MARKUP}" in text
    assert FONT_MARKUP in text.replace(f"Alpha {FONT_MARKUP}", "")
    assert IMAGE_MARKUP in text
    assert f"because {IMAGE_MARKUP}" in text  # the blocked item's reason, under top risks
    assert f"Metric {IMAGE_MARKUP}" in text
    assert f"Policy {FONT_MARKUP}" in text
    assert b"/Subtype /Image" not in content  # no image was embedded, so nothing was read from disk


def test_it_renders_and_extracts_unicode_text(team):
    Program.objects.filter(pk=team.program.pk).update(title="Überprüfung – Δ ✓")
    ItemFactory(section=team.section, title="Zugriffsrechte prüfen — ≥ 99,9 % ✓")
    program = Program.objects.get(pk=team.program.pk)

    text, _ = scorecard_text(services.scorecard_generate(program=program)[0])

    assert "Überprüfung – Δ ✓" in text
    assert "Zugriffsrechte prüfen — ≥ 99,9 % ✓" in text


def test_it_renders_an_empty_program(db):
    program = ProgramFactory(key="empty", title="Nothing Yet")

    scorecard, created = services.scorecard_generate(program=program)

    text, pages = scorecard_text(scorecard)
    assert created and pages >= 2
    assert "Nothing Yet" in text
    assert "No phases defined." in text
    assert "The program defines no metrics yet." in text
    assert "The program has no requirements yet." in text
    assert "at level 0" in text


def test_it_renders_a_program_without_snapshots_by_storing_todays_first(team):
    assert not Snapshot.objects.exists()

    scorecard, _ = services.scorecard_generate(program=team.program)

    assert Snapshot.objects.get() == scorecard.snapshot
    assert scorecard.snapshot.as_of == scorecard.as_of == timezone.localdate()
    text, _ = scorecard_text(scorecard)
    assert "first scorecard" in text
    assert "1 stored snapshot(s)" in text


def test_it_renders_a_5000_item_program_with_every_item_in_the_appendix(team):
    add_items(team, 5_000)

    scorecard, _ = services.scorecard_generate(program=team.program)

    text, pages = scorecard_text(scorecard)
    assert pages > 100
    assert "5002 requirement(s)" in text  # 5,000 bulk items and the team's two
    assert "Bulk item 0 " in text and "Bulk item 4999 " in text
    assert (
        text.count("Ref or key Requirement Area Lvl State Evidence") > 100
    )  # the header repeats on each page


def test_it_shows_metrics_with_their_target_latest_value_and_status(team):
    program = team.program
    uptime = Metric.objects.create(
        program=program, key="uptime", name="Uptime", unit="%", baseline=Decimal("99"), target=Decimal("99.9")
    )
    Metric.objects.create(program=program, key="mttr", name="Time to recover", target=Decimal("30"))
    Metric.objects.create(program=program, key="nps", name="Satisfaction")
    now = timezone.now()
    for days_ago, value in ((40, "99.1"), (20, "99.5"), (2, "99.95")):
        Measurement.objects.create(
            metric=uptime, value=Decimal(value), observed_at=now - timedelta(days=days_ago)
        )
    Measurement.objects.create(
        metric=uptime, value=Decimal("1"), observed_at=now + timedelta(days=3)
    )  # future

    loaded = report.scorecard_report(
        program=program, snapshot=services.snapshot_save(program=program, day=timezone.localdate())[0]
    )

    rows = {metric.key: metric for metric in loaded.metrics}
    assert rows["uptime"].latest == Decimal("99.95")
    assert rows["uptime"].series == [99.1, 99.5, 99.95]
    assert rows["uptime"].status == "on target"
    assert rows["mttr"].status == rows["nps"].status == "defined, not yet measurable"  # no data, no target
    text, _ = read_pdf(pdf.render_scorecard(loaded).content)
    assert "Uptime ≥ 99.9 % 99.95 %" in text
    assert "Time to recover ≥ 30 — defined, not yet measurable" in text
    assert "1 of 3 metric(s) have a target and data" in text


def test_it_lists_blocked_and_overdue_items_and_waivers_in_force(team):
    as_of = timezone.localdate()
    blocked = ItemFactory(
        section=team.section,
        title="Sign the paging contract",
        status=Status.BLOCKED,
        status_reason="legal",
        due_date=as_of - timedelta(days=3),
    )
    late = ItemFactory(section=team.section, title="Patch the edge", due_date=as_of - timedelta(days=9))
    ItemFactory(
        section=team.section, title="Done late", due_date=as_of - timedelta(days=9), status=Status.DONE
    )
    Waiver.objects.create(
        program=team.program,
        item=team.unowned_item,
        type=Waiver.Type.RISK_ACCEPTED,
        reason="Vendor fix due in spring",
        requested_by=team.contributor,
        approved_by=team.manager,
        approved_at=timezone.now() - timedelta(days=1),
        expires_at=timezone.now() + timedelta(days=20, hours=1),
    )

    scorecard, _ = services.scorecard_generate(program=team.program)

    text, _ = scorecard_text(scorecard)
    # A blocked item that is late too is one risk, not two.
    blocked_row = f"Blocked {blocked.ref} Sign the paging contract legal; due {as_of - timedelta(days=3)}, 3 days overdue"
    assert blocked_row in text
    assert "Overdue " + blocked.ref not in text
    assert f"Overdue {late.ref} Patch the edge due {as_of - timedelta(days=9)}, 9 days overdue" in text
    assert "Done late" not in text.split("Top risks")[1].split("Appendix")[0]
    assert "Vendor fix due in spring" in text and "in 20 days" in text
    assert "1 blocked item(s) need unblocking" in scorecard.summary
    assert "1 waiver(s) expire within 30 days" in scorecard.summary


def test_it_shows_arrows_and_what_moved_against_the_previous_scorecard(team):
    today = timezone.localdate()
    first, _ = services.scorecard_generate(program=team.program, as_of=today - timedelta(days=1))
    checklist_items_set_status(item_ids=[team.unowned_item.pk], status=Status.DONE, by=team.manager)

    second, _ = services.scorecard_generate(program=team.program, as_of=today)

    assert second.previous == first
    text, _ = scorecard_text(second)
    assert f"compared with the scorecard of {today - timedelta(days=1):%d %B %Y}" in text
    assert "SCORE 50.0 ↑ 50.0" in text
    assert "COVERAGE 50.0 % ↑ 50.0" in text
    assert "MATURITY INDEX 0.00 → unchanged" in text  # the team's items gate no level
    assert "the score rose 50.0 points" in second.summary
    assert f"1 requirement(s) now pass, including “{team.unowned_item.title}”" in second.summary


# --- determinism ------------------------------------------------------------------------------------------


def test_rendering_the_same_snapshot_again_gives_the_same_bytes(team):
    today = timezone.localdate()
    services.scorecard_generate(program=team.program, as_of=today - timedelta(days=3))
    ItemFactory(
        section=team.section, title="Überprüfung – Δ ✓", status=Status.BLOCKED, status_reason="waiting"
    )
    scorecard, _ = services.scorecard_generate(program=team.program, as_of=today)

    again = services.scorecard_render(scorecard=scorecard)

    assert scorecard.previous is not None  # the comparison is part of what is rendered again
    assert hashlib.sha256(again).hexdigest() == scorecard.sha256
    assert again == services.scorecard_content(scorecard=scorecard)


def test_the_pdf_carries_no_wall_clock_time(team, monkeypatch):
    snapshot, _ = services.snapshot_save(program=team.program, day=date(2026, 3, 1))
    first = pdf.render_scorecard(report.scorecard_report(program=team.program, snapshot=snapshot)).content
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)  # 2033: a clock that moved on
    second = pdf.render_scorecard(report.scorecard_report(program=team.program, snapshot=snapshot)).content
    assert first == second
    assert b"2033" not in second


# --- the data behind it -----------------------------------------------------------------------------------


def add_items(team: Any, total: int) -> None:
    """Bulk items on top of the team's two, half of them done, some blocked, some overdue."""
    sections = [SectionFactory(program=team.program, phase=team.phase, parent=team.section) for _ in range(3)]
    existing = ChecklistItem.objects.filter(program=team.program, key__startswith="bulk-").count()
    done_at = datetime(2026, 3, 1, tzinfo=UTC)
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=team.program,
            section=sections[number % 3],
            phase=team.phase,
            key=f"bulk-{number}",
            ref=f"B.{number}",
            title=f"Bulk item {number}",
            level=1 + number % 3,
            owner=team.contributor if number % 5 == 0 else None,
            status=Status.DONE if number % 2 else (Status.BLOCKED if number % 7 == 0 else Status.NOT_STARTED),
            status_reason="waiting" if number % 7 == 0 and not number % 2 else "",
            due_date=date(2026, 2, 1) if number % 11 == 0 else None,
            completed_at=done_at if number % 2 else None,
            attested_at=done_at if number % 2 else None,
        )
        for number in range(existing, total)
    )


def test_the_report_loads_in_the_same_number_of_queries_for_100_or_5000_items(
    team, django_assert_num_queries
):
    program = team.program
    PhaseFactory(program=program, code="P2", order=2, start_month=7, end_month=12, target_level=2)
    for number in range(3):
        metric = Metric.objects.create(
            program=program, key=f"m{number}", name=f"M{number}", target=Decimal(10)
        )
        Measurement.objects.bulk_create(
            Measurement(
                metric=metric,
                value=Decimal(day),
                observed_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day),
            )
            for day in range(30)
        )
    ControlledDocument.objects.create(program=program, title="Strategy", next_review_due=date(2026, 1, 1))
    Waiver.objects.create(
        program=program, item=team.unowned_item, type=Waiver.Type.RISK_ACCEPTED, reason="r",
        requested_by=team.contributor, approved_by=team.manager, approved_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    add_items(team, 100)
    day = date(2026, 4, 1)
    services.snapshot_save(program=program, day=day - timedelta(days=7))
    snapshot, _ = services.snapshot_save(program=program, day=day)
    previous = Snapshot.objects.filter(program=program).order_by("as_of").first()

    with CaptureQueriesContext(connection) as small:
        loaded = report.scorecard_report(program=program, snapshot=snapshot, previous=previous)
    assert len(loaded.requirements) == 102 + 3 + 1  # items, metrics with a target, the document
    assert [len(metric.series) for metric in loaded.metrics] == [12, 12, 12]

    add_items(team, 5_000)
    snapshot = Snapshot.objects.create(
        **{
            field: getattr(snapshot, field)
            for field in (
                "program",
                "model_version",
                "inputs_hash",
                "config_hash",
                "level",
                "index",
                "score",
                "coverage",
                "freshness",
            )
        },
        as_of=day + timedelta(days=1),
        result=services.program_maturity(
            program=program, as_of=services.end_of_day(day), with_trend=False
        ).result,
    )
    with django_assert_num_queries(len(small.captured_queries)):
        loaded = report.scorecard_report(program=program, snapshot=snapshot, previous=previous)
    assert len(loaded.requirements) == 5_002 + 3 + 1
    assert len(small.captured_queries) <= 10


def test_the_appendix_shows_each_requirements_evidence(team):
    done = ItemFactory(
        section=team.section, title="Backups", status=Status.DONE, attested_by=team.manager,
        attested_at=datetime(2026, 3, 1, 12, tzinfo=UTC), completed_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
    )  # fmt: skip
    snapshot, _ = services.snapshot_save(program=team.program, day=date(2026, 3, 11))

    rows = {
        row.title: row
        for row in report.scorecard_report(program=team.program, snapshot=snapshot).requirements
    }

    backups = rows["Backups"]
    assert (backups.ident, backups.observed_on, backups.source) == (
        done.ref,
        date(2026, 3, 1),
        "attested by maria",
    )
    assert backups.state == "pass, fresh"
    assert rows[team.owned_item.title].state == "no evidence"
    assert rows[team.owned_item.title].observed_on is None


def test_it_counts_blocked_and_overdue_items_as_the_roadmap_does(team):
    as_of = date(2026, 3, 1)
    due = as_of - timedelta(days=1)
    ItemFactory(section=team.section, due_date=due)
    ItemFactory(section=team.section, due_date=due, blocking=False)
    ItemFactory(section=team.section, due_date=due, status=Status.BLOCKED, status_reason="legal")
    ItemFactory(section=team.section, status=Status.BLOCKED, status_reason="vendor", blocking=False)
    ItemFactory(section=team.section, due_date=as_of)  # due today: not late yet
    ItemFactory(section=team.section, due_date=due, status=Status.DONE)
    ItemFactory(section=team.section, due_date=due, status=Status.NOT_APPLICABLE, status_reason="n/a")
    ItemFactory(
        section=team.section, due_date=due, status=Status.BLOCKED, status_reason="old",
        archived_at=datetime(2026, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    snapshot, _ = services.snapshot_save(program=team.program, day=as_of)

    loaded = report.scorecard_report(program=team.program, snapshot=snapshot)

    assert (loaded.blocked, loaded.overdue, loaded.overdue_blocking) == (2, 3, 2)
    assert "3 item(s) are past their due date (2 blocking)" in " ".join(loaded.summary)


# --- what the PDF and the dashboard share -----------------------------------------------------------------


def test_the_phase_strip_and_area_rows_are_what_the_pdf_draws(team):
    PhaseFactory(program=team.program, code="P2", name="Later", order=1000, start_month=None, end_month=None)
    PhaseFactory(program=team.program, code="P3", name="Scale", order=1001, start_month=7, end_month=12)
    snapshot, _ = services.snapshot_save(program=team.program, day=date(2026, 3, 1))
    loaded = report.scorecard_report(program=team.program, snapshot=snapshot)
    loaded.phases[2] = replace(loaded.phases[2], forecast_end=date(2027, 2, 15))

    strip = report.phase_strip_rows(loaded)

    assert [(row["code"], row["note"]) for row in strip] == [
        ("P1", "planned end 30 Jun 2026"),
        ("P2", "no window set"),
        ("P3", "forecast 15 Feb 2027"),
    ]
    assert strip[0] == {
        "code": "P1",
        "name": team.phase.name,
        "rag": loaded.phases[0].rag,
        "progress": "0 of 2 done (0 %)",
        "note": "planned end 30 Jun 2026",
    }
    assert report.area_rows(loaded) == [("Foundations · L0", 0.0)]
    text, _ = read_pdf(pdf.render_scorecard(loaded).content)
    assert "forecast 15 Feb 2027" in text and "Foundations · L0" in text


@pytest.mark.parametrize(
    ("now", "before", "digits", "expected"),
    [
        (54.24, 50.0, 1, ("up", "+4.2")),
        (45.8, 50.0, 1, ("down", "-4.2")),
        (50.04, 50.0, 1, ("flat", "0.0")),
        (49.96, 50.0, 1, ("flat", "0.0")),  # rounds to -0.0: still flat, and no minus sign
        (2, 1, 0, ("up", "+1")),
        (1.5, 1.25, 2, ("up", "+0.25")),
        (None, 50.0, 1, None),
        (50.0, None, 1, None),
    ],
)
def test_change_says_which_way_a_figure_moved_and_by_how_much(now, before, digits, expected):
    assert report.change(now, before, digits) == expected


# --- charts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "drawing",
    [
        pytest.param(lambda: charts.area_chart([("Reliability <&>", 83.3), ("Docs", None)]), id="areas"),
        pytest.param(lambda: charts.area_chart([]), id="no-areas"),
        pytest.param(
            lambda: charts.trend_chart([(date(2026, 1, 1), 10.0), (date(2026, 3, 1), 55.5)]), id="trend"
        ),
        pytest.param(lambda: charts.trend_chart([(date(2026, 1, 1), None)]), id="no-trend"),
        pytest.param(lambda: charts.sparkline([1.0, 3.0, 2.0]), id="sparkline"),
        pytest.param(lambda: charts.sparkline([]), id="no-sparkline"),
        pytest.param(
            lambda: charts.phase_strip(
                [{"code": "P1", "name": "Landing <zone>", "rag": "red", "note": "late"}]
            ),
            id="phases",
        ),
    ],
)
def test_every_chart_renders_to_svg_for_the_dashboard(drawing):
    svg = renderSVG.drawToString(drawing())
    # Well-formed: text like "<&>" is escaped, not markup (our own output, so the stdlib parser is fine).
    document = xml.dom.minidom.parseString(svg)  # noqa: S318
    assert document.documentElement.tagName == "svg"


def test_the_charts_draw_what_they_are_given():
    svg = renderSVG.drawToString(charts.area_chart([("Reliability <&>", 83.3), ("Docs", None)]))
    assert "Reliability &lt;&amp;&gt;" in svg
    assert "83.3" in svg and "—" in svg
    strip = renderSVG.drawToString(charts.phase_strip([{"code": "P1", "name": "Landing", "rag": "amber"}]))
    assert "P1 · AMBER" in strip
    assert charts.score_colour(39.9) == charts.RAG_COLOURS["red"]
    assert charts.score_colour(70) == charts.RAG_COLOURS["green"]
