"""Controlled documents: the strategy itself and the policies a program keeps under document control.

The control block is kept as written ("March 2025", "Quarterly", "To be set") next to the dates Cairn could
read from it, so nothing a document says is lost and reminders can still work from real dates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from roadmap.models import Program

if TYPE_CHECKING:
    from roadmap.models import AnyUser


class ControlledDocumentQuerySet(models.QuerySet["ControlledDocument"]):
    def for_user(self, user: AnyUser) -> ControlledDocumentQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))


class ControlledDocument(models.Model):
    class Type(models.TextChoices):
        STRATEGY = "strategy", "Strategy"
        POLICY = "policy", "Policy"
        PROCEDURE = "procedure", "Procedure"
        STANDARD = "standard", "Standard"
        OTHER = "other", "Other"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="documents")
    doc_type = models.CharField(max_length=16, choices=Type.choices, default=Type.STRATEGY)
    doc_id = models.CharField("document ID", max_length=100, blank=True)
    title = models.CharField(max_length=300)
    version_label = models.CharField("version", max_length=64, blank=True)
    owner = models.CharField(max_length=300, blank=True, help_text="As written, e.g. Chief Cloud Officer.")
    approver = models.CharField(max_length=300, blank=True, help_text="As written, e.g. CEO.")
    distribution = models.TextField(blank=True, help_text="As written, e.g. All Cloud Team Members.")
    last_updated = models.CharField(max_length=100, blank=True, help_text="As written.")
    review_date = models.CharField(max_length=100, blank=True, help_text="As written.")
    next_review = models.CharField(max_length=200, blank=True, help_text="As written.")
    review_cycle = models.CharField(max_length=200, blank=True, help_text="As written, e.g. Annual.")
    classification = models.CharField(max_length=100, blank=True)
    last_updated_on = models.DateField(null=True, blank=True, help_text="Read from “last updated”.")
    last_reviewed_on = models.DateField(null=True, blank=True, help_text="Read from “review date”.")
    next_review_due = models.DateField(null=True, blank=True, help_text="Read from “next review”.")
    category = models.CharField(max_length=200, blank=True, help_text="From the front matter.")
    tags = models.JSONField(default=list, blank=True, help_text="From the front matter.")
    created = models.CharField(max_length=100, blank=True, help_text="From the front matter, as written.")
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = ControlledDocumentQuerySet.as_manager()

    class Meta:
        ordering = ["program", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["program"], condition=Q(doc_type="strategy"), name="document_one_strategy_per_program"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} {self.version_label}".strip()


class DocumentVersion(models.Model):
    """One imported text of a document, kept verbatim with its digest; the newest one is exported back."""

    document = models.ForeignKey(ControlledDocument, on_delete=models.CASCADE, related_name="versions")
    label = models.CharField(max_length=64, blank=True)
    source_name = models.CharField(max_length=300, blank=True)
    source_text = models.TextField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["document", "-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{self.document.title} {self.label} ({self.sha256[:12]})"
