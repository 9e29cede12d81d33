"""Celery entry points for the roadmap: thin wrappers that load by id and call one service."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from roadmap import checklists, services


@shared_task(soft_time_limit=240, time_limit=300)  # queue: see CELERY_TASK_ROUTES
def items_set_status(*, item_ids: list[int], status: str, reason: str, user_id: int) -> int:
    """Bulk status change too large for a request. Idempotent: a second run finds nothing left to change."""
    user = get_user_model().objects.get(pk=user_id)
    return services.checklist_items_set_status(item_ids=item_ids, status=status, reason=reason, by=user)


@shared_task(soft_time_limit=900, time_limit=960, acks_late=True)  # queue: see CELERY_TASK_ROUTES
def checklist_import_run(*, run_id: int) -> str:
    """A checklist import too large for a request. Claims its run first, so a redelivery does nothing."""
    return checklists.import_run_execute(run_id=run_id)
