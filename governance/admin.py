"""Controlled documents in the admin: the control block as written, its dates, and every imported text."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from governance import (
    admin_waivers,  # noqa: F401  (registers WaiverAdmin)
    services,
)
from governance.models import Acknowledgement, Approval, ControlledDocument, DocumentVersion, Review
from roadmap.admin import ProgramScopedAdmin, ScopedHistoryAdmin
from roadmap.models import Program


class DocumentVersionInline(admin.TabularInline):
    model = DocumentVersion
    extra = 0
    can_delete = False
    fields = ["label", "source_name", "sha256", "created_at", "created_by"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: ControlledDocument | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ControlledDocument | None = None) -> bool:
        return False


@admin.register(ControlledDocument)
class ControlledDocumentAdmin(ProgramScopedAdmin):
    list_display = [
        "title",
        "program",
        "doc_type",
        "version_label",
        "owner",
        "approver",
        "next_review",
        "next_review_due",
    ]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "doc_type"]
    list_select_related = ["program"]
    search_fields = ["title", "doc_id", "owner", "approver"]
    inlines = [DocumentVersionInline]
    fieldsets = [
        (None, {"fields": ["program", "doc_type", "doc_id", "title", "version_label", "classification"]}),
        ("Control", {"fields": ["approver_user", "review_cadence_months", "distribution_users", "distribution_groups"]}),
        ("Control block (as written)", {
            "fields": ["owner", "approver", "distribution", "last_updated", "review_date", "next_review", "review_cycle"],
        }),
        ("Dates Cairn read from it", {"fields": ["last_updated_on", "last_reviewed_on", "next_review_due"]}),
        ("Front matter", {"fields": ["category", "tags", "created"], "classes": ["collapse"]}),
    ]  # fmt: skip
    readonly_fields = ["program", "doc_type", "last_updated_on", "last_reviewed_on", "next_review_due"]
    filter_horizontal = ["distribution_users", "distribution_groups"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents arrive with their strategy (import) and, later, their own workflow

    def save_model(
        self, request: HttpRequest, obj: ControlledDocument, form: forms.ModelForm, change: bool
    ) -> None:
        original = ControlledDocument.objects.get(pk=obj.pk)
        # The distribution lists are many-to-many: the admin saves them after this, through the form.
        many = {"distribution_users", "distribution_groups"}
        data = {name: form.cleaned_data[name] for name in form.changed_data if name not in many}
        saved = services.controlled_document_update(document=original, by=request.user, data=data)
        obj.__dict__.update(saved.__dict__)


class _DocumentControlAdmin(ScopedHistoryAdmin):
    """Rows of documents in the user's programs only; changes happen through workflow actions."""

    document_path = "document__program__in"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(**{self.document_path: Program.objects.for_user(request.user)})
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # document control keeps every record

    def _each(self, request: HttpRequest, queryset: QuerySet, call: Any, done: str) -> None:
        """Run a workflow service on each selected row; report what happened and what was refused, per row."""
        changed = 0
        for obj in queryset:
            try:
                call(obj)
                changed += 1
            except (PermissionDenied, ValidationError) as exc:
                text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                messages.error(request, f"{obj}: {text}")
        if changed:
            messages.success(request, f"{changed} {done}.")


@admin.register(DocumentVersion)
class DocumentVersionAdmin(_DocumentControlAdmin):
    list_display = ["document", "label", "state", "effective_on", "created_by", "created_at", "sha256_short"]
    list_filter = ["state", ("document__program", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["document", "created_by"]
    search_fields = ["label", "document__title", "sha256"]
    actions = ["submit", "approve", "request_changes", "publish", "mark_obsolete"]
    readonly_fields = ["state", "sha256", "effective_on", "created_by", "created_at", "source_name"]
    fields = ["document", "label", "state", "change_summary", "source_text", "source_name", "sha256", "effective_on",
              "created_by", "created_at"]  # fmt: skip

    @admin.display(description="sha256")
    def sha256_short(self, version: DocumentVersion) -> str:
        return version.sha256[:12]

    def get_readonly_fields(self, request: HttpRequest, obj: DocumentVersion | None = None) -> list[str]:
        # What was reviewed or approved never changes: only a draft's text and summary are editable.
        if obj is not None and obj.state != DocumentVersion.State.DRAFT:
            return [*self.readonly_fields, "document", "label", "change_summary", "source_text"]
        return [*self.readonly_fields, "document"] if obj is not None else list(self.readonly_fields)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "document":
            kwargs["queryset"] = ControlledDocument.objects.filter(
                program__in=Program.objects.managed_by(request.user)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: DocumentVersion, form: Any, change: bool) -> None:
        if change:
            saved = services.version_update_text(
                version=obj, by=request.user, source_text=form.cleaned_data["source_text"]
            )
        else:
            saved = services.version_create_draft(
                document=obj.document, by=request.user, source_text=obj.source_text, label=obj.label,
                change_summary=obj.change_summary,
            )  # fmt: skip
        obj.__dict__.update(saved.__dict__)

    @admin.action(description="Submit for review")
    def submit(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda v: services.version_submit(version=v, by=request.user), "submitted"
        )

    @admin.action(description="Approve")
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset,
            lambda v: services.version_decide(version=v, by=request.user, decision=Approval.Decision.APPROVED),
            "approved",
        )  # fmt: skip

    @admin.action(description="Request changes (back to draft)")
    def request_changes(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset,
            lambda v: services.version_decide(version=v, by=request.user, decision=Approval.Decision.CHANGES_REQUESTED),
            "sent back to draft",
        )  # fmt: skip

    @admin.action(description="Publish (put in force)")
    def publish(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda v: services.version_publish(version=v, by=request.user), "published"
        )

    @admin.action(description="Mark obsolete")
    def mark_obsolete(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda v: services.version_obsolete(version=v, by=request.user), "withdrawn"
        )


@admin.register(Review)
class ReviewAdmin(_DocumentControlAdmin):
    list_display = ["document", "kind", "due_on", "state", "outcome", "reviewer", "escalated_at"]
    list_filter = ["state", "kind", "outcome"]
    list_select_related = ["document", "reviewer"]
    readonly_fields = ["document", "version", "kind", "due_on", "state", "outcome", "reviewer", "opened_at",
                       "completed_at", "escalated_at"]  # fmt: skip
    fields = [*readonly_fields, "comment"]
    actions = ["complete_no_change", "complete_minor", "complete_major"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reviews open from the workflow, the daily job, or the API

    def _complete(self, request: HttpRequest, queryset: QuerySet, outcome: str) -> None:
        self._each(
            request, queryset, lambda r: services.review_complete(review=r, by=request.user, outcome=outcome),
            f"completed ({Review.Outcome(outcome).label.lower()})",
        )  # fmt: skip

    @admin.action(description="Complete: no change")
    def complete_no_change(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._complete(request, queryset, Review.Outcome.NO_CHANGE)

    @admin.action(description="Complete: minor revision (opens a draft)")
    def complete_minor(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._complete(request, queryset, Review.Outcome.MINOR)

    @admin.action(description="Complete: major revision (opens a draft)")
    def complete_major(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._complete(request, queryset, Review.Outcome.MAJOR)


@admin.register(Approval)
class ApprovalAdmin(_DocumentControlAdmin):
    document_path = "version__document__program__in"
    list_display = ["version", "decision", "signer", "content_sha256", "created_at"]
    list_filter = ["decision"]
    list_select_related = ["version__document", "signer"]
    readonly_fields = ["version", "decision", "signer", "content_sha256", "comment", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # append-only, made by the workflow

    def has_change_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        return False


@admin.register(Acknowledgement)
class AcknowledgementAdmin(_DocumentControlAdmin):
    document_path = "version__document__program__in"
    list_display = ["version", "user", "requested_at", "acknowledged_at"]
    list_filter = [("acknowledged_at", admin.EmptyFieldListFilter)]
    list_select_related = ["version__document", "user"]
    readonly_fields = ["version", "user", "requested_at", "acknowledged_at"]
    fields = readonly_fields
    actions = ["acknowledge"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        visible = Program.objects.for_user(request.user)
        return admin.ModelAdmin.get_queryset(self, request).filter(
            Q(version__document__program__in=visible) | Q(user=request.user)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Acknowledge (I have read it)")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda a: services.acknowledgement_confirm(acknowledgement=a, by=request.user),
            "acknowledged",
        )  # fmt: skip
