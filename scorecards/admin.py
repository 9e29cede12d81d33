"""Maturity in the admin: a program's level, index, score, coverage and freshness, and why, plus its snapshots;
the archive of executive scorecards with their downloads, and "Generate scorecard" on the program page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from roadmap import access
from roadmap.models import Program
from scorecards import services
from scorecards.api import scorecard_file_error_status, scorecard_pdf_response
from scorecards.models import Scorecard, Snapshot
from strategy.admin import StrategyProgramAdmin


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


@admin.register(Scorecard)
class ScorecardAdmin(admin.ModelAdmin):
    """Past scorecards, read-only: they are generated from the program page, the API, the CLI or the schedule."""

    list_display = [
        "program", "as_of", "period", "level", "score", "pages", "trigger", "generated_by", "generated_at",
        "delivered_at", "download",
    ]  # fmt: skip
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "trigger"]
    list_select_related = ["program", "snapshot", "generated_by"]
    date_hierarchy = "as_of"
    fields = [
        "program", "as_of", "period", "snapshot", "previous", "download", "sha256", "size", "pages",
        "template_version", "summary", "trigger", "generated_by", "generated_at", "delivered_to", "delivered_at",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scorecard]:
        visible = Scorecard.objects.for_user(request.user).values("pk")
        # The list shows the snapshot's figures, not its per-requirement result (megabytes on a large program).
        return super().get_queryset(request).filter(pk__in=visible).defer("snapshot__result")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        return False  # the archive is the record of what executives were told

    @admin.display(description="level")
    def level(self, scorecard: Scorecard) -> str:
        return str(scorecard.snapshot.level)

    @admin.display(description="score")
    def score(self, scorecard: Scorecard) -> str:
        return "—" if scorecard.snapshot.score is None else str(scorecard.snapshot.score)

    @admin.display(description="PDF")
    def download(self, scorecard: Scorecard) -> str:
        url = reverse("admin:scorecards_scorecard_pdf", args=[scorecard.pk])
        return format_html('<a href="{}">Download ({} pages)</a>', url, scorecard.pages)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.pdf_view)
        return [path("<int:pk>/pdf/", view, name="scorecards_scorecard_pdf"), *super().get_urls()]

    def pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        try:
            scorecard = Scorecard.objects.readable(request.user, pk)
        except Scorecard.DoesNotExist:
            raise Http404("No such scorecard.") from None
        try:
            return scorecard_pdf_response(scorecard)
        except services.ScorecardFileError as exc:
            return HttpResponse(
                str(exc), status=scorecard_file_error_status(exc), content_type="text/plain; charset=utf-8"
            )


class GenerateScorecardForm(forms.Form):
    as_of = forms.DateField(
        label="As of",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Default: today. The scorecard is rendered from that day's snapshot (stored now if missing).",
    )


class ScorecardProgramAdmin(StrategyProgramAdmin):
    """The program page gains "Generate scorecard" (managers of the program) and a link to its scorecards."""

    change_form_template = "admin/scorecards/program_change_form.html"

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view(self.generate_scorecard_view)
        return [
            path("<path:object_id>/generate-scorecard/", view, name="{}_{}_generate_scorecard".format(*info)),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        program = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "may_generate_scorecard": program is not None
            and access.can_manage_program(request.user, program.pk),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def generate_scorecard_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        program = self.get_object(request, object_id)
        if program is None:
            raise Http404("No such program.")
        if not access.can_manage_program(request.user, program.pk):
            raise PermissionDenied
        form = GenerateScorecardForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                scorecard, created = services.scorecard_generate(
                    program=program,
                    as_of=form.cleaned_data["as_of"],
                    by=request.user,
                    trigger=Scorecard.Trigger.MANUAL,
                )
            except ValidationError as exc:
                form.add_error("as_of", exc.messages)
            else:
                if created:
                    messages.success(request, f"Generated the scorecard as of {scorecard.as_of:%d %B %Y}.")
                else:
                    messages.info(
                        request, f"The scorecard as of {scorecard.as_of:%d %B %Y} was already stored."
                    )
                changelist = reverse("admin:scorecards_scorecard_changelist")
                return HttpResponseRedirect(f"{changelist}?program__id__exact={program.pk}")
        recent = (
            Scorecard.objects.for_user(request.user).filter(program=program).select_related("snapshot")[:5]
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Generate a scorecard of {program.title}",
            "program": program,
            "form": form,
            "recent": recent,
        }
        return TemplateResponse(request, "admin/scorecards/generate.html", context)


admin.site.unregister(Program)
admin.site.register(Program, ScorecardProgramAdmin)
