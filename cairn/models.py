"""Project-wide models: the task outbox (see cairn/outbox.py)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessageQuerySet(models.QuerySet["OutboxMessage"]):
    def pending(self) -> OutboxMessageQuerySet:
        return self.filter(sent_at__isnull=True)


class OutboxMessage(models.Model):
    """A Celery task written in the transaction that asked for it, and published once that transaction commits.

    A row whose publish failed (broker down) stays pending until `outbox_flush` sends it.
    """

    task = models.CharField(max_length=200, help_text="The Celery task's registered name.")
    kwargs = models.JSONField(default=dict, help_text="The task's keyword arguments.")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0, help_text="Publishes tried so far.")
    attempted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last publish failed (no credentials).")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the broker accepted the task.")

    objects = OutboxMessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            # The flush (oldest pending first) and the "background work is delayed" banner (any pending row
            # older than a minute) read only pending rows; sent ones are kept a few days for operators.
            models.Index(fields=["created_at"], condition=Q(sent_at__isnull=True), name="outbox_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk}"

    def claim(self) -> bool:
        """Take this pending row for one publish attempt. The attempts count doubles as a version: of two
        flushes that read the same row, only one update matches, so only one of them publishes it."""
        now = timezone.now()
        claimed = (
            OutboxMessage.objects.pending()
            .filter(pk=self.pk, attempts=self.attempts)
            .update(attempts=self.attempts + 1, attempted_at=now)
        )
        if claimed:
            self.attempts += 1
            self.attempted_at = now
        return claimed == 1

    def mark_sent(self) -> None:
        self.sent_at = timezone.now()
        OutboxMessage.objects.filter(pk=self.pk).update(sent_at=self.sent_at, last_error="")

    def mark_failed(self, error: str) -> None:
        self.last_error = error
        OutboxMessage.objects.filter(pk=self.pk).update(last_error=error)
