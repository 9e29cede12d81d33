from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from cairn.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Read-only: operators see what waits for the broker and why; `outbox_flush` sends it."""

    list_display = ["created_at", "task", "attempts", "attempted_at", "sent_at", "last_error"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter), "task"]
    fields = ["task", "kwargs", "created_at", "attempts", "attempted_at", "last_error", "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False
