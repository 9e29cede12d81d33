"""What a program measures. Metric definitions arrive with the strategy document; targets and values follow."""

from __future__ import annotations

from datetime import datetime
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
    valid_for_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long a measurement stays fresh; empty: the program default."
    )
    grace_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How long a measurement fades after that; empty: the program default.",
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


class Measurement(models.Model):
    """One value of a metric at one moment. Append-only: a correction is a newer measurement."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by hand"
        COLLECTOR = "collector", "Collected"
        API = "api", "Pushed through the API"
        IMPORT = "import", "Imported"

    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="measurements")
    value = models.DecimalField(max_digits=18, decimal_places=6)
    observed_at = models.DateTimeField(help_text="The moment the value describes.")
    collected_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    # One measurement per collection run: a retried or redelivered run cannot record twice.
    run = models.OneToOneField(
        "CollectionRun", null=True, blank=True, on_delete=models.PROTECT, related_name="measurement"
    )
    note = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["metric", "-observed_at", "-id"]
        indexes = [
            # The latest value of a metric (scorecards, dashboard, engine input) and its sparkline.
            models.Index(fields=["metric", "-observed_at"], name="measurement_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} = {self.value} at {self.observed_at:%Y-%m-%d %H:%M}"


class EvidenceSourceQuerySet(models.QuerySet["EvidenceSource"]):
    def for_user(self, user: AnyUser) -> EvidenceSourceQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))

    def due(self, now: datetime) -> EvidenceSourceQuerySet:
        """Enabled pull sources whose next run time has come (push sources are never due)."""
        return self.filter(enabled=True, next_run_at__lte=now, archived_at__isnull=True).exclude(
            kind=EvidenceSource.Kind.PUSH
        )


class EvidenceSource(models.Model):
    """A collector configuration: where evidence comes from, how often, and what it feeds.

    Credentials are never stored: `secret_env` names an environment variable the worker reads when it runs.
    """

    class Kind(models.TextChoices):
        HTTP_CHECK = "http_check", "HTTP check"
        HTTP_JSON = "http_json", "JSON endpoint"
        PROMETHEUS = "prometheus", "Prometheus query"
        PUSH = "push", "Pushed by an external system"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token (the variable holds the token)"
        BASIC = "basic", "Basic auth (the variable holds user:password)"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="evidence_sources")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True, help_text="Settings of the kind; checked on save.")
    auth = models.CharField(max_length=8, choices=Auth.choices, default=Auth.NONE)
    secret_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable holding the credential (never the credential itself).",
    )
    interval_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60)], help_text="How often a scheduled run happens."
    )
    timeout_seconds = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="Per attempt; a run makes at most three attempts on transient errors.",
    )
    evidence_valid_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How long a result stays fresh; empty: the checklist item's own validity.",
    )
    enabled = models.BooleanField(default=True)
    metric = models.ForeignKey(
        Metric,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="evidence_sources",
        help_text="Values become measurements of this metric.",
    )
    items = models.ManyToManyField(
        "roadmap.ChecklistItem",
        blank=True,
        related_name="evidence_sources",
        help_text="Pass/fail results become evidence on these checklist items.",
    )
    push_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at", "next_run_at", "push_token_hash"])
    objects = EvidenceSourceQuerySet.as_manager()

    class Meta:
        ordering = ["program", "name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(interval_seconds__gte=60), name="source_interval_min_60s"),
            models.CheckConstraint(condition=Q(timeout_seconds__gt=0), name="source_timeout_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class CollectionRun(models.Model):
    """One attempt to collect evidence from a source, from claim to result."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Succeeded"
        FAILED = "failed", "Check failed"
        ERROR = "error", "Error"
        TIMEOUT = "timeout", "Timed out"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Run now"
        PUSH = "push", "Push"

    FINISHED = (Status.SUCCESS, Status.FAILED, Status.ERROR, Status.TIMEOUT)

    source = models.ForeignKey(EvidenceSource, on_delete=models.CASCADE, related_name="runs")
    # The scheduled slot this run fills: the idempotency key with the source. Empty for manual and push runs.
    slot = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    value = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    error = models.TextField(blank=True)
    excerpt = models.TextField(blank=True, help_text="The start of the raw response, for diagnosis.")
    celery_task_id = models.CharField(max_length=64, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "slot"], name="run_unique_slot_per_source"),
        ]
        indexes = [models.Index(fields=["source", "-started_at"], name="run_latest")]

    def __str__(self) -> str:
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED


class EvidenceQuerySet(models.QuerySet["Evidence"]):
    def for_user(self, user: AnyUser) -> EvidenceQuerySet:
        return self.filter(item__program__in=Program.objects.for_user(user))


def evidence_upload_to(evidence: Evidence, filename: str) -> str:
    return f"evidence/{evidence.item.program.key}/{evidence.item.key}/{filename}"


class Evidence(models.Model):
    """What shows a checklist item is met: a link, a file (with its sha256) or a collector's check result."""

    class Kind(models.TextChoices):
        LINK = "link", "Link"
        FILE = "file", "File"
        CHECK = "check", "Collector check"

    item = models.ForeignKey("roadmap.ChecklistItem", on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    url = models.URLField(max_length=1000, blank=True)
    file = models.FileField(upload_to=evidence_upload_to, max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    observed_at = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    passed = models.BooleanField(default=True, help_text="A link or file attests the item is met.")
    run = models.ForeignKey(
        CollectionRun, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence"
    )
    note = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["item", "-observed_at", "-id"]
        verbose_name_plural = "evidence"
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="evidence_once_per_run_and_item"),
            models.CheckConstraint(
                condition=Q(kind="link", url__gt="") | Q(kind="file", sha256__gt="") | Q(kind="check"),
                name="evidence_link_has_url_file_has_hash",
            ),
        ]
        indexes = [models.Index(fields=["item", "-observed_at"], name="evidence_latest")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.item} at {self.observed_at:%Y-%m-%d}"
