"""Maturity in the admin: a program's level, index, score, coverage and freshness, and why, plus its snapshots."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from roadmap.models import Program
from scorecards import services
from scorecards.models import Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["program", "as_of", "level", "index", "score", "coverage", "freshness", "model_version"]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "model_version"]
    list_select_related = ["program"]
    date_hierarchy = "as_of"
    fields = [
        "program", "as_of", "model_version", "level", "index", "score", "coverage", "freshness", "inputs_hash",
        "config_hash", "created_at", "result",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Snapshot]:
        return super().get_queryset(request).filter(program__in=Program.objects.for_user(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # snapshots come from the daily job and `score --save`

    def has_change_permission(self, request: HttpRequest, obj: Snapshot | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Snapshot | None = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.maturity_view)
        return [path("maturity/<slug:key>/", view, name="scorecards_snapshot_maturity"), *super().get_urls()]

    def maturity_view(self, request: HttpRequest, key: str) -> HttpResponse:
        program = Program.objects.for_user(request.user).filter(key=key).first()
        if program is None or not request.user.has_perm("roadmap.view_program"):
            raise Http404("No such program.")
        maturity = services.program_maturity(program=program)
        result = maturity.result
        requirements = result["requirements"]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Maturity of {program.title}",
            "program": program,
            "result": result,
            "maturity": maturity,
            "blocking": [row for row in requirements if row["id"] in set(result["blocking_next_level"])],
            "requirements": requirements,
        }
        return TemplateResponse(request, "admin/scorecards/maturity.html", context)
