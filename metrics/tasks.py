"""Celery entry points for evidence collection: thin wrappers around `metrics.services`."""

from __future__ import annotations

from celery import shared_task

from metrics import services


@shared_task(bind=True, soft_time_limit=540, time_limit=600)  # queue: evidence (CELERY_TASK_ROUTES)
def collect_due(self) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Beat's tick: run every source whose slot has come, concurrently.

    Safe to deliver twice: each slot is claimed once (conditional update + unique run per slot), and a run
    left `running` by a killed worker is taken over by a later tick and still finishes exactly once.
    """
    runs = services.collect_due(task_id=self.request.id or "")
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts
