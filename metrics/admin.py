"""Metric definitions in the admin. They arrive with the strategy; targets and collectors come with issue 5."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from metrics.models import Metric
from roadmap.admin import ArchivedFilter, ProgramScopedAdmin


@admin.register(Metric)
class MetricAdmin(ProgramScopedAdmin):
    list_display = ["name", "program", "category", "unit", "target", "measurable"]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), ArchivedFilter]
    list_select_related = ["program", "category"]
    search_fields = ["name", "description", "key"]
    ordering = ["program", "order"]
    readonly_fields = ["key", "source_line", "archived_at", "created_at", "updated_at"]

    @admin.display(description="Measurable", boolean=True)
    def measurable(self, metric: Metric) -> bool:
        return metric.is_measurable

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # until metrics get their own service (issue 5), definitions come from the strategy

    def has_change_permission(self, request: HttpRequest, obj: Metric | None = None) -> bool:
        return False
