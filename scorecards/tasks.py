"""Celery entry points for maturity: thin wrappers that load by id and call one service."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.utils import timezone

from cairn import outbox
from roadmap.models import Program
from scorecards import services


@shared_task(soft_time_limit=60, time_limit=90)  # queue: see CELERY_TASK_ROUTES
def snapshots_daily() -> int:
    """Beat's daily tick: one snapshot task per active program for today. Safe to run twice."""
    today = timezone.localdate().isoformat()
    program_ids = list(Program.objects.filter(status=Program.Status.ACTIVE).values_list("pk", flat=True))
    for program_id in program_ids:
        outbox.enqueue(snapshot_program, program_id=program_id, day=today)
    return len(program_ids)


@shared_task(
    soft_time_limit=240, time_limit=300, autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True,
    max_retries=5,
)  # fmt: skip
def snapshot_program(*, program_id: int, day: str) -> int:
    """Store the program's snapshot for `day`; a retry finds it stored (unique per program, day and model)."""
    program = Program.objects.get(pk=program_id)
    snapshot, _ = services.snapshot_save(program=program, day=date.fromisoformat(day))
    return snapshot.pk


@shared_task(soft_time_limit=60, time_limit=90)  # queue "reports": see CELERY_TASK_ROUTES
def scorecards_monthly() -> int:
    """Beat's monthly tick: one scorecard task per active program for the month before (programs that had not
    started by then have nothing to report). Safe to run twice."""
    period = services.scorecard_period(timezone.localdate())
    program_ids = services.scorecard_programs_for_period(period)
    for program_id in program_ids:
        outbox.enqueue(scorecard_program, program_id=program_id, period=period)
    return len(program_ids)


@shared_task(
    soft_time_limit=600, time_limit=660, autoretry_for=services.DELIVERY_ERRORS, retry_backoff=True,
    retry_jitter=True, max_retries=5,
)  # fmt: skip
def scorecard_program(*, program_id: int, period: str) -> int:
    """Generate and e-mail the program's scorecard for `period`; a retry finds both done (one per program and
    period, delivered once)."""
    program = Program.objects.get(pk=program_id)
    return services.scorecard_publish(program=program, period=period).pk
