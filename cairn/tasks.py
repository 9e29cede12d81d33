"""Celery entry points for the project itself: thin wrappers around cairn/outbox.py."""

from __future__ import annotations

from celery import shared_task

from cairn import outbox


@shared_task(soft_time_limit=60, time_limit=90)  # queue: see CELERY_TASK_ROUTES
def outbox_flush() -> int:
    """Beat's tick (every 30 s): send the tasks the broker could not take when they were asked for. Safe to run
    twice at once: each row is claimed before it is sent."""
    return outbox.flush().sent
