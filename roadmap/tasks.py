"""Celery entry points for the roadmap: thin wrappers that load by id and call one service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model

from roadmap import checklists, services


@shared_task(soft_time_limit=240, time_limit=300)  # queue: see CELERY_TASK_ROUTES
def items_set_status(*, item_ids: list[int], status: str, reason: str, user_id: int) -> int:
    """Bulk status change too large for a request. Idempotent: a second run finds nothing left to change."""
    user = get_user_model().objects.get(pk=user_id)
    return services.checklist_items_set_status(item_ids=item_ids, status=status, reason=reason, by=user)


# The hard limit is also the claim's lease: a run claimed longer ago than this lost its worker.
IMPORT_TIME_LIMIT = settings.CAIRN_CHECKLIST_IMPORT_TIME_LIMIT


@shared_task(
    bind=True, soft_time_limit=IMPORT_TIME_LIMIT - max(1, IMPORT_TIME_LIMIT // 16), time_limit=IMPORT_TIME_LIMIT,
    acks_late=True, max_retries=5,
)  # fmt: skip
def checklist_import_run(self, *, run_id: int) -> str:  # type: ignore[no-untyped-def]
    """A checklist import too large for a request. Claims its run first: a redelivery while the claiming attempt
    may still run comes back when that claim expires, and then takes over a run whose worker died."""
    try:
        return checklists.import_run_execute(run_id=run_id, task_id=self.request.id or "")
    except checklists.ImportRunBusy as busy:
        raise self.retry(countdown=busy.retry_in + 1) from busy
