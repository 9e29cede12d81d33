"""Stored maturity results. A snapshot is written once per program, day and model version and never changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q

from roadmap.models import Program, Role

if TYPE_CHECKING:
    from roadmap.models import AnyUser


class SnapshotQuerySet(models.QuerySet["Snapshot"]):
    def for_user(self, user: AnyUser) -> SnapshotQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))


class Snapshot(models.Model):
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="snapshots")
    as_of = models.DateField()
    model_version = models.CharField(max_length=16)
    inputs_hash = models.CharField(max_length=64)
    config_hash = models.CharField(max_length=64)
    level = models.PositiveSmallIntegerField()
    index = models.DecimalField(max_digits=6, decimal_places=2)
    score = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    coverage = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    freshness = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    result = models.JSONField(help_text="The engine's whole result, requirement by requirement.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["program", "-as_of"]
        get_latest_by = "as_of"
        constraints = [
            # A retried or repeated daily job finds the snapshot already there instead of writing a second.
            models.UniqueConstraint(
                fields=["program", "as_of", "model_version"], name="snapshot_one_per_program_day_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program.key} {self.as_of} L{self.level} S{self.score}"


# Roles that read a program's scorecards; contributors work on items and do not receive the executive report.
SCORECARD_READER_ROLES = (Role.MANAGER, Role.EXECUTIVE, Role.AUDITOR)


class ScorecardQuerySet(models.QuerySet["Scorecard"]):
    def for_user(self, user: AnyUser) -> ScorecardQuerySet:
        """Scorecards the user may read: the executives, managers and auditors of the program (and superusers)."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            program__memberships__user=user, program__memberships__role__in=SCORECARD_READER_ROLES
        )

    def readable(self, user: AnyUser, pk: object) -> Scorecard:
        """One scorecard for a download: absent for outsiders (DoesNotExist), refused to other members."""
        scorecard = (
            self.filter(pk=pk, program__in=Program.objects.for_user(user)).select_related("program").first()
        )
        if scorecard is None:
            raise Scorecard.DoesNotExist("No such scorecard.")
        if not self.for_user(user).filter(pk=scorecard.pk).exists():
            raise PermissionDenied(
                "Only the program's executives, managers and auditors read its scorecards."
            )
        return scorecard


def scorecard_upload_to(scorecard: Scorecard, filename: str) -> str:
    return f"scorecards/{scorecard.program.key}/{filename}"


class Scorecard(models.Model):
    """The executive PDF rendered from one snapshot, archived with the digest of exactly what was sent.

    A scheduled scorecard covers a `period` (the month before the run, "2026-11") and exists once per program and
    period; one generated on demand exists once per snapshot and template version, so a retry, a second beat tick
    or a double click finds the stored one instead of writing a second.
    """

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Admin"
        API = "api", "API"
        CLI = "cli", "Command line"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="scorecards")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="scorecards")
    # The scorecard the arrows compare with, kept so that re-rendering gives the same document.
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    as_of = models.DateField(help_text="The snapshot's date.")
    period = models.CharField(
        max_length=7, blank=True, help_text="Month a scheduled scorecard covers (YYYY-MM); empty on demand."
    )
    pdf = models.FileField(upload_to=scorecard_upload_to, max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField(help_text="Bytes.")
    pages = models.PositiveIntegerField()
    template_version = models.CharField(max_length=16)
    summary = models.TextField(blank=True, help_text="The executive summary printed on page 1.")
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    generated_at = models.DateTimeField(auto_now_add=True)
    delivered_to = models.JSONField(default=list, blank=True, help_text="Addresses the e-mail went to.")
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = ScorecardQuerySet.as_manager()

    class Meta:
        ordering = ["-as_of", "-id"]
        get_latest_by = "as_of"
        constraints = [
            models.UniqueConstraint(
                fields=["program", "period"], condition=~Q(period=""), name="scorecard_one_per_program_period"
            ),
            models.UniqueConstraint(
                fields=["snapshot", "template_version"],
                condition=Q(period=""),
                name="scorecard_one_on_demand_per_snapshot",
            ),
        ]
        indexes = [
            # The API and admin lists (newest first) and the previous-scorecard lookup for the arrows.
            models.Index(fields=["program", "-as_of"], name="scorecard_program_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.program.key} scorecard {self.period or self.as_of}"

    @property
    def filename(self) -> str:
        return f"{self.program.key}-scorecard-{self.as_of.isoformat()}.pdf"
