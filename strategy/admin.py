"""Strategy import (upload → preview → confirm) and export on the program admin.

The preview is a dry run of the very import the confirmation performs; the upload waits for the
confirmation in the session (`cairn.lib.uploads`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from cairn.lib.uploads import read_upload, stash_upload, take_upload
from roadmap.admin import ProgramAdmin
from roadmap.models import Program
from strategy.parser import StrategyError
from strategy.services import strategy_export, strategy_import


class StrategyUploadForm(forms.Form):
    file = forms.FileField(
        label="Markdown strategy", help_text="A UTF-8 markdown document (.md).", allow_empty_file=True
    )
    program = forms.SlugField(
        required=False,
        max_length=64,
        label="Program key",
        help_text="The program to update, or the key of a new one. Empty: derived from the document's title.",
    )


class StrategyProgramAdmin(ProgramAdmin):
    change_list_template = "admin/strategy/program_change_list.html"
    change_form_template = "admin/strategy/program_change_form.html"

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "import-strategy/",
                self.admin_site.admin_view(self.import_strategy_view),
                name="{}_{}_import_strategy".format(*info),
            ),
            path(
                "<path:object_id>/export-strategy/",
                self.admin_site.admin_view(self.export_strategy_view),
                name="{}_{}_export_strategy".format(*info),
            ),
            *super().get_urls(),
        ]

    def may_import(self, request: HttpRequest) -> bool:
        user = request.user
        return user.has_perm("roadmap.add_program") or Program.objects.managed_by(user).exists()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_import_strategy": self.may_import(request)}
        return super().changelist_view(request, extra_context)

    def import_strategy_view(self, request: HttpRequest) -> HttpResponse:
        if not self.may_import(request):
            raise PermissionDenied
        if request.method == "POST" and "confirm" in request.POST:
            return self._confirm(request)
        form = StrategyUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            data = read_upload(upload, limit=settings.CAIRN_STRATEGY_MAX_BYTES)
            try:
                report = strategy_import(
                    data=data,
                    by=request.user,
                    program_key=form.cleaned_data["program"],
                    dry_run=True,
                    source_name=upload.name or "",
                )
            except (StrategyError, PermissionDenied) as exc:
                form.add_error("file" if isinstance(exc, StrategyError) else None, str(exc))
            else:
                token = stash_upload(
                    request, "strategy", data, name=upload.name or "", program=report.program
                )
                return TemplateResponse(
                    request,
                    "admin/strategy/import_preview.html",
                    {**self._context(request, "Preview strategy import"), "report": report, "token": token},
                )
        return TemplateResponse(
            request,
            "admin/strategy/import_strategy.html",
            {**self._context(request, "Import strategy"), "form": form},
        )

    def _confirm(self, request: HttpRequest) -> HttpResponse:
        pending = take_upload(request, "strategy", request.POST.get("token"))
        if pending is None:
            messages.error(
                request, "That preview has expired or was already imported; upload the file again."
            )
            return HttpResponseRedirect(reverse("admin:roadmap_program_import_strategy"))
        data, details = pending
        try:
            report = strategy_import(
                data=data, by=request.user, program_key=details["program"], source_name=details["name"]
            )
        except (StrategyError, PermissionDenied) as exc:
            messages.error(request, f"Nothing was imported: {exc}")
            return HttpResponseRedirect(reverse("admin:roadmap_program_import_strategy"))
        for line in report.summary_lines():
            messages.success(request, line)
        for warning in report.warnings:
            messages.warning(request, warning)
        program = Program.objects.get(key=report.program)
        return HttpResponseRedirect(reverse("admin:roadmap_program_change", args=[program.pk]))

    def export_strategy_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        program = self.get_object(request, object_id)
        if program is None:
            raise Http404("No such program.")
        response = HttpResponse(
            strategy_export(program=program, by=request.user), content_type="text/markdown; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{program.key}.md"'
        return response

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title}


admin.site.unregister(Program)
admin.site.register(Program, StrategyProgramAdmin)
