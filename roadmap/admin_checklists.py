"""Checklist spreadsheets in the admin: upload → preview of every row → confirm, and the import runs.

The preview is a dry run of the engine the confirmation uses (`roadmap.checklists`); the file waits for the
confirmation in the session (`cairn.lib.uploads`). Export is django-import-export's, with our resource.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from import_export.admin import ExportMixin

from cairn import outbox
from cairn.lib.uploads import read_upload, stash_upload, take_upload
from roadmap import checklists
from roadmap.models import ImportRun, Program
from roadmap.resources import EXPORT_FORMATS, ChecklistItemResource

PREVIEW_ROWS_SHOWN = 2000


class ChecklistUploadForm(forms.Form):
    program = forms.ModelChoiceField(queryset=Program.objects.none(), help_text="Only programs you manage.")
    file = forms.FileField(allow_empty_file=True, help_text="CSV, XLSX, JSON or YAML with a header row.")
    mapping = forms.ChoiceField(required=False, help_text="How the file's columns map to Cairn's.")
    mapping_file = forms.FileField(required=False, help_text="Or a YAML mapping of your own.")
    commit_valid = forms.BooleanField(
        required=False,
        label="Import the valid rows even if some are invalid",
        help_text="Default: all or nothing.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = Program.objects.managed_by(user)
        self.fields["mapping"].choices = [
            ("", "Canonical columns"),
            *[(n, n) for n in checklists.builtin_mappings()],
        ]


class ChecklistImportExportMixin(ExportMixin):
    """For the checklist item admin: our import views, django-import-export's export with our resource."""

    resource_classes = [ChecklistItemResource]
    formats = list(EXPORT_FORMATS.values())
    import_export_change_list_template = "admin/roadmap/checklistitem/change_list.html"

    def get_export_resource_kwargs(self, request: HttpRequest, **kwargs: Any) -> dict[str, Any]:
        return {"user": request.user}

    def has_import_permission(self, request: HttpRequest) -> bool:
        return (
            request.user.has_perm("roadmap.import_checklistitem")
            and Program.objects.managed_by(request.user).exists()
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "has_import_permission": self.has_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view(self.import_checklist_view)
        return [
            path("import-checklist/", view, name="{}_{}_import_checklist".format(*info)),
            *super().get_urls(),
        ]

    def import_checklist_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method == "POST" and "confirm" in request.POST:
            return self._confirm(request)
        form = ChecklistUploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            data = read_upload(upload, limit=settings.CAIRN_CHECKLIST_MAX_BYTES)
            mapping_file = form.cleaned_data.get("mapping_file")
            mapping_text = mapping_file.read().decode("utf-8", "replace") if mapping_file else ""
            program = form.cleaned_data["program"]
            try:
                mapping = checklists.mapping_from(form.cleaned_data["mapping"], mapping_text)
                report = checklists.checklist_import(
                    program=program,
                    data=data,
                    file_format=checklists.detect_format(upload.name or ""),
                    by=request.user,
                    mapping=mapping,
                    dry_run=True,
                    commit_valid=form.cleaned_data["commit_valid"],
                    source_name=upload.name or "",
                )
            except (checklists.ChecklistFileError, PermissionDenied) as exc:
                form.add_error("file", str(exc))
            else:
                token = stash_upload(
                    request,
                    "checklist",
                    data,
                    name=upload.name or "",
                    program=program.pk,
                    mapping=form.cleaned_data["mapping"],
                    mapping_text=mapping_text,
                    commit_valid=form.cleaned_data["commit_valid"],
                )
                context = {
                    **self._context(request, f"Preview checklist import into {program.key}"),
                    "report": report,
                    "rows": report.results[:PREVIEW_ROWS_SHOWN],
                    "hidden_rows": max(0, len(report.results) - PREVIEW_ROWS_SHOWN),
                    "token": token,
                    "can_confirm": not report.invalid or form.cleaned_data["commit_valid"],
                }
                return TemplateResponse(request, "admin/roadmap/checklistitem/import_preview.html", context)
        return TemplateResponse(
            request,
            "admin/roadmap/checklistitem/import_checklist.html",
            {**self._context(request, "Import checklist items"), "form": form},
        )

    def _confirm(self, request: HttpRequest) -> HttpResponse:
        pending = take_upload(request, "checklist", request.POST.get("token"))
        start = reverse("admin:roadmap_checklistitem_import_checklist")
        if pending is None:
            messages.error(
                request, "That preview has expired or was already imported; upload the file again."
            )
            return HttpResponseRedirect(start)
        data, details = pending
        program = Program.objects.managed_by(request.user).filter(pk=details["program"]).first()
        if program is None:
            raise PermissionDenied
        with outbox.deliveries() as sent:
            try:
                run, report = checklists.import_run_start(
                    program=program,
                    data=data,
                    source_name=details["name"],
                    by=request.user,
                    mapping=details["mapping"],
                    mapping_text=details["mapping_text"],
                    commit_valid=details["commit_valid"],
                )
            except (checklists.ChecklistFileError, PermissionDenied) as exc:
                messages.error(request, f"Nothing was imported: {exc}")
                return HttpResponseRedirect(start)
        if report is None:
            messages.info(
                request, f"{run.rows} rows are being imported in the background; this page shows progress."
            )
            if sent.delayed:
                messages.warning(request, outbox.DELAYED_MESSAGE)
        else:
            for line in report.summary_lines():
                (messages.success if report.committed else messages.error)(request, line)
        return HttpResponseRedirect(reverse("admin:roadmap_importrun_change", args=[run.pk]))

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title}


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "program",
        "source_name",
        "status",
        "progress_column",
        "counts",
        "created_by",
    ]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "status"]
    list_select_related = ["program", "created_by"]
    search_fields = ["source_name", "sha256"]
    fields = [
        "program", "source_name", "file_format", "mapping", "sha256", "dry_run", "commit_valid", "status",
        "progress_column", "counts", "errors_table", "error", "created_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportRun]:
        return (
            super()
            .get_queryset(request)
            .filter(program__in=Program.objects.for_user(request.user))
            .defer("source")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs come from imports

    def has_change_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False

    @admin.display(description="Progress")
    def progress_column(self, run: ImportRun) -> str:
        return format_html(
            '<meter min="0" max="{}" value="{}" aria-label="rows processed"></meter> {} of {} rows',
            max(run.rows, 1), run.progress, run.progress, run.rows,
        )  # fmt: skip

    @admin.display(description="Items")
    def counts(self, run: ImportRun) -> str:
        items = (run.report or {}).get("items")
        if not items:
            return "—"
        return ", ".join(f"{value} {name}" for name, value in items.items())

    @admin.display(description="Row errors")
    def errors_table(self, run: ImportRun) -> str:
        errors = (run.report or {}).get("errors") or []
        if not errors:
            return "—"
        return format_html(
            "<table><thead><tr><th>Row</th><th>Column</th><th>Value</th><th>Problem</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((error["row"], error["column"], error["value"], error["message"]) for error in errors),
            ),
        )
