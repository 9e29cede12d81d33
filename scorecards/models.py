"""Stored maturity results. A snapshot is written once per program, day and model version and never changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

from roadmap.models import Program

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
