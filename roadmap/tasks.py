"""Celery entry points for the roadmap: thin wrappers that load by id and call one service."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from roadmap import services


@shared_task(soft_time_limit=240, time_limit=300)  # queue: see CELERY_TASK_ROUTES
def items_set_status(*, item_ids: list[int], status: str, reason: str, user_id: int) -> int:
    """Bulk status change too large for a request. Idempotent: a second run finds nothing left to change."""
    user = get_user_model().objects.get(pk=user_id)
    return services.checklist_items_set_status(item_ids=item_ids, status=status, reason=reason, by=user)
