"""Maturity of a program: evaluate now, keep daily snapshots, read trends and phase status from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from roadmap.models import Program
from scorecards import engine
from scorecards.models import Snapshot
from scorecards.selectors import maturity_input

TREND_DAYS = (7, 30, 90)
WEEKS_FOR_SLOPE = 8


@dataclass
class Maturity:
    """The engine's result for a program, with what the database adds around it."""

    result: dict[str, Any]
    config_hash: str
    not_measurable: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    trend: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "not_measurable": self.not_measurable,
            "phases": self.phases,
            "trend": self.trend,
        }


def end_of_day(day: date) -> datetime:
    """A snapshot dated `day` describes the program at the end of that day (UTC)."""
    return datetime.combine(day, time.max, tzinfo=UTC).replace(microsecond=0)


def program_maturity(*, program: Program, as_of: datetime | None = None, with_trend: bool = True) -> Maturity:
    as_of = as_of or timezone.now()
    built = maturity_input(program, as_of)
    result = engine.evaluate(built.data)
    maturity = Maturity(result=result, config_hash=built.config_hash, not_measurable=built.not_measurable)
    maturity.phases = phase_status(program, index=Decimal(str(result["index"])), today=as_of.date())
    if with_trend:
        maturity.trend = trend(program, result, as_of.date())
    return maturity


def snapshot_save(*, program: Program, day: date) -> tuple[Snapshot, bool]:
    """The program's snapshot for `day`, written once: a retry or a second run returns the stored one."""
    existing = Snapshot.objects.filter(program=program, as_of=day, model_version=engine.MODEL_VERSION).first()
    if existing is not None:
        return existing, False
    maturity = program_maturity(program=program, as_of=end_of_day(day), with_trend=False)
    result = maturity.result
    try:
        with transaction.atomic():
            snapshot = Snapshot.objects.create(
                program=program,
                as_of=day,
                model_version=engine.MODEL_VERSION,
                inputs_hash=result["inputs_hash"],
                config_hash=maturity.config_hash,
                level=result["level"],
                index=Decimal(str(result["index"])),
                score=_decimal(result["score"]),
                coverage=_decimal(result["coverage"]),
                freshness=_decimal(result["freshness"]),
                result=result,
            )
    except IntegrityError:  # another worker wrote it between our read and our insert
        return Snapshot.objects.get(program=program, as_of=day, model_version=engine.MODEL_VERSION), False
    return snapshot, True


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def phase_status(program: Program, *, index: Decimal, today: date) -> list[dict[str, Any]]:
    """Each phase against plan: the planned index rises linearly over the window toward the phase's target."""
    rows = []
    previous_target = 0
    for phase in program.phases.all().order_by("order"):
        target = phase.target_level
        start, end = phase.planned_start, phase.planned_end
        row: dict[str, Any] = {
            "code": phase.code,
            "name": phase.name,
            "target_level": target,
            "planned_start": start.isoformat() if start else None,
            "planned_end": end.isoformat() if end else None,
            "planned_index": None,
            "status": "grey",
        }
        if target is not None and start is not None and end is not None:
            if today < start:
                elapsed = Decimal(0)
            elif today >= end:
                elapsed = Decimal(1)
            else:
                elapsed = Decimal((today - start).days) / Decimal(max((end - start).days, 1))
            planned = Decimal(previous_target) + (Decimal(target) - previous_target) * elapsed
            row["planned_index"] = float(planned.quantize(Decimal("0.01")))
            if today > end and index < target:
                row["status"] = "red"
            elif index >= planned:
                row["status"] = "green"
            elif index >= planned - Decimal("0.5"):
                row["status"] = "amber"
            else:
                row["status"] = "red"
            previous_target = target
        rows.append(row)
    return rows


def trend(program: Program, current: dict[str, Any], today: date) -> dict[str, Any]:
    """ΔS over 7/30/90 days, the weekly slope, a regression flag and the requirements behind a level change."""
    history = list(
        Snapshot.objects.filter(
            program=program,
            model_version=engine.MODEL_VERSION,
            as_of__lt=today,
            as_of__gte=today - timedelta(days=120),
        ).order_by("-as_of")
    )

    def on_or_before(day: date) -> Snapshot | None:
        return next((snapshot for snapshot in history if snapshot.as_of <= day), None)

    score = current["score"]
    deltas: dict[str, float | None] = {}
    for days in TREND_DAYS:
        past = on_or_before(today - timedelta(days=days))
        deltas[f"{days}d"] = (
            round(score - float(past.score), 2)
            if past is not None and past.score is not None and score is not None
            else None
        )
    weekly = []
    for week in range(WEEKS_FOR_SLOPE - 1, 0, -1):
        past = on_or_before(today - timedelta(days=7 * week))
        if past is not None and past.score is not None:
            weekly.append((-week, float(past.score)))
    if score is not None:
        weekly.append((0, score))
    slope = _slope(weekly) if len(weekly) >= 2 else None
    week_ago = on_or_before(today - timedelta(days=7))
    reasons = []
    if week_ago is not None:
        if score is not None and week_ago.score is not None and score <= float(week_ago.score) - 5:
            reasons.append(f"score fell {float(week_ago.score) - score:.2f} points in 7 days")
        if current["level"] < week_ago.level:
            reasons.append(f"level fell from {week_ago.level} to {current['level']}")
        coverage = current["coverage"]
        if (
            coverage is not None
            and week_ago.coverage is not None
            and coverage <= float(week_ago.coverage) - 10
        ):
            reasons.append(f"coverage fell {float(week_ago.coverage) - coverage:.2f} points in 7 days")
    changed_at = next((snapshot for snapshot in history if snapshot.level != current["level"]), None)
    flipped = []
    if changed_at is not None:
        before = {row["id"]: row.get("gate") for row in changed_at.result.get("requirements", [])}
        flipped = [
            {"id": row["id"], "gate_before": before.get(row["id"]), "gate_now": row.get("gate")}
            for row in current["requirements"]
            if before.get(row["id"]) != row.get("gate")
        ]
    return {
        "delta_score": deltas,
        "weekly_slope": slope,
        "regression": bool(reasons),
        "regression_reasons": reasons,
        "level_changed_from": changed_at.level if changed_at is not None else None,
        "level_changed_on": changed_at.as_of.isoformat() if changed_at is not None else None,
        "flipped_requirements": flipped,
    }


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope, score points per week."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return 0.0
    return round(sum((x - mean_x) * (y - mean_y) for x, y in points) / spread, 2)
