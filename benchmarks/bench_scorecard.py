"""The executive scorecard of a 5,000-item program against the floor: reportlab rendering its appendix alone.

Everything else the scorecard does (loading the report, the cover, charts, tables, hashing and storing the PDF)
should cost at most as much again as the one table no scorecard can do without (target: ratio <= 2).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from benchmarks.harness import Figure, best_of, ratio
from governance.models import ControlledDocument
from metrics.models import Measurement, Metric
from roadmap.models import ChecklistItem, Phase, Program, Section
from scorecards import pdf, report, services
from scorecards.models import Scorecard

AS_OF = date(2026, 10, 31)


def _program() -> Program:
    program = Program.objects.create(
        key="bench-scorecard", title="Scorecard benchmark", start_date=date(2026, 1, 1)
    )
    phases = [
        Phase.objects.create(program=program, order=n, code=f"P{n}", name=f"Phase {n}", start_month=6 * n - 5,
                             end_month=6 * n, target_level=n)
        for n in (1, 2, 3)
    ]  # fmt: skip
    for n in range(8):
        Section.objects.create(
            program=program, title=f"Area {n}", is_capability_area=True, phase=phases[n % 3]
        )
    for number in range(10):
        metric = Metric.objects.create(
            program=program,
            key=f"m{number}",
            name=f"Metric {number}",
            baseline=Decimal(0),
            target=Decimal(100),
        )
        Measurement.objects.bulk_create(
            Measurement(metric=metric, value=Decimal(day), observed_at=datetime(2026, 6, 1, tzinfo=UTC) + timedelta(days=day))
            for day in range(60)
        )  # fmt: skip
    ControlledDocument.objects.create(program=program, title="Strategy", next_review_due=date(2026, 3, 1))
    return program


def _items(program: Program, start: int, total: int) -> None:
    sections = list(Section.objects.filter(program=program))
    done_at = datetime(2026, 9, 1, tzinfo=UTC)
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program,
            section=sections[number % len(sections)],
            phase=sections[number % len(sections)].phase,
            key=f"item-{number}",
            ref=f"R.{number}",
            title=f"Requirement {number}: keep the evidence for this control current and reviewed",
            level=1 + number % 3,
            status=ChecklistItem.Status.DONE if number % 3 else ChecklistItem.Status.NOT_STARTED,
            completed_at=done_at if number % 3 else None,
            attested_at=done_at if number % 3 else None,
            due_date=date(2026, 10, 1) if number % 13 == 0 else None,
        )
        for number in range(start, total)
    )


def _report_queries(program: Program, day: date) -> int:
    snapshot, _ = services.snapshot_save(program=program, day=day)
    with CaptureQueriesContext(connection) as queries:
        report.scorecard_report(program=program, snapshot=snapshot)
    return len(queries.captured_queries)


def run() -> list[Figure]:
    program = _program()
    try:
        with tempfile.TemporaryDirectory() as media, override_settings(MEDIA_ROOT=media):
            _items(program, 0, 100)
            small = _report_queries(program, AS_OF - timedelta(days=1))
            _items(program, 100, 5_000)
            large = _report_queries(program, AS_OF)
            snapshot, _ = services.snapshot_save(program=program, day=AS_OF)
            rows = report.scorecard_report(program=program, snapshot=snapshot).requirements
            assert len(rows) == 5_000 + 10 + 1

            def forget() -> None:
                for scorecard in Scorecard.objects.filter(program=program):
                    scorecard.pdf.delete(save=False)
                Scorecard.objects.filter(program=program).delete()

            def generate() -> None:
                _, created = services.scorecard_generate(program=program, as_of=AS_OF)
                assert created

            floor = best_of(lambda: pdf.render_appendix_alone(rows), repeat=2)
            scorecard = best_of(generate, setup=forget, repeat=2)
            forget()
    finally:
        ChecklistItem.objects.filter(program=program).delete()  # items protect their sections
        Scorecard.objects.filter(program=program).delete()  # scorecards protect their snapshots
        program.delete()
    return [
        Figure("scorecard_5000_items_vs_appendix_alone", ratio(scorecard, floor), "<=", 2),
        # Loading a scorecard's data: the same queries for 5,000 items as for 100.
        Figure("scorecard_report_queries_5000_vs_100_items", ratio(large, small), "<=", 1),
    ]
