"""What a program measures. Metric definitions arrive with the strategy document; targets and values follow."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from roadmap.models import Program, Section

if TYPE_CHECKING:
    from roadmap.models import AnyUser


class MetricQuerySet(models.QuerySet["Metric"]):
    def for_user(self, user: AnyUser) -> MetricQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))

    def active(self) -> MetricQuerySet:
        return self.filter(archived_at__isnull=True)


class Metric(models.Model):
    class Direction(models.TextChoices):
        HIGHER = "higher", "Higher is better"
        LOWER = "lower", "Lower is better"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="metrics")
    category = models.ForeignKey(
        Section, null=True, blank=True, on_delete=models.SET_NULL, related_name="metrics"
    )
    key = models.CharField(max_length=200, help_text="Stable identifier, unique within the program.")
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    unit = models.CharField(max_length=32, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.HIGHER)
    baseline = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    target = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Empty: defined, not yet measurable (scorecards say so instead of hiding the metric).",
    )
    window = models.CharField(max_length=32, blank=True, help_text="Period a value covers, e.g. 30d.")
    frequency = models.CharField(max_length=32, blank=True, help_text="How often it is measured, e.g. daily.")
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    weight = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.01"))]
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_metrics",
    )
    order = models.PositiveIntegerField(default=0)
    source_line = models.PositiveIntegerField(
        null=True, blank=True, help_text="Line of the imported document; empty for metrics added by hand."
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = MetricQuerySet.as_manager()

    class Meta:
        ordering = ["program", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "key"], name="metric_unique_key_per_program"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="metric_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_measurable(self) -> bool:
        return self.target is not None
