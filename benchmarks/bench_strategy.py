"""Strategy documents: importing 10,000 items against a plain bulk_create of the same rows, and how parsing scales.

The synthetic document has the corpus strategy's shape (phases, bold groups, numbered groups of tasks and
practices, metrics) but is generated here, so sizes can grow without copying anyone's text.
"""

from __future__ import annotations

from django.db import transaction

from benchmarks.harness import Figure, best_of, ratio
from roadmap.models import ChecklistItem, Program, Section
from strategy.parser import parse_strategy
from strategy.services import strategy_import

GROUP_SIZE = 10
UNLIMITED = 1 << 40


def synthetic_strategy(items: int) -> str:
    """A document with `items` checklist items: a third in phases, the rest in capability groups."""
    lines = ["# Synthetic Strategy", "", "**Document Version:** 1.0  ", "", "## Roadmap", ""]
    groups = items // GROUP_SIZE
    phase_groups = groups // 3
    for group in range(phase_groups):
        if group % 10 == 0:
            number = group // 10 + 1
            lines += [
                f"### Phase {number}: Stage {number} (Months {number}-{number + 1})",
                "**Objectives:** Grow",
                "",
            ]
        lines.append(f"**Group {group}:**")
        lines += [f"- [ ] Task {group}.{index} to deliver" for index in range(GROUP_SIZE)]
        lines.append("")
    lines += ["## Capabilities", ""]
    for group in range(phase_groups, groups):
        if group % 10 == 0:
            lines += [f"### Area {group // 10}", ""]
        lines.append(f"{group % 10 + 1}. **Capability {group}**")
        lines += [f"   - [ ] Capability task {group}.{index}" for index in range(GROUP_SIZE)]
        lines.append("")
    lines += [
        "## Metrics",
        "",
        "1. **Service**",
        "   - **Availability:** Uptime",
        "",
        "---",
        "",
        "**Document Control:**",
    ]
    lines += ["- **Owner:** Platform lead", "- **Approver:** CTO", ""]
    return "\n".join(lines)


def _bulk_create_baseline(items: int) -> float:
    """The same rows written the cheapest way Django can: one section, one bulk_create of the items."""
    program = Program.objects.create(key="bench-baseline", title="Baseline")
    section = Section.objects.create(program=program, title="All")
    rows = [
        ChecklistItem(
            program=program, section=section, key=f"task-{index}", title=f"Task {index}", order=index
        )
        for index in range(items)
    ]

    def insert() -> None:
        with transaction.atomic():
            ChecklistItem.objects.bulk_create(rows, batch_size=500)
            transaction.set_rollback(True)

    try:
        return best_of(insert, repeat=3)
    finally:
        program.delete()


def _import(text: str, key: str) -> float:
    def run() -> None:
        with transaction.atomic():
            strategy_import(data=text, by=None, program_key=key)
            transaction.set_rollback(True)

    return best_of(run, repeat=3)


def run() -> list[Figure]:
    small, large = synthetic_strategy(1_000), synthetic_strategy(10_000)
    assert len(parse_strategy(large, max_bytes=UNLIMITED).items) == 10_000

    # More repeats for the short run: its minimum is the one most easily disturbed by a busy machine.
    parse_small = best_of(lambda: parse_strategy(small, max_bytes=UNLIMITED), repeat=15)
    parse_large = best_of(lambda: parse_strategy(large, max_bytes=UNLIMITED), repeat=5)
    import_small = _import(small, "bench-small")
    import_large = _import(large, "bench-large")
    baseline = _bulk_create_baseline(10_000)
    return [
        # Parsing is linear: ten times the items may cost at most twelve times the time.
        Figure("strategy_parse_10x_items_cost", ratio(parse_large, parse_small), "<=", 12),
        Figure("strategy_import_10x_items_cost", ratio(import_large, import_small), "<=", 12),
        # A full import (parse, sections, items with history, document) against inserting the bare rows.
        Figure("strategy_import_10k_vs_bulk_create", ratio(baseline, import_large), ">=", 0.1),
    ]
