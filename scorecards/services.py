"""Maturity of a program: evaluate now, keep daily snapshots, read trends and phase status from them; and the
executive scorecards rendered from those snapshots, archived and e-mailed once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from smtplib import SMTPException
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from cairn.lib.dates import add_months
from governance.models import ControlledDocument
from roadmap import access
from roadmap.models import Phase, Program, Role
from scorecards import engine
from scorecards.models import Scorecard, Snapshot
from scorecards.selectors import maturity_input

if TYPE_CHECKING:
    from roadmap.models import AnyUser

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


def snapshot_build(*, program: Program, day: date, as_of: datetime | None = None) -> Snapshot:
    """The program's maturity at the end of `day` (or at `as_of`) as an unsaved snapshot: what the daily job
    stores, and what the dashboard shows live."""
    maturity = program_maturity(program=program, as_of=as_of or end_of_day(day), with_trend=False)
    result = maturity.result
    return Snapshot(
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


def snapshot_before(*, program: Program, day: date) -> Snapshot | None:
    """The latest stored snapshot before `day`: what the dashboard's arrows compare with."""
    return (
        Snapshot.objects.filter(program=program, as_of__lt=day, model_version=engine.MODEL_VERSION)
        .order_by("-as_of")
        .first()
    )


def snapshot_save(*, program: Program, day: date) -> tuple[Snapshot, bool]:
    """The program's snapshot for `day`, written once: a retry or a second run returns the stored one."""
    existing = Snapshot.objects.filter(program=program, as_of=day, model_version=engine.MODEL_VERSION).first()
    if existing is not None:
        return existing, False
    snapshot = snapshot_build(program=program, day=day)
    try:
        with transaction.atomic():
            snapshot.save(force_insert=True)
    except IntegrityError:  # another worker wrote it between our read and our insert
        return Snapshot.objects.get(program=program, as_of=day, model_version=engine.MODEL_VERSION), False
    return snapshot, True


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def phase_status(
    program: Program, *, index: Decimal, today: date, phases: list[Phase] | None = None
) -> list[dict[str, Any]]:
    """Each phase against plan: the planned index rises linearly over the window toward the phase's target.

    `phases` (in order, with their program) saves the query when the caller has loaded them already.
    """
    rows = []
    previous_target = 0
    for phase in phases if phases is not None else program.phases.all().order_by("order"):
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


# --- executive scorecards ----------------------------------------------------------------------------------

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# No program reports on a day before this: it keeps dates such as 0001-01-02 (and the year of trend before them)
# out of the snapshots, the date arithmetic and the archive.
EARLIEST_AS_OF = date(2000, 1, 1)
# What a delivery retries on: the mail server is unreachable or answered with an error.
DELIVERY_ERRORS = (ConnectionError, TimeoutError, SMTPException)


class ScorecardFileError(Exception):
    """The archived PDF is missing or no longer matches the digest recorded when it was generated."""


class ScorecardFileMissing(ScorecardFileError):
    """The archived PDF is not in storage."""


class ScorecardFileChanged(ScorecardFileError):
    """The archived PDF no longer matches the digest recorded when it was generated."""


def scorecard_period(today: date) -> str:
    """The period a scheduled run on `today` covers: the month before, as YYYY-MM."""
    last_month = today.replace(day=1) - timedelta(days=1)
    return f"{last_month:%Y-%m}"


def period_last_day(period: str) -> date:
    match = PERIOD.match(period)
    if match is None:
        raise ValidationError({"period": f"Expected a month as YYYY-MM, not {period!r}."})
    try:
        return add_months(date(int(match[1]), int(match[2]), 1), 1) - timedelta(days=1)
    except ValueError:  # year 0000, or the month after 9999-12
        raise ValidationError({"period": f"{period} is not a month a scorecard can cover."}) from None


def _check_as_of(*, program: Program, day: date, today: date) -> None:
    """Refuse a scorecard date the program cannot have: in the future, before the program started, or before
    EARLIEST_AS_OF whatever the program says."""
    problem = ""
    if day > today:
        problem = "is in the future; a scorecard reports what happened"
    elif program.start_date is not None and day < program.start_date:
        problem = f"is before the program started ({program.start_date.isoformat()})"
    elif day < EARLIEST_AS_OF:
        problem = f"is before {EARLIEST_AS_OF.isoformat()}, the earliest scorecard date"
    if problem:
        raise ValidationError({"as_of": f"{day.isoformat()} {problem}."})


def scorecard_previous(*, program: Program, as_of: date) -> Scorecard | None:
    """The latest scorecard before `as_of`: the arrows and "what moved" compare with it."""
    return (
        Scorecard.objects.filter(program=program, as_of__lt=as_of)
        .select_related("snapshot")
        .order_by("-as_of", "-id")
        .first()
    )


def _existing(*, program: Program, snapshot: Snapshot | None, period: str) -> Scorecard | None:
    """The stored scorecard for the same idempotency key: (program, period), or (snapshot, template) on demand."""
    from scorecards import pdf

    if period:
        return Scorecard.objects.filter(program=program, period=period).first()
    return Scorecard.objects.filter(
        snapshot=snapshot, template_version=pdf.TEMPLATE_VERSION, period=""
    ).first()


def scorecard_build(
    *, program: Program, snapshot: Snapshot, previous: Scorecard | None, period: str = ""
) -> tuple[bytes, int, list[str]]:
    """Render the scorecard of `snapshot` compared with `previous`: (PDF bytes, pages, summary sentences)."""
    from scorecards import pdf, report

    content = report.scorecard_report(
        program=program, snapshot=snapshot, previous=previous.snapshot if previous else None, period=period
    )
    rendered = pdf.render_scorecard(content)
    return rendered.content, rendered.pages, content.summary


def scorecard_generate(
    *,
    program: Program,
    as_of: date | None = None,
    by: AnyUser | None = None,
    trigger: str = Scorecard.Trigger.MANUAL,
    period: str = "",
) -> tuple[Scorecard, bool]:
    """The program's scorecard as of `as_of` (default today) or for `period`; (scorecard, created).

    Renders from the day's stored snapshot (stored first if the daily job has not). A second call for the same
    period, or on demand for the same snapshot and template, returns the stored scorecard: the database
    constraints decide between two workers racing. `by` must manage the program; None is the system.
    """
    from scorecards import pdf

    if by is not None and not access.can_manage_program(by, program.pk):
        raise PermissionDenied("Only the program's managers generate its scorecards.")
    if period:
        as_of = as_of or period_last_day(period)
        if (existing := _existing(program=program, snapshot=None, period=period)) is not None:
            return existing, False
    today = timezone.localdate()
    day = as_of or today
    _check_as_of(program=program, day=day, today=today)  # before anything is written
    snapshot, _ = snapshot_save(program=program, day=day)
    if not period and (existing := _existing(program=program, snapshot=snapshot, period="")) is not None:
        return existing, False
    previous = scorecard_previous(program=program, as_of=day)
    content, pages, summary = scorecard_build(
        program=program, snapshot=snapshot, previous=previous, period=period
    )
    digest = hashlib.sha256(content).hexdigest()
    scorecard = Scorecard(
        program=program,
        snapshot=snapshot,
        previous=previous,
        as_of=day,
        period=period,
        sha256=digest,
        size=len(content),
        pages=pages,
        template_version=pdf.TEMPLATE_VERSION,
        summary=" ".join(summary),
        trigger=trigger,
        generated_by=by if by is not None and by.is_authenticated else None,
    )
    scorecard.pdf.save(
        f"{program.key}-{period or day.isoformat()}-{digest[:12]}.pdf", ContentFile(content), save=False
    )
    try:
        with transaction.atomic():
            scorecard.save()
    except IntegrityError:
        # Another worker stored the same scorecard between our check and our insert: keep theirs.
        scorecard.pdf.delete(save=False)
        existing = _existing(program=program, snapshot=snapshot, period=period)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        scorecard.pdf.delete(save=False)  # no row, no file
        raise
    return scorecard, True


def scorecard_render(*, scorecard: Scorecard) -> bytes:
    """Render a stored scorecard again from its snapshot and previous scorecard (same template: same bytes)."""
    previous = scorecard.previous
    content, _, _ = scorecard_build(
        program=scorecard.program, snapshot=scorecard.snapshot, previous=previous, period=scorecard.period
    )
    return content


def scorecard_content(*, scorecard: Scorecard) -> bytes:
    """The archived PDF, checked against the digest recorded when it was generated."""
    try:
        with scorecard.pdf.open("rb") as file:
            content = file.read()
    except (FileNotFoundError, ValueError) as exc:
        raise ScorecardFileMissing(f"The PDF of scorecard {scorecard.pk} is missing from storage.") from exc
    if hashlib.sha256(content).hexdigest() != scorecard.sha256:
        raise ScorecardFileChanged(f"The PDF of scorecard {scorecard.pk} does not match its recorded sha256.")
    return content


def scorecard_recipients(*, program: Program) -> list[str]:
    """E-mail addresses of the program's executives and of its strategy document's distribution (users and
    groups): active users with an address, each once, sorted."""
    documents = ControlledDocument.objects.filter(program=program, doc_type=ControlledDocument.Type.STRATEGY)
    addresses = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(
            Q(memberships__program=program, memberships__role=Role.EXECUTIVE)
            | Q(distributed_documents__in=documents)
            | Q(groups__distributed_documents__in=documents)
        )
        .values_list("email", flat=True)
        .distinct()
    )
    unique: dict[str, str] = {}
    for address in addresses:
        unique.setdefault(address.strip().lower(), address.strip())
    return sorted(unique.values(), key=str.lower)


def scorecard_deliver(*, scorecard: Scorecard) -> list[str]:
    """E-mail the scorecard (PDF attached) to its recipients, once: the addresses it went to, or [] when it was
    delivered before or there is nobody to send it to.

    The delivery is claimed before the e-mail goes out (a conditional update on `delivered_at IS NULL`), so two
    workers never both send; a send that fails releases the claim for the task's retry.
    """
    recipients = scorecard_recipients(program=scorecard.program)
    if not recipients:
        return []
    now = timezone.now()
    claimed = Scorecard.objects.filter(pk=scorecard.pk, delivered_at__isnull=True).update(
        delivered_at=now, delivered_to=recipients
    )
    if not claimed:
        return []
    try:
        content = scorecard_content(scorecard=scorecard)
        context = {"scorecard": scorecard, "program": scorecard.program, "snapshot": scorecard.snapshot}
        subject = " ".join(render_to_string("email/scorecard_subject.txt", context).split())
        message = EmailMessage(subject, render_to_string("email/scorecard_body.txt", context), to=recipients)
        message.attach(scorecard.filename, content, "application/pdf")
        message.send()
    except BaseException:
        Scorecard.objects.filter(pk=scorecard.pk, delivered_at=now).update(delivered_at=None, delivered_to=[])
        raise
    scorecard.delivered_at, scorecard.delivered_to = now, recipients
    return recipients


def scorecard_programs_for_period(period: str) -> list[int]:
    """The programs a scheduled scorecard covers for `period`: active ones that had started by its last day."""
    last_day = period_last_day(period)
    programs = Program.objects.filter(status=Program.Status.ACTIVE).filter(
        Q(start_date__isnull=True) | Q(start_date__lte=last_day)
    )
    return list(programs.order_by("pk").values_list("pk", flat=True))


def scorecard_publish(*, program: Program, period: str) -> Scorecard:
    """The scheduled run: generate the program's scorecard for `period` (once) and deliver it (once)."""
    scorecard, _ = scorecard_generate(program=program, trigger=Scorecard.Trigger.SCHEDULE, period=period)
    scorecard_deliver(scorecard=scorecard)
    return scorecard
