"""Controlled documents: the strategy itself and the policies a program keeps under document control.

The control block is kept as written ("March 2025", "Quarterly", "To be set") next to the dates Cairn could
read from it, so nothing a document says is lost and reminders can still work from real dates.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from roadmap.models import Program

if TYPE_CHECKING:
    from roadmap.models import AnyUser


class ControlledDocumentQuerySet(models.QuerySet["ControlledDocument"]):
    def for_user(self, user: AnyUser) -> ControlledDocumentQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))

    def due_for_review(self, by: date) -> ControlledDocumentQuerySet:
        """Documents of programs still running whose next review falls on or before `by` and was not held.

        Completing a review moves the due date, so a review recorded after the due date answers it too. One on
        the due date itself does not: documents write their scheduled review as "Review Date: March 2025" next
        to "Next Review: March 2025", which is a plan, not a review held.
        """
        return (
            self.exclude(program__status=Program.Status.CLOSED)
            .filter(next_review_due__lte=by)
            .filter(Q(last_reviewed_on__isnull=True) | Q(last_reviewed_on__lte=F("next_review_due")))
        )


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
    approver_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approvable_documents",
        help_text="Who approves versions (besides the program's managers).",
    )
    review_cadence_months = models.PositiveSmallIntegerField(
        default=12,
        help_text="Periodic review interval; next review = last review (or effective date) + this.",
    )
    distribution_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="distributed_documents"
    )
    distribution_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="distributed_documents"
    )
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


class DocumentVersionQuerySet(models.QuerySet["DocumentVersion"]):
    def for_user(self, user: AnyUser) -> DocumentVersionQuerySet:
        return self.filter(document__program__in=Program.objects.for_user(user))


class DocumentVersion(models.Model):
    """One text of a document, kept verbatim with its digest; the newest one is exported back.

    draft → in_review → approved → effective → superseded | obsolete (in_review → draft on changes requested).
    The text never changes once the version has left draft; at most one version of a document is effective.
    """

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        EFFECTIVE = "effective", "Effective"
        SUPERSEDED = "superseded", "Superseded"
        OBSOLETE = "obsolete", "Obsolete"

    document = models.ForeignKey(ControlledDocument, on_delete=models.CASCADE, related_name="versions")
    label = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    source_name = models.CharField(max_length=300, blank=True)
    source_text = models.TextField()
    sha256 = models.CharField(max_length=64)
    change_summary = models.TextField(blank=True)
    effective_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords()
    objects = DocumentVersionQuerySet.as_manager()

    class Meta:
        ordering = ["document", "-id"]
        get_latest_by = "id"
        constraints = [
            models.UniqueConstraint(
                fields=["document"], condition=Q(state="effective"), name="version_one_effective_per_document"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document.title} {self.label} ({self.sha256[:12]})"


class Review(models.Model):
    class Kind(models.TextChoices):
        PRE_ISSUE = "pre_issue", "Before issue"
        PERIODIC = "periodic", "Periodic"
        AD_HOC = "ad_hoc", "Ad hoc"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Outcome(models.TextChoices):
        NO_CHANGE = "no_change", "No change"
        MINOR = "minor", "Minor revision"
        MAJOR = "major", "Major revision"

    document = models.ForeignKey(ControlledDocument, on_delete=models.CASCADE, related_name="reviews")
    version = models.ForeignKey(
        DocumentVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    due_on = models.DateField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["document", "-due_on"]
        constraints = [
            # The daily job and a person may both open the periodic review; only one can exist.
            models.UniqueConstraint(
                fields=["document"],
                condition=Q(state="open", kind="periodic"),
                name="review_one_open_periodic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} review of {self.document.title} due {self.due_on}"


class Approval(models.Model):
    """An append-only decision on a version, with the digest of exactly the text it was about."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    version = models.ForeignKey(DocumentVersion, on_delete=models.PROTECT, related_name="approvals")
    decision = models.CharField(max_length=24, choices=Decision.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    content_sha256 = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "created_at"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.signer} ({self.content_sha256[:12]})"


class Acknowledgement(models.Model):
    version = models.ForeignKey(DocumentVersion, on_delete=models.CASCADE, related_name="acknowledgements")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version", "user"]
        constraints = [
            models.UniqueConstraint(fields=["version", "user"], name="acknowledgement_once_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.version}"


class WaiverQuerySet(models.QuerySet["Waiver"]):
    def for_user(self, user: AnyUser) -> WaiverQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))


class Waiver(models.Model):
    """An exception on one requirement: not applicable, or a risk accepted for the level gate only."""

    class Type(models.TextChoices):
        NOT_APPLICABLE = "not_applicable", "Not applicable"
        RISK_ACCEPTED = "risk_accepted", "Risk accepted"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="waivers")
    item = models.ForeignKey(
        "roadmap.ChecklistItem", null=True, blank=True, on_delete=models.CASCADE, related_name="waivers"
    )
    metric = models.ForeignKey(
        "metrics.Metric", null=True, blank=True, on_delete=models.CASCADE, related_name="waivers"
    )
    type = models.CharField(max_length=16, choices=Type.choices)
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()
    objects = WaiverQuerySet.as_manager()

    class Meta:
        ordering = ["program", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(item__isnull=False, metric__isnull=True)
                | Q(item__isnull=True, metric__isnull=False),
                name="waiver_one_requirement",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="waiver_reason_required"),
            # Separation of duties, kept by the database too: nobody approves their own waiver.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("requested_by")),
                name="waiver_approver_differs",
            ),
        ]

    def __str__(self) -> str:
        target = self.item or self.metric
        return f"{self.get_type_display()}: {target}"


class ReminderLog(models.Model):
    """One reminder sent: keyed so a missed day is caught up and nothing is sent twice."""

    object_key = models.CharField(max_length=100, help_text="e.g. document:12, acknowledgement:7.")
    kind = models.CharField(max_length=32)
    offset_days = models.IntegerField()
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    due_on = models.DateField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["object_key", "kind", "offset_days", "recipient"], name="reminder_sent_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_key} → {self.recipient}"
