"""What the dashboard and the admin index show about programs, in a fixed number of queries.

The dashboard sits above every other app: it reads roadmap progress, metrics evidence, governance reviews and
scorecards, and writes nothing but what their services write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone

from governance.models import ControlledDocument
from metrics.models import Evidence, Measurement
from metrics.selectors import items_with_latest_evidence
from roadmap.models import ChecklistItem, Program
from roadmap.selectors import Progress, program_progress
from scorecards.engine import MODEL_VERSION
from scorecards.models import Snapshot
from scorecards.services import end_of_day


@dataclass
class ProgramSummary:
    program: Program
    progress: Progress
    level: int | None
    score: float | None
    snapshot_on: date | None
    reviews_due: int
    stale_evidence: int

    @property
    def needs_attention(self) -> list[str]:
        totals = self.progress.totals
        notes = []
        if totals.overdue:
            notes.append(f"{totals.overdue} overdue")
        if totals.blocked:
            notes.append(f"{totals.blocked} blocked")
        if self.reviews_due:
            notes.append(f"{self.reviews_due} review{'s' if self.reviews_due > 1 else ''} due")
        if self.stale_evidence:
            notes.append(f"{self.stale_evidence} with stale evidence")
        return notes


def _counts(rows: Iterable[dict[str, int]]) -> dict[int, int]:
    return {row["program_id"]: row["count"] for row in rows}


def program_summaries(programs: Iterable[Program], *, today: date | None = None) -> list[ProgramSummary]:
    """Progress, latest maturity and what needs attention for each program (four queries in all)."""
    programs = list(programs)
    # Evidence ages by the moment: now for today's view, the end of the day for another day's.
    moment = timezone.now() if today is None else end_of_day(today)
    today = today or timezone.localdate()
    ids = [program.pk for program in programs]
    progress = program_progress(programs, today=today)
    latest = Snapshot.objects.filter(program=OuterRef("pk"), model_version=MODEL_VERSION).order_by(
        "-as_of", "-pk"
    )
    snapshots = {
        row["pk"]: row
        for row in Program.objects.filter(pk__in=ids)
        .annotate(
            level=Subquery(latest.values("level")[:1]),
            score=Subquery(latest.values("score")[:1]),
            snapshot_on=Subquery(latest.values("as_of")[:1]),
        )
        .values("pk", "level", "score", "snapshot_on")
    }
    due_by = today + timedelta(days=settings.CAIRN_REVIEW_DUE_SOON_DAYS)
    reviews = _counts(
        ControlledDocument.objects.filter(program_id__in=ids)
        .due_for_review(due_by)
        .order_by()
        .values("program_id")
        .annotate(count=Count("pk"))
    )
    items = ChecklistItem.objects.filter(program_id__in=ids, archived_at__isnull=True)
    # Evidence past its validity, whether still in its grace period (stale) or beyond it (expired).
    aged = items_with_latest_evidence(items).filter(evidence_valid_until__lt=moment)
    stale_counts = _counts(aged.order_by().values("program_id").annotate(count=Count("pk")))
    summaries = []
    for program in programs:
        row = snapshots.get(program.pk, {})
        score = row.get("score")
        summaries.append(
            ProgramSummary(
                program=program,
                progress=progress[program.pk],
                level=row.get("level"),
                score=float(score) if score is not None else None,
                snapshot_on=row.get("snapshot_on"),
                reviews_due=reviews.get(program.pk, 0),
                stale_evidence=stale_counts.get(program.pk, 0),
            )
        )
    return summaries


def program_inputs_fingerprint(program: Program) -> str:
    """A value that changes whenever one of the program's items changes or is added, or a measurement, evidence
    or snapshot is recorded for it: the dashboard's cache key. One query."""

    def latest(queryset: object, field: str = "pk") -> Subquery:
        return Subquery(queryset.order_by(f"-{field}").values(field)[:1])  # type: ignore[attr-defined]

    items = ChecklistItem.objects.filter(program=OuterRef("pk")).order_by().values("program")
    row = (
        Program.objects.filter(pk=program.pk)
        .annotate(
            items_changed=Subquery(items.annotate(changed=Max("updated_at")).values("changed")[:1]),
            items_count=Subquery(items.annotate(count=Count("pk")).values("count")[:1]),
            measurement=latest(Measurement.objects.filter(metric__program=OuterRef("pk"))),
            evidence=latest(Evidence.objects.filter(item__program=OuterRef("pk"))),
            snapshot=latest(Snapshot.objects.filter(program=OuterRef("pk"))),
        )
        .values_list("updated_at", "items_changed", "items_count", "measurement", "evidence", "snapshot")
        .get()
    )
    return ":".join(str(value) for value in row).replace(" ", "_")
