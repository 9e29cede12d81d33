"""Celery entry points for document control: thin wrappers that call the services in `governance.reminders`."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from governance import reminders


@shared_task(soft_time_limit=600, time_limit=660)  # queue: see CELERY_TASK_ROUTES
def document_control_daily() -> dict[str, int]:
    """Beat's daily tick: open the periodic reviews that came due, escalate late ones, send due reminders.

    Safe to run twice or to skip a day: each step claims its rows, and reminders missed are caught up.
    """
    today = timezone.localdate()
    return {
        "reviews_opened": reminders.periodic_reviews_open(today=today),
        "reviews_escalated": reminders.reviews_escalate(today=today),
        "reminders_sent": len(reminders.reminders_send(today=today)),
    }
