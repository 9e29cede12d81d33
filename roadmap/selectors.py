"""Read paths shared by the admin, the API and (later) the dashboard and the PDF.

Progress is computed from leaf items only: p = Σ w·credit / Σ w with done = 1, in progress = the program's
in-progress credit, everything else 0, and not-applicable items left out. Every roll-up here runs a fixed
number of queries whatever the number of items.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from roadmap.keys import PATH_SEPARATOR
from roadmap.models import ChecklistItem, Phase, Program, Section

Status = ChecklistItem.Status
Rag = Literal["grey", "blue", "green", "amber", "red"]
ZERO = Decimal("0")


@dataclass
class Totals:
    """Sums over the applicable (not archived, not not-applicable) items of one group."""

    count: int = 0
    done: int = 0
    weight: Decimal = ZERO
    weight_done: Decimal = ZERO
    weight_in_progress: Decimal = ZERO
    blocked: int = 0
    overdue: int = 0
    overdue_blocking: int = 0

    def __iadd__(self, other: Totals) -> Totals:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class Progress:
    totals: Totals
    in_progress_credit: Decimal

    @property
    def ratio(self) -> float | None:
        """Weighted share done, 0..1; None when nothing applicable exists."""
        if not self.totals.weight:
            return None
        credited = self.totals.weight_done + self.in_progress_credit * self.totals.weight_in_progress
        return float(credited / self.totals.weight)

    @property
    def percent(self) -> int | None:
        ratio = self.ratio
        return None if ratio is None else round(ratio * 100)

    @property
    def label(self) -> str:
        """ "x of y done (p %)" — the count always accompanies the percentage."""
        percent = self.percent
        counted = f"{self.totals.done} of {self.totals.count} done"
        return counted if percent is None else f"{counted} ({percent} %)"


@dataclass
class PhaseHealth:
    phase: Phase
    progress: Progress
    expected: float | None
    rag: Rag
    reasons: list[str] = field(default_factory=list)
    forecast_end: date | None = None


def _totals_by(scope: dict[str, object], group_field: str, today: date) -> dict[int, Totals]:
    """One grouped aggregate query over the applicable items matching `scope` (lookups)."""
    overdue = Q(due_date__lt=today) & ~Q(status=Status.DONE)
    rows = (
        ChecklistItem.objects.filter(archived_at__isnull=True)
        .exclude(status=Status.NOT_APPLICABLE)
        .filter(**scope)
        .values(group_field)
        .order_by()
        .annotate(
            n_all=Count("id"),
            n_done=Count("id", filter=Q(status=Status.DONE)),
            w_all=Sum("weight"),
            w_done=Sum("weight", filter=Q(status=Status.DONE)),
            w_in_progress=Sum("weight", filter=Q(status=Status.IN_PROGRESS)),
            n_blocked=Count("id", filter=Q(status=Status.BLOCKED)),
            n_overdue=Count("id", filter=overdue),
            n_overdue_blocking=Count("id", filter=overdue & Q(blocking=True)),
        )
    )
    return {
        row[group_field]: Totals(
            count=row["n_all"],
            done=row["n_done"],
            weight=row["w_all"] or ZERO,
            weight_done=row["w_done"] or ZERO,
            weight_in_progress=row["w_in_progress"] or ZERO,
            blocked=row["n_blocked"],
            overdue=row["n_overdue"],
            overdue_blocking=row["n_overdue_blocking"],
        )
        for row in rows
    }


def program_progress(programs: Iterable[Program], *, today: date | None = None) -> dict[int, Progress]:
    programs = list(programs)
    today = today or timezone.localdate()
    totals = _totals_by({"program__in": [p.pk for p in programs]}, "program_id", today)
    return {p.pk: Progress(totals.get(p.pk, Totals()), p.in_progress_credit) for p in programs}


def section_progress(sections: Iterable[Section], *, today: date | None = None) -> dict[int, Progress]:
    """Progress of each section over its whole subtree (two queries plus one for the programs' settings)."""
    sections = list(sections)
    if not sections:
        return {}
    today = today or timezone.localdate()
    program_ids = {s.program_id for s in sections}
    tree = list(Section.objects.filter(program__in=program_ids).values_list("id", "parent_id"))
    direct = _totals_by({"program__in": program_ids}, "section_id", today)
    credit = dict(Program.objects.filter(pk__in=program_ids).values_list("pk", "in_progress_credit"))

    children: dict[int | None, list[int]] = defaultdict(list)
    for section_id, parent_id in tree:
        children[parent_id].append(section_id)
    subtree: dict[int, Totals] = {}

    def roll_up(section_id: int) -> Totals:
        if section_id not in subtree:
            total = Totals()
            total += direct.get(section_id, Totals())
            stack = list(children.get(section_id, []))
            while stack:  # iterative so a deep outline cannot exhaust the recursion limit
                child = stack.pop()
                total += direct.get(child, Totals())
                stack.extend(children.get(child, []))
            subtree[section_id] = total
        return subtree[section_id]

    return {s.pk: Progress(roll_up(s.pk), credit[s.program_id]) for s in sections}


def section_path_tuples(sections: Iterable[Section]) -> dict[int, tuple[str, ...]]:
    """(root title, …, own title) of each section, from sections already loaded (parents among them)."""
    by_id = {section.pk: section for section in sections}
    paths: dict[int, tuple[str, ...]] = {}
    for section in by_id.values():
        chain: list[Section] = []
        cursor: Section | None = section
        while cursor is not None and cursor.pk not in paths and len(chain) <= len(by_id):
            chain.append(cursor)
            cursor = by_id.get(cursor.parent_id) if cursor.parent_id else None
        prefix = paths[cursor.pk] if cursor is not None and cursor.pk in paths else ()
        for node in reversed(chain):
            prefix = (*prefix, node.title)
            paths[node.pk] = prefix
    return paths


def section_path_index(sections: Iterable[Section]) -> dict[tuple[str, ...], Section]:
    """Sections by their path, for importers matching a document's or a spreadsheet's section paths."""
    sections = list(sections)
    paths = section_path_tuples(sections)
    return {paths[section.pk]: section for section in sections}


def section_paths(program_id: int) -> dict[int, str]:
    """'Parent > Child' path of every section of a program (one query)."""
    rows = {
        pk: (parent, title)
        for pk, parent, title in Section.objects.filter(program_id=program_id).values_list(
            "pk", "parent_id", "title"
        )
    }
    paths: dict[int, str] = {}
    for pk in rows:
        parts = []
        cursor: int | None = pk
        seen = set()
        while cursor is not None and cursor not in seen:
            seen.add(cursor)
            parent, title = rows[cursor]
            parts.append(title)
            cursor = parent
        paths[pk] = PATH_SEPARATOR.join(reversed(parts))
    return paths


def expected_progress(start: date | None, end: date | None, today: date) -> float | None:
    """Elapsed share of a planned window (inclusive end day); None without a window."""
    if start is None or end is None:
        return None
    span = (end - start).days + 1
    elapsed = (today - start).days + 1
    return min(max(elapsed / span, 0.0), 1.0)


def rag_status(
    progress: Progress,
    *,
    expected: float | None,
    window_closed: bool,
    red_below: Decimal,
    amber_below: Decimal,
) -> tuple[Rag, list[str]]:
    """The RAG colour of a phase and the reasons for it (DESIGN §3)."""
    ratio = progress.ratio
    totals = progress.totals
    if ratio is None or (ratio == 0 and not expected):
        return "grey", ["not started"]
    if totals.done == totals.count:
        return "blue", ["complete"]
    reasons: list[str] = []
    if window_closed:
        reasons.append("planned end passed with work open")
    if totals.overdue_blocking:
        reasons.append(f"{totals.overdue_blocking} blocking item(s) overdue")
    pace = ratio / expected if expected else None
    if pace is not None and pace < float(red_below):
        reasons.append(f"progress at {pace:.0%} of plan")
    if reasons:
        return "red", reasons
    if pace is not None and pace < float(amber_below):
        reasons.append(f"progress at {pace:.0%} of plan")
    if totals.blocked:
        reasons.append(f"{totals.blocked} item(s) blocked")
    if reasons:
        return "amber", reasons
    return "green", ["on plan"]


def forecast_end(start: date | None, ratio: float | None, today: date) -> date | None:
    """Completion date extrapolated from the burn-up so far (linear from the planned start)."""
    if start is None or not ratio or today <= start:
        return None
    if ratio >= 1:
        return today
    elapsed = (today - start).days
    return start + timedelta(days=round(elapsed / ratio))


def phase_health(phases: Iterable[Phase], *, today: date | None = None) -> dict[int, PhaseHealth]:
    """Progress, expected progress, RAG and forecast for each phase (one aggregate query).

    Phases must come with `select_related("program")`.
    """
    phases = list(phases)
    today = today or timezone.localdate()
    totals = _totals_by({"phase__in": [p.pk for p in phases]}, "phase_id", today)
    result: dict[int, PhaseHealth] = {}
    for phase in phases:
        program = phase.program
        progress = Progress(totals.get(phase.pk, Totals()), program.in_progress_credit)
        start, end = phase.planned_start, phase.planned_end
        expected = expected_progress(start, end, today)
        window_closed = end is not None and today > end
        rag, reasons = rag_status(
            progress,
            expected=expected,
            window_closed=window_closed,
            red_below=program.rag_red_below,
            amber_below=program.rag_amber_below,
        )
        result[phase.pk] = PhaseHealth(
            phase=phase,
            progress=progress,
            expected=expected,
            rag=rag,
            reasons=reasons,
            forecast_end=forecast_end(start, progress.ratio, today),
        )
    return result
