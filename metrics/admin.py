"""Metrics and evidence in the admin: definitions, values, collectors ("Run now"), runs and evidence.

Rows of other programs do not exist for the user; every write goes through `metrics.services`, so the admin
refuses exactly what the API refuses. Measurements, runs and evidence are records: added, never edited or deleted.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from metrics import selectors, services
from metrics.api import evidence_file_response
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from roadmap import access
from roadmap.admin import ArchivedFilter, ChecklistItemAdmin, ProgramScopedAdmin
from roadmap.models import ChecklistItem, Program

FRESHNESS_COLOURS = {"fresh": "#1b7f3b", "stale": "#a15c00", "expired": "#b42318", "missing": "#555"}


def freshness_badge(value: selectors.Freshness) -> str:
    return format_html(
        '<span style="color:{};font-weight:600">{}</span>', FRESHNESS_COLOURS[value.state], value.label
    )


@admin.register(Metric)
class MetricAdmin(ProgramScopedAdmin):
    list_display = [
        "name",
        "program",
        "category",
        "unit",
        "target",
        "latest",
        "freshness_column",
        "measurable",
    ]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), ArchivedFilter]
    list_select_related = ["program", "category"]
    search_fields = ["name", "description", "key"]
    ordering = ["program", "order"]
    fields = [
        "program", "key", "name", "description", "category", "unit", "direction", "baseline", "target", "window",
        "frequency", "level", "weight", "valid_for_days", "grace_days", "owner", "source_line", "archived_at",
    ]  # fmt: skip
    readonly_fields = ["source_line", "archived_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Metric]:
        return selectors.metrics_with_latest_value(super().get_queryset(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Metric | None = None) -> list[str]:
        fixed = ["program", "key"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "key" and field is not None:
            # As in the API: `metric_save` makes the key from the name when it is left empty.
            field.required = False
            field.help_text = "Stable identifier, unique within the program; made from the name when empty."
        return field

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category":
            kwargs["queryset"] = db_field.related_model.objects.filter(
                program__in=Program.objects.managed_by(request.user)
            ).select_related("program")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Latest")
    def latest(self, metric: Metric) -> str:
        value = metric.latest_value  # type: ignore[attr-defined]
        return "—" if value is None else f"{value.normalize()} {metric.unit}".strip()

    @admin.display(description="Freshness")
    def freshness_column(self, metric: Metric) -> str:
        return freshness_badge(selectors.metric_freshness(metric, timezone.now()))

    @admin.display(description="Measurable", boolean=True)
    def measurable(self, metric: Metric) -> bool:
        return metric.is_measurable

    def save_model(self, request: HttpRequest, obj: Metric, form: forms.ModelForm, change: bool) -> None:
        services.metric_save(metric=obj, by=request.user, reason=form.cleaned_data.get("change_reason", ""))


class MeasurementForm(forms.ModelForm):
    recorder: Any = None

    class Meta:
        model = Measurement
        fields = ["metric", "value", "observed_at", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.instance = services.measurement_record(
                metric=cleaned["metric"],
                value=cleaned["value"],
                observed_at=cleaned.get("observed_at"),
                note=cleaned.get("note", ""),
                by=self.recorder,
            )
        except PermissionDenied as exc:
            raise ValidationError(str(exc)) from exc
        return cleaned


class RecordAdmin(admin.ModelAdmin):
    """Records that are added and then only read."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Measurement)
class MeasurementAdmin(RecordAdmin):
    form = MeasurementForm
    list_display = ["metric", "value", "observed_at", "source", "recorded_by", "run"]
    list_filter = [("metric__program", admin.RelatedOnlyFieldListFilter), "source"]
    list_select_related = ["metric", "recorded_by", "run__source"]
    search_fields = ["metric__name", "metric__key", "note"]
    date_hierarchy = "observed_at"
    ordering = ["-observed_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Measurement]:
        return super().get_queryset(request).filter(metric__in=Metric.objects.for_user(request.user))

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.recorder = request.user
        return form

    def get_fields(self, request: HttpRequest, obj: Measurement | None = None) -> list[str]:
        if obj is None:
            return ["metric", "value", "observed_at", "note"]
        return ["metric", "value", "observed_at", "collected_at", "source", "run", "note", "recorded_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Measurement | None = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "metric":
            kwargs["queryset"] = Metric.objects.for_user(request.user).active().select_related("program")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Measurement, form: forms.ModelForm, change: bool) -> None:
        pass  # the form's clean() recorded it through the service

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and Program.objects.for_user(request.user).exists()


class EvidenceSourceForm(forms.ModelForm):
    editor: Any = None

    class Meta:
        model = EvidenceSource
        fields = [
            "program", "name", "kind", "config", "auth", "secret_env", "interval_seconds", "timeout_seconds",
            "evidence_valid_days", "enabled", "metric", "items",
        ]  # fmt: skip
        help_texts = {
            "config": (
                'JSON. http_check: {"url", "method", "expected_status": [200], "max_latency_ms", '
                '"body_contains", "body_regex"}; http_json: {"url", "path": "data.value", "op": ">=", '
                '"expected": 99.9}; prometheus: {"base_url", "query", optional "op"/"expected"}; push: {}.'
            )
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        source = self.instance
        for name, value in cleaned.items():
            if name != "items":
                setattr(source, name, value)
        items = cleaned.get("items")
        self.push_token = None
        try:
            self.push_token = services.source_save(
                source=source,
                by=self.editor,
                item_ids=[item.pk for item in items] if items is not None else None,
            )
        except PermissionDenied as exc:
            raise ValidationError(str(exc)) from exc
        return cleaned


@admin.register(EvidenceSource)
class EvidenceSourceAdmin(ProgramScopedAdmin):
    form = EvidenceSourceForm
    list_display = ["name", "program", "kind", "enabled", "interval_seconds", "next_run_at", "last_run"]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "kind", "enabled"]
    list_select_related = ["program"]
    search_fields = ["name"]
    ordering = ["program", "name"]
    filter_horizontal = ["items"]
    change_form_template = "admin/metrics/evidencesource/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[EvidenceSource]:
        return selectors.sources_with_last_run(super().get_queryset(request))

    def get_readonly_fields(self, request: HttpRequest, obj: EvidenceSource | None = None) -> list[str]:
        return ["program", "kind", "next_run_at"] if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.editor = request.user
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "metric":
            managed = Program.objects.managed_by(request.user)
            kwargs["queryset"] = Metric.objects.filter(program__in=managed).active().select_related("program")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "items":
            managed = Program.objects.managed_by(request.user)
            kwargs["queryset"] = ChecklistItem.objects.filter(program__in=managed, archived_at__isnull=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="Last run")
    def last_run(self, source: EvidenceSource) -> str:
        status = source.last_run_status  # type: ignore[attr-defined]
        if status is None:
            return "never"
        when = timezone.localtime(source.last_run_at).strftime("%Y-%m-%d %H:%M")  # type: ignore[attr-defined]
        return f"{status} at {when}"

    def save_model(
        self, request: HttpRequest, obj: EvidenceSource, form: forms.ModelForm, change: bool
    ) -> None:
        token = getattr(form, "push_token", None)
        if token:
            self.message_user(
                request,
                f"Push token for “{obj.name}” (shown once, store it now): {token}",
                messages.WARNING,
            )

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        pass  # the form's clean() saved the items through the service

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/run/", wrap(self.run_view), name="metrics_evidencesource_run"),
            path(
                "<path:object_id>/rotate-token/", wrap(self.rotate_view), name="metrics_evidencesource_rotate"
            ),
            *super().get_urls(),
        ]

    def _managed_source(self, request: HttpRequest, object_id: str) -> EvidenceSource:
        source = self.get_object(request, object_id)
        if source is None:
            raise Http404("No such source.")
        if not access.can_manage_program(request.user, source.program_id):
            raise PermissionDenied
        return source

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run once now (one attempt) and show the result with the start of the raw response."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        source = self._managed_source(request, object_id)
        try:
            [run] = services.sources_collect_now(sources=[source], by=request.user, max_attempts=1)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:metrics_evidencesource_change", args=[source.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Run of {source.name}",
            "source": source,
            "run": run,
        }
        return TemplateResponse(request, "admin/metrics/evidencesource/run.html", context)

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        source = self._managed_source(request, object_id)
        try:
            token = services.source_rotate_token(source=source, by=request.user)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(
                request,
                f"New push token (shown once; the old one no longer works): {token}",
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:metrics_evidencesource_change", args=[source.pk]))


@admin.register(CollectionRun)
class CollectionRunAdmin(RecordAdmin):
    list_display = ["source", "started_at", "trigger", "status", "passed", "value", "attempts", "duration_ms"]
    list_filter = [("source__program", admin.RelatedOnlyFieldListFilter), "status", "trigger"]
    list_select_related = ["source"]
    search_fields = ["source__name", "error"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    fields = [
        "source", "slot", "trigger", "status", "started_at", "finished_at", "attempts", "duration_ms", "passed",
        "value", "error", "excerpt", "celery_task_id", "triggered_by",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[CollectionRun]:
        return super().get_queryset(request).filter(source__in=EvidenceSource.objects.for_user(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs come from the schedule, "Run now" and pushes


class EvidenceForm(forms.ModelForm):
    recorder: Any = None
    url = forms.URLField(max_length=1000, required=False, assume_scheme="https")

    class Meta:
        model = Evidence
        fields = ["item", "url", "file", "observed_at", "valid_until", "passed", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.instance = services.evidence_attach(
                item=cleaned["item"],
                by=self.recorder,
                url=cleaned.get("url") or "",
                upload=cleaned.get("file") or None,
                observed_at=cleaned.get("observed_at"),
                valid_until=cleaned.get("valid_until"),
                passed=cleaned.get("passed", True),
                note=cleaned.get("note", ""),
            )
        except PermissionDenied as exc:
            raise ValidationError(str(exc)) from exc
        return cleaned


@admin.register(Evidence)
class EvidenceAdmin(RecordAdmin):
    form = EvidenceForm
    list_display = ["item", "kind", "passed", "observed_at", "valid_until", "state", "link", "recorded_by"]
    list_filter = [("item__program", admin.RelatedOnlyFieldListFilter), "kind", "passed"]
    list_select_related = ["item", "recorded_by"]
    search_fields = ["item__title", "item__key", "url", "note", "sha256"]
    date_hierarchy = "observed_at"
    ordering = ["-observed_at"]
    autocomplete_fields = ["item"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Evidence]:
        return super().get_queryset(request).for_user(request.user)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.recorder = request.user
        return form

    def get_fields(self, request: HttpRequest, obj: Evidence | None = None) -> list[str]:
        if obj is None:
            return ["item", "url", "file", "observed_at", "valid_until", "passed", "note"]
        return [
            "item", "kind", "link", "sha256", "observed_at", "valid_until", "passed", "run", "note", "recorded_by",
            "created_at",
        ]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Evidence | None = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and Program.objects.for_user(request.user).exists()

    @admin.display(description="State")
    def state(self, evidence: Evidence) -> str:
        now = timezone.now()
        value = selectors.freshness(
            observed_at=evidence.observed_at,
            valid_until=evidence.valid_until or evidence.observed_at,
            grace_days=evidence.item.grace_days,
            now=now,
        )
        return freshness_badge(value)

    @admin.display(description="Link or file")
    def link(self, evidence: Evidence) -> str:
        if evidence.url:
            return format_html(
                '<a href="{}" rel="noopener noreferrer">{}</a>', evidence.url, evidence.url[:60]
            )
        if evidence.file:
            url = reverse("admin:metrics_evidence_download", args=[evidence.pk])
            return format_html('<a href="{}">{}</a> <code>{}</code>', url, "download", evidence.sha256[:12])
        if evidence.run_id:
            url = reverse("admin:metrics_collectionrun_change", args=[evidence.run_id])
            return format_html('<a href="{}">run {}</a>', url, evidence.run_id)
        return "—"

    def save_model(self, request: HttpRequest, obj: Evidence, form: forms.ModelForm, change: bool) -> None:
        pass  # the form's clean() attached it through the service

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.download_view)
        return [
            path("<path:object_id>/download/", view, name="metrics_evidence_download"),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        evidence = self.get_object(request, object_id)
        if evidence is None or not evidence.file or not self.has_view_permission(request, evidence):
            raise Http404("No such file.")
        return evidence_file_response(evidence)


class EvidenceChecklistItemAdmin(ChecklistItemAdmin):
    """The checklist item admin, with each item's latest evidence and whether it is still fresh."""

    list_display = [*ChecklistItemAdmin.list_display, "evidence_column"]
    readonly_fields = [*ChecklistItemAdmin.readonly_fields, "evidence_column"]
    fieldsets = [
        *ChecklistItemAdmin.fieldsets[:2],
        ("Evidence", {"fields": ["evidence_column"]}),
        *ChecklistItemAdmin.fieldsets[2:],
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChecklistItem]:
        return selectors.items_with_latest_evidence(super().get_queryset(request))

    @admin.display(description="Evidence")
    def evidence_column(self, item: ChecklistItem) -> str:
        if not hasattr(item, "evidence_observed_at"):
            return "—"
        value = selectors.item_freshness(item, timezone.now())
        url = reverse("admin:metrics_evidence_changelist") + f"?item__id__exact={item.pk}"
        verdict = (
            "" if value.passed is None or value.observed_at is None else (" ✓" if value.passed else " ✗")
        )
        return format_html('<a href="{}">{}{}</a>', url, freshness_badge(value), verdict)


admin.site.unregister(ChecklistItem)
admin.site.register(ChecklistItem, EvidenceChecklistItemAdmin)
