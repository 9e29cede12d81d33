"""A program shaped like a real one (three phases, eight capability areas, ten metrics with two months of values, a
controlled document) and its items, for the benchmarks that score, render or serve a whole program."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from governance.models import ControlledDocument
from metrics.models import Measurement, Metric
from roadmap.models import ChecklistItem, Phase, Program, Section


def scored_program(*, key: str, title: str) -> Program:
    program = Program.objects.create(key=key, title=title, start_date=date(2026, 1, 1))
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


def add_items(program: Program, *, start: int, total: int, owner: Any = None) -> None:
    """Items `start` … `total - 1`: two in three done, every 13th due on 1 October, every 4th owned by `owner`."""
    sections = list(Section.objects.filter(program=program))
    done_at = datetime(2026, 9, 1, tzinfo=UTC)
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program,
            section=sections[number % len(sections)],
            phase=sections[number % len(sections)].phase,
            key=f"item-{number}",
            ref=f"R.{number}",
            order=number,
            title=f"Requirement {number}: keep the evidence for this control current and reviewed",
            description="Collect the evidence, review it and attest it before the due date.",
            level=1 + number % 3,
            owner=owner if number % 4 == 0 else None,
            status=ChecklistItem.Status.DONE if number % 3 else ChecklistItem.Status.NOT_STARTED,
            completed_at=done_at if number % 3 else None,
            attested_at=done_at if number % 3 else None,
            due_date=date(2026, 10, 1) if number % 13 == 0 else None,
        )
        for number in range(start, total)
    )
