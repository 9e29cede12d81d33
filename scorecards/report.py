"""Everything an executive scorecard shows, loaded in a fixed number of queries whatever the program's size.

The numbers come from the stored snapshot (level, index, scores, every requirement's state); the rest is read as
of the snapshot's date: phase progress and forecasts, metrics with the measurements observed by then, controlled
documents and their review dates, the waivers in force, and the items behind the top risks. The result is plain
data (`ScorecardReport`), so the PDF, the e-mail and a dashboard render the same facts the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery

from governance.models import ControlledDocument, DocumentVersion
from governance.waivers import waivers_in_force
from metrics.models import Evidence, Metric
from metrics.selectors import items_with_latest_evidence, measurement_series
from roadmap.models import ChecklistItem, Phase, Program
from roadmap.selectors import phase_health, program_progress
from scorecards import services  # services imports this module and the PDF's lazily, so no import cycle
from scorecards.models import Snapshot
from scorecards.summary import executive_summary

SPARKLINE_POINTS = 12
TREND_DAYS = 365
Status = ChecklistItem.Status
OPEN_STATUSES = (Status.NOT_STARTED, Status.IN_PROGRESS, Status.BLOCKED)


@dataclass(frozen=True)
class Figures:
    """The headline numbers of one snapshot."""

    as_of: date
    level: int
    level_name: str
    level_waived: bool
    index: float
    score: float | None
    coverage: float | None
    freshness: float | None

    @classmethod
    def of(cls, snapshot: Snapshot, program: Program) -> Figures:
        result = snapshot.result
        return cls(
            as_of=snapshot.as_of,
            level=snapshot.level,
            level_name=result.get("level_name") or program.level_name(snapshot.level),
            level_waived=bool(result.get("level_waived")),
            index=float(snapshot.index),
            score=_float(snapshot.score),
            coverage=_float(snapshot.coverage),
            freshness=_float(snapshot.freshness),
        )


@dataclass(frozen=True)
class PhaseRow:
    code: str
    name: str
    window: str
    planned_start: date | None
    planned_end: date | None
    target_level: int | None
    progress_label: str
    progress_percent: int | None
    expected_percent: int | None
    rag: str
    reasons: list[str]
    forecast_end: date | None
    planned_index: float | None
    plan_status: str  # the maturity index against the phase's planned index: green, amber, red or grey


@dataclass(frozen=True)
class MetricRow:
    key: str
    name: str
    unit: str
    direction: str
    baseline: Decimal | None
    target: Decimal | None
    latest: Decimal | None
    observed_at: datetime | None
    status: str
    measurable: bool
    series: list[float]


@dataclass(frozen=True)
class DocumentRow:
    title: str
    doc_id: str
    version: str
    owner: str
    approver: str
    last_review: str
    next_review: str
    next_review_due: date | None
    days_overdue: int | None  # > 0 when the review date has passed


@dataclass(frozen=True)
class WaiverRow:
    requirement: str
    type: str
    reason: str
    requested_by: str
    approved_by: str
    expires_on: date
    days_left: int


@dataclass(frozen=True)
class RiskRow:
    kind: str  # blocked | overdue | failing | stale | review
    requirement: str
    detail: str
    owner: str
    blocking: bool


@dataclass(frozen=True)
class RequirementRow:
    ident: str
    title: str
    area: str
    level: int | None
    state: str
    gate: int | None
    observed_on: date | None
    age_days: float | None
    source: str


@dataclass
class ScorecardReport:
    program_key: str
    program_title: str
    program_subtitle: str
    as_of: date
    period: str
    model_version: str
    inputs_hash: str
    levels: list[dict[str, Any]]
    current: Figures
    previous: Figures | None
    next_level: int
    next_level_name: str
    next_level_progress: float
    blocking_next_level: int
    areas: list[tuple[str, float | None, int]]
    trend: list[tuple[date, float | None]]
    phases: list[PhaseRow]
    metrics: list[MetricRow]
    documents: list[DocumentRow]
    waivers: list[WaiverRow]
    risks: list[RiskRow]
    risks_total: int
    requirements: list[RequirementRow]
    improved: list[str] = field(default_factory=list)
    slipped: list[str] = field(default_factory=list)
    blocked: int = 0
    overdue: int = 0
    overdue_blocking: int = 0
    summary: list[str] = field(default_factory=list)


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def scorecard_report(
    *, program: Program, snapshot: Snapshot, previous: Snapshot | None = None, period: str = ""
) -> ScorecardReport:
    """The scorecard's content for `snapshot`, compared with `previous` (the snapshot of the scorecard before)."""
    as_of = snapshot.as_of
    moment = services.end_of_day(as_of)
    result = snapshot.result
    rows = result.get("requirements", [])

    items = _items(program, moment)
    phases = _phases(program, as_of, Decimal(str(snapshot.index)))
    metrics = _metrics(program, moment, rows)
    documents = _documents(program, as_of)
    waivers = _waivers(program, moment)
    requirements = _requirements(rows, items, metrics, moment)
    risks = _risks(rows, items, documents, as_of)

    current = Figures.of(snapshot, program)
    previous_figures = Figures.of(previous, program) if previous is not None else None
    improved, slipped = _flipped(previous.result.get("requirements", []) if previous else [], rows)
    next_level = int(result.get("next_level", current.level))
    # Blocked and overdue as the roadmap counts them: applicable items, overdue when due before as_of and not done.
    totals = program_progress([program], today=as_of)[program.pk].totals
    report = ScorecardReport(
        program_key=program.key,
        program_title=program.title,
        program_subtitle=program.subtitle,
        as_of=as_of,
        period=period,
        model_version=snapshot.model_version,
        inputs_hash=snapshot.inputs_hash,
        levels=list(program.levels or []),
        current=current,
        previous=previous_figures,
        next_level=next_level,
        next_level_name=program.level_name(next_level),
        next_level_progress=float(result.get("next_level_progress") or 0),
        blocking_next_level=len(result.get("blocking_next_level", [])),
        areas=[
            (name, figures.get("score"), figures.get("level", 0))
            for name, figures in sorted(result.get("areas", {}).items())
        ],
        trend=_trend(program, snapshot),
        phases=phases,
        metrics=metrics,
        documents=documents,
        waivers=waivers,
        risks=risks[: settings.CAIRN_SCORECARD_TOP_RISKS],
        risks_total=len(risks),
        requirements=requirements,
        improved=improved,
        slipped=slipped,
        blocked=totals.blocked,
        overdue=totals.overdue,
        overdue_blocking=totals.overdue_blocking,
    )
    report.summary = executive_summary(report)
    return report


# --- shared by the PDF and the dashboard: the same facts in the same words ----------------------------------


def show_date(value: date | None, empty: str = "—") -> str:
    """A date as the scorecard prints it: 01 Dec 2026."""
    return value.strftime("%d %b %Y") if value else empty


def phase_strip_rows(report: ScorecardReport) -> list[dict[str, str]]:
    """The phases as `charts.phase_strip` takes them: code, name, RAG colour, progress and a note (the forecast
    end, else the planned end, else the window)."""
    return [
        {
            "code": phase.code,
            "name": phase.name,
            "rag": phase.rag,
            "progress": phase.progress_label,
            "note": _phase_note(phase),
        }
        for phase in report.phases
    ]


def _phase_note(phase: PhaseRow) -> str:
    if phase.forecast_end:
        return f"forecast {show_date(phase.forecast_end)}"
    if phase.planned_end:
        return f"planned end {show_date(phase.planned_end)}"
    return phase.window or "no window set"


def area_rows(report: ScorecardReport) -> list[tuple[str, float | None]]:
    """The capability areas as `charts.area_chart` takes them: ("name · L<level>", score), in the report's order."""
    return [(f"{name} · L{level}", score) for name, score, level in report.areas]


def change(now: float | None, before: float | None, digits: int) -> tuple[str, str] | None:
    """How a figure moved since the previous scorecard, rounded to `digits`: ("up", "+4.2"), ("down", "-4.2") or
    ("flat", "0.0"); None when either figure is missing."""
    if now is None or before is None:
        return None
    delta = round(now - before, digits)
    if delta > 0:
        return "up", f"{delta:+.{digits}f}"
    if delta < 0:
        return "down", f"{delta:+.{digits}f}"
    return "flat", f"{0:.{digits}f}"  # never "-0.0"


# --- loading (one query each) ------------------------------------------------------------------------------


def _items(program: Program, moment: datetime) -> dict[str, dict[str, Any]]:
    """Every item of the program by key, with its newest evidence observed by `moment` and the collection run
    behind that evidence (none when a person recorded it)."""
    # The same newest evidence as the selector's (same filter, same order), for the one field it leaves out.
    latest_run = Evidence.objects.filter(item=OuterRef("pk"), observed_at__lte=moment).order_by(
        "-observed_at", "-pk"
    )
    rows = (
        items_with_latest_evidence(ChecklistItem.objects.filter(program=program), moment)
        .annotate(evidence_run=Subquery(latest_run.values("run_id")[:1]))
        .order_by()
        .values(
            "key", "ref", "title", "status", "status_reason", "due_date", "blocking", "archived_at",
            "attested_at", "completed_at", "owner__username", "attested_by__username", "evidence_kind",
            "evidence_observed_at", "evidence_run",
        )
    )  # fmt: skip
    return {row["key"]: row for row in rows}


def _phases(program: Program, as_of: date, index: Decimal) -> list[PhaseRow]:
    phases = list(Phase.objects.filter(program=program).select_related("program").order_by("order", "pk"))
    health = phase_health(phases, today=as_of)
    plan = {
        row["code"]: row for row in services.phase_status(program, index=index, today=as_of, phases=phases)
    }
    rows = []
    for phase in phases:
        entry = health[phase.pk]
        planned = plan.get(phase.code, {})
        rows.append(
            PhaseRow(
                code=phase.code,
                name=phase.name,
                window=phase.window_label,
                planned_start=phase.planned_start,
                planned_end=phase.planned_end,
                target_level=phase.target_level,
                progress_label=entry.progress.label,
                progress_percent=entry.progress.percent,
                expected_percent=None if entry.expected is None else round(entry.expected * 100),
                rag=entry.rag,
                reasons=entry.reasons,
                forecast_end=entry.forecast_end,
                planned_index=planned.get("planned_index"),
                plan_status=planned.get("status", "grey"),
            )
        )
    return rows


def _trend(program: Program, snapshot: Snapshot) -> list[tuple[date, float | None]]:
    """The program's stored scores over the year up to the snapshot (same model version), oldest first."""
    rows = Snapshot.objects.filter(
        program=program,
        model_version=snapshot.model_version,
        as_of__lte=snapshot.as_of,
        as_of__gt=snapshot.as_of - timedelta(days=TREND_DAYS),
    ).order_by("as_of")
    return [(day, _float(score)) for day, score in rows.values_list("as_of", "score")]


def _metrics(program: Program, moment: datetime, rows: list[dict[str, Any]]) -> list[MetricRow]:
    metrics = list(
        Metric.objects.filter(program=program, archived_at__isnull=True)
        .order_by("order", "pk")
        .values("pk", "key", "name", "unit", "direction", "baseline", "target")
    )
    series = measurement_series([metric["pk"] for metric in metrics], limit=SPARKLINE_POINTS, as_of=moment)
    by_id = {row["id"]: row for row in rows if row["id"].startswith("metric:")}
    result = []
    for metric in metrics:
        points = series[metric["pk"]]
        latest, observed_at = (points[-1].value, points[-1].observed_at) if points else (None, None)
        row = by_id.get(f"metric:{metric['key']}")
        measurable = metric["target"] is not None and latest is not None
        result.append(
            MetricRow(
                key=metric["key"],
                name=metric["name"],
                unit=metric["unit"],
                direction=metric["direction"],
                baseline=metric["baseline"],
                target=metric["target"],
                latest=latest,
                observed_at=observed_at,
                status=_metric_status(metric, latest, row) if measurable else "defined, not yet measurable",
                measurable=measurable,
                series=[float(point.value) for point in points],
            )
        )
    return result


def _metric_status(metric: dict[str, Any], latest: Decimal, row: dict[str, Any] | None) -> str:
    if row is not None and row.get("state") not in (None, "missing", "error", "not_applicable"):
        if row.get("passed"):
            status = "on target"
        else:
            status = f"{round((row.get('credit') or 0) * 100)} % of the way to target"
        return status if row["state"] == "fresh" else f"{status}, {row['state']}"
    target = metric["target"]
    met = latest >= target if metric["direction"] == Metric.Direction.HIGHER else latest <= target
    return "on target" if met else "off target"


def _documents(program: Program, as_of: date) -> list[DocumentRow]:
    effective = DocumentVersion.objects.filter(document=OuterRef("pk"), state=DocumentVersion.State.EFFECTIVE)
    documents = (
        ControlledDocument.objects.filter(program=program)
        .annotate(effective_label=Subquery(effective.values("label")[:1]))
        .order_by("title", "pk")
    )
    rows = []
    for document in documents:
        due = document.next_review_due
        rows.append(
            DocumentRow(
                title=document.title,
                doc_id=document.doc_id,
                version=document.effective_label or document.version_label,  # type: ignore[attr-defined]
                owner=document.owner,
                approver=document.approver,
                last_review=(
                    document.last_reviewed_on.isoformat()
                    if document.last_reviewed_on
                    else document.review_date
                ),
                next_review=due.isoformat() if due else document.next_review,
                next_review_due=due,
                days_overdue=(as_of - due).days if due is not None and as_of >= due else None,
            )
        )
    return rows


def _waivers(program: Program, moment: datetime) -> list[WaiverRow]:
    waivers = (
        waivers_in_force(program.pk, moment)
        .select_related("item", "metric", "requested_by", "approved_by")
        .order_by("expires_at", "pk")
    )
    return [
        WaiverRow(
            requirement=(
                f"{waiver.item.ref} {waiver.item.title}".strip()
                if waiver.item is not None
                else waiver.metric.name
            ),
            type=waiver.get_type_display(),
            reason=waiver.reason,
            requested_by=waiver.requested_by.get_username(),
            approved_by=waiver.approved_by.get_username() if waiver.approved_by else "",
            expires_on=waiver.expires_at.date(),
            days_left=(waiver.expires_at.date() - moment.date()).days,
        )
        for waiver in waivers
    ]


# --- derived -----------------------------------------------------------------------------------------------


def _overdue_days(item: dict[str, Any], as_of: date) -> int:
    due = item["due_date"]
    if due is None or item["status"] not in OPEN_STATUSES:
        return 0
    return max(0, (as_of - due).days)


def _label(item: dict[str, Any]) -> str:
    return f"{item['ref']} {item['title']}".strip()


def _risks(
    rows: list[dict[str, Any]], items: dict[str, dict[str, Any]], documents: list[DocumentRow], as_of: date
) -> list[RiskRow]:
    """Blocked and overdue items, overdue reviews, failing and fading evidence: the worst first."""
    ranked: list[tuple[tuple[Any, ...], RiskRow]] = []
    for item in items.values():
        if item["archived_at"] is not None:
            continue
        owner = item["owner__username"] or ""
        days = _overdue_days(item, as_of)
        late = f"due {item['due_date'].isoformat()}, {days} days overdue" if days else ""
        if item["status"] == Status.BLOCKED:  # one row, saying so, when it is late too
            detail = "; ".join(part for part in (item["status_reason"], late) if part)
            ranked.append(
                (
                    (0, not item["blocking"], -days, _label(item)),
                    RiskRow("blocked", _label(item), detail, owner, item["blocking"]),
                )
            )
        elif days:
            ranked.append(
                (
                    (1, not item["blocking"], -days, _label(item)),
                    RiskRow("overdue", _label(item), late, owner, item["blocking"]),
                )
            )
    for document in documents:
        if document.days_overdue:
            detail = f"review due {document.next_review}, {document.days_overdue} days overdue"
            ranked.append(
                (
                    (1, False, -document.days_overdue, document.title),
                    RiskRow("review", document.title, detail, "", True),
                )
            )
    for row in rows:
        if not row.get("applicable", True) or row["id"].startswith("document:"):
            continue
        state = row.get("state")
        title = _row_title(row, items)
        owner = (items.get(row["id"].partition(":")[2]) or {}).get("owner__username") or ""
        if state in ("fresh", "stale") and not row.get("passed"):
            detail = "evidence says it fails" if state == "fresh" else "failing, and the evidence is fading"
            ranked.append(
                (
                    (2, not row["blocking"], 0, title),
                    RiskRow("failing", title, detail, owner, row["blocking"]),
                )
            )
        elif state == "error":
            ranked.append(
                (
                    (2, not row["blocking"], 1, title),
                    RiskRow("failing", title, "the collector failed", owner, row["blocking"]),
                )
            )
        elif state in ("stale", "expired") and row.get("passed"):
            detail = f"evidence {state}, {round(row.get('age_days') or 0)} days old"
            ranked.append(
                ((3, not row["blocking"], 0, title), RiskRow("stale", title, detail, owner, row["blocking"]))
            )
    ranked.sort(key=lambda entry: entry[0])
    return [risk for _, risk in ranked]


def _row_title(row: dict[str, Any], items: dict[str, dict[str, Any]]) -> str:
    kind, _, key = row["id"].partition(":")
    item = items.get(key) if kind == "item" else None
    if item is not None:
        return _label(item)
    return str(row.get("title") or row["id"])


def _requirements(
    rows: list[dict[str, Any]], items: dict[str, dict[str, Any]], metrics: list[MetricRow], moment: datetime
) -> list[RequirementRow]:
    metric_sources = {metric.key: metric for metric in metrics}
    result = []
    for row in rows:
        kind, _, key = row["id"].partition(":")
        age = row.get("age_days")
        observed_on = (moment - timedelta(days=age)).date() if age is not None else None
        result.append(
            RequirementRow(
                ident=(items[key]["ref"] or key) if kind == "item" and key in items else row["id"],
                title=_row_title(row, items) if kind != "item" or key not in items else items[key]["title"],
                area=row.get("area", ""),
                level=row.get("level"),
                state=_state_label(row),
                gate=row.get("gate") if row.get("applicable", True) else None,
                observed_on=observed_on,
                age_days=age,
                source=_source(
                    kind, items.get(key) if kind == "item" else None, metric_sources.get(key), age
                ),
            )
        )
    return result


def _state_label(row: dict[str, Any]) -> str:
    if not row.get("applicable", True):
        return "not applicable (waiver)"
    state = row.get("state")
    if state == "missing":
        label = "no evidence"
    elif state == "error":
        label = "collector error"
    else:
        label = f"{'pass' if row.get('passed') else 'fail'}, {state}"
    if row.get("gate_by_waiver"):
        label += ", risk accepted"
    return label


def _source(kind: str, item: dict[str, Any] | None, metric: MetricRow | None, age: float | None) -> str:
    if age is None:
        return ""
    if kind == "document":
        return "document review"
    if kind == "metric":
        return (
            "measurement"
            if metric is None or metric.latest is None
            else f"measurement {metric.latest.normalize():f}"
        )
    if item is None:
        return ""
    if item["evidence_kind"]:
        return f"{item['evidence_kind']} (collector)" if item["evidence_run"] else str(item["evidence_kind"])
    if item["attested_by__username"]:
        return f"attested by {item['attested_by__username']}"
    return "attested" if item["attested_at"] else "completed"


def _flipped(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Titles of the requirements whose gate opened (improved) or closed (slipped) since the previous scorecard."""
    gates = {row["id"]: row.get("gate") for row in before}
    improved, slipped = [], []
    for row in after:
        was = gates.get(row["id"])
        if was is None or row.get("gate") is None or was == row.get("gate"):
            continue
        (improved if row["gate"] else slipped).append(str(row.get("title") or row["id"]))
    return improved, slipped
