"""The maturity engine: how evaluation time grows from 1,000 to 10,000 to 100,000 requirements (linear is 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from benchmarks.harness import Figure, best_of, ratio
from roadmap.models import ChecklistItem, Program, Section
from scorecards.engine import evaluate
from scorecards.selectors import maturity_input

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)


def synthetic_input(count: int) -> dict[str, Any]:
    """Requirements of every kind the engine reads: pass/fail, metrics, stale evidence, waivers, unlevelled."""
    requirements = []
    for index in range(count):
        requirement: dict[str, Any] = {
            "id": f"R{index}",
            "area": f"Area {index % 12}",
            "level": (index % 4) or None,
            "weight": 1 + index % 5,
            "valid_for_days": 30,
            "grace_days": 30,
        }
        age = timedelta(days=index % 70)
        if index % 7 == 0:
            requirement["metric"] = {"baseline": 0.5, "target": 0.9, "direction": "higher"}
            requirement["evidence"] = {
                "observed_at": (AS_OF - age).isoformat(),
                "value": 0.5 + (index % 5) / 10,
            }
        elif index % 11 != 0:
            requirement["evidence"] = {"observed_at": (AS_OF - age).isoformat(), "passed": index % 3 != 0}
        if index % 97 == 0:
            requirement["waiver"] = {"type": "risk_accepted", "expires_at": "2027-06-01T00:00:00+00:00"}
        requirements.append(requirement)
    levels = [{"level": 1, "name": "One"}, {"level": 2, "name": "Two"}, {"level": 3, "name": "Three"}]
    return {"as_of": AS_OF.isoformat(), "waiver_budget": 0.2, "levels": levels, "requirements": requirements}


def _queries_for_items(program: Program, section: Section, total: int) -> int:
    existing = ChecklistItem.objects.filter(program=program).count()
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program, section=section, key=f"k{index}", title=f"Item {index}", level=1 + index % 3
        )
        for index in range(existing, total)
    )
    with CaptureQueriesContext(connection) as queries:
        maturity_input(program, AS_OF)
    return len(queries.captured_queries)


def run() -> list[Figure]:
    program = Program.objects.create(key="bench-engine", title="Engine")
    section = Section.objects.create(program=program, title="All", is_capability_area=True)
    try:
        small, large = _queries_for_items(program, section, 100), _queries_for_items(program, section, 5_000)
    finally:
        ChecklistItem.objects.filter(program=program).delete()  # items protect their sections
        program.delete()

    sizes = {count: synthetic_input(count) for count in (1_000, 10_000, 100_000)}
    times = {
        1_000: best_of(lambda: evaluate(sizes[1_000]), repeat=7),
        10_000: best_of(lambda: evaluate(sizes[10_000]), repeat=3),
        100_000: best_of(lambda: evaluate(sizes[100_000]), repeat=2),
    }
    return [
        # Building the engine's input from the database: the same queries for 5,000 items as for 100.
        Figure("engine_db_input_queries_5000_vs_100_items", ratio(large, small), "<=", 1),
        Figure("engine_10x_requirements_cost_1k_to_10k", ratio(times[10_000], times[1_000]), "<=", 12),
        Figure("engine_10x_requirements_cost_10k_to_100k", ratio(times[100_000], times[10_000]), "<=", 12),
    ]
