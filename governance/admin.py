"""Controlled documents in the admin: the control block as written, its dates, and every imported text."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from governance import services
from governance.models import ControlledDocument, DocumentVersion
from roadmap.admin import ProgramScopedAdmin


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
        ("Control block (as written)", {
            "fields": ["owner", "approver", "distribution", "last_updated", "review_date", "next_review", "review_cycle"],
        }),
        ("Dates Cairn read from it", {"fields": ["last_updated_on", "last_reviewed_on", "next_review_due"]}),
        ("Front matter", {"fields": ["category", "tags", "created"], "classes": ["collapse"]}),
    ]  # fmt: skip
    readonly_fields = ["program", "doc_type", "last_updated_on", "last_reviewed_on", "next_review_due"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents arrive with their strategy (import) and, later, their own workflow

    def save_model(
        self, request: HttpRequest, obj: ControlledDocument, form: forms.ModelForm, change: bool
    ) -> None:
        original = ControlledDocument.objects.get(pk=obj.pk)
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        saved = services.controlled_document_update(document=original, by=request.user, data=data)
        obj.__dict__.update(saved.__dict__)
