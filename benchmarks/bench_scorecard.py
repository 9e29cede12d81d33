"""The executive scorecard of a 5,000-item program against the floor: reportlab rendering its appendix alone.

Everything else the scorecard does (loading the report, the cover, charts, tables, hashing and storing the PDF)
should cost at most as much again as the one table no scorecard can do without (target: ratio <= 2).
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from benchmarks.harness import Figure, best_of, ratio
from benchmarks.programs import add_items, scored_program
from roadmap.models import ChecklistItem, Program
from scorecards import pdf, report, services
from scorecards.models import Scorecard

AS_OF = date(2026, 10, 31)


def _report_queries(program: Program, day: date) -> int:
    snapshot, _ = services.snapshot_save(program=program, day=day)
    with CaptureQueriesContext(connection) as queries:
        report.scorecard_report(program=program, snapshot=snapshot)
    return len(queries.captured_queries)


def run() -> list[Figure]:
    program = scored_program(key="bench-scorecard", title="Scorecard benchmark")
    try:
        with tempfile.TemporaryDirectory() as media, override_settings(MEDIA_ROOT=media):
            add_items(program, start=0, total=100)
            small = _report_queries(program, AS_OF - timedelta(days=1))
            add_items(program, start=100, total=5_000)
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
