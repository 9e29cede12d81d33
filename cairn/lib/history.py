"""Saving audited rows so django-simple-history records who changed what, from any door (admin, API, CLI, Celery)."""

from __future__ import annotations

from typing import Any


def save_with_history(instance: Any, *, by: Any | None, reason: str = "") -> None:
    """Validate and save `instance`, signing its history record with `by` (None: the system) and `reason`."""
    instance._history_user = by if by is not None and by.is_authenticated else None
    if reason:
        instance._change_reason = reason
    instance.full_clean()
    instance.save()
