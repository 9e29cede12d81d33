"""API shapes for metrics, measurements, evidence sources, runs and evidence.

Related-object choices are scoped to what the caller can see; whether they may write is the service's decision.
Credentials never appear: a source shows the *name* of the variable holding its secret, and a push token is
answered once, when it is made.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cairn.api import KeyRelatedField
from metrics import selectors
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from roadmap.models import ChecklistItem, Program, Section


class ScopedRelatedMixin:
    """Limit each related field's choices to rows of the caller's programs."""

    scoped_fields: dict[str, Any] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()  # type: ignore[misc]
        request = self.context.get("request")  # type: ignore[attr-defined]
        for name, model in self.scoped_fields.items():
            if name not in fields or request is None:
                continue
            field = fields[name]
            target = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
            manager = model.objects
            target.queryset = (
                manager.for_user(request.user)
                if hasattr(manager, "for_user")
                else manager.filter(program__in=Program.objects.for_user(request.user))
            )
        return fields


class FreshnessSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=selectors.FRESHNESS_STATES)
    observed_at = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    age_days = serializers.IntegerField(allow_null=True)


def freshness_data(value: selectors.Freshness) -> dict[str, Any]:
    return {
        "state": value.state,
        "observed_at": value.observed_at,
        "valid_until": value.valid_until,
        "age_days": value.age_days,
        "passed": value.passed,
    }


class ItemFreshnessSerializer(FreshnessSerializer):
    item = serializers.IntegerField()
    program = serializers.CharField()
    key = serializers.CharField()
    title = serializers.CharField()
    passed = serializers.BooleanField(allow_null=True)


class MetricSerializer(ScopedRelatedMixin, serializers.ModelSerializer):
    scoped_fields = {"category": Section}
    program = KeyRelatedField(slug_field="key", queryset=Program.objects.none(), help_text="Program key.")
    key = serializers.SlugField(
        required=False, help_text="Stable identifier; made from the name when omitted."
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username of the owner."
    )
    latest_value = serializers.DecimalField(max_digits=18, decimal_places=6, read_only=True, allow_null=True)
    freshness = serializers.SerializerMethodField()
    measurable = serializers.BooleanField(source="is_measurable", read_only=True)

    class Meta:
        model = Metric
        fields = [
            "id", "program", "key", "name", "description", "category", "unit", "direction", "baseline", "target",
            "window", "frequency", "level", "weight", "valid_for_days", "grace_days", "owner", "measurable",
            "latest_value", "freshness", "archived_at",
        ]  # fmt: skip
        read_only_fields = ["archived_at"]
        # DRF's unique-together validator would demand `key`, which the service derives from the name when it
        # is omitted; `metric_save` runs full_clean(), which checks the (program, key) constraint instead.
        validators: list[Any] = []

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["program"].queryset = Program.objects.for_user(request.user)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["program"].read_only = True
            fields["key"].read_only = True
        return fields

    @extend_schema_field(FreshnessSerializer)
    def get_freshness(self, metric: Metric) -> dict[str, Any]:
        if not hasattr(metric, "latest_observed_at"):
            return {"state": "missing", "observed_at": None, "valid_until": None, "age_days": None}
        # Exactly the documented fields: a metric's freshness has no pass/fail, only an item's has.
        return dict(
            FreshnessSerializer(freshness_data(selectors.metric_freshness(metric, timezone.now()))).data
        )


class MeasurementSerializer(ScopedRelatedMixin, serializers.ModelSerializer):
    scoped_fields = {"metric": Metric}
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    observed_at = serializers.DateTimeField(required=False, help_text="Defaults to now.")

    class Meta:
        model = Measurement
        fields = [
            "id",
            "metric",
            "value",
            "observed_at",
            "collected_at",
            "source",
            "run",
            "note",
            "recorded_by",
        ]
        read_only_fields = ["collected_at", "source", "run"]


class EvidenceSourceSerializer(ScopedRelatedMixin, serializers.ModelSerializer):
    scoped_fields = {"metric": Metric, "items": ChecklistItem}
    program = KeyRelatedField(slug_field="key", queryset=Program.objects.none(), help_text="Program key.")
    items = serializers.PrimaryKeyRelatedField(
        many=True, queryset=ChecklistItem.objects.none(), required=False, help_text="Checklist item ids."
    )
    last_run_status = serializers.CharField(read_only=True, allow_null=True, default=None)
    last_run_at = serializers.DateTimeField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = EvidenceSource
        fields = [
            "id", "program", "name", "kind", "config", "auth", "secret_env", "interval_seconds",
            "timeout_seconds", "evidence_valid_days", "enabled", "metric", "items", "next_run_at",
            "last_run_status", "last_run_at", "archived_at", "created_at",
        ]  # fmt: skip
        read_only_fields = ["next_run_at", "archived_at", "created_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["program"].queryset = Program.objects.for_user(request.user)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["program"].read_only = True
            fields["kind"].read_only = True
        return fields


class EvidenceSourceCreatedSerializer(EvidenceSourceSerializer):
    push_token = serializers.CharField(
        read_only=True, allow_null=True, help_text="Push sources only: shown once, store it now."
    )

    class Meta(EvidenceSourceSerializer.Meta):
        fields = [*EvidenceSourceSerializer.Meta.fields, "push_token"]


class PushTokenSerializer(serializers.Serializer):
    push_token = serializers.CharField(help_text="Shown once; the previous token no longer works.")


class PushSerializer(serializers.Serializer):
    value = serializers.DecimalField(max_digits=18, decimal_places=6, required=False, allow_null=True)
    passed = serializers.BooleanField(required=False, allow_null=True, default=None)
    observed_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Defaults to now.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class CollectionRunSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(source="source.program", slug_field="key", read_only=True)

    class Meta:
        model = CollectionRun
        fields = [
            "id", "source", "program", "slot", "trigger", "status", "started_at", "finished_at", "attempts",
            "duration_ms", "passed", "value", "error", "excerpt",
        ]  # fmt: skip
        read_only_fields = fields


class EvidenceSerializer(ScopedRelatedMixin, serializers.ModelSerializer):
    scoped_fields = {"item": ChecklistItem}
    file = serializers.FileField(required=False, write_only=True, help_text="Upload (multipart).")
    download = serializers.SerializerMethodField(help_text="Where to download the file, if any.")
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    observed_at = serializers.DateTimeField(required=False, help_text="Defaults to now.")
    valid_until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Defaults to the item's validity."
    )

    class Meta:
        model = Evidence
        fields = [
            "id", "item", "kind", "url", "file", "download", "sha256", "observed_at", "valid_until", "passed",
            "run", "note", "recorded_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["kind", "sha256", "run", "created_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download(self, evidence: Evidence) -> str | None:
        request = self.context.get("request")
        if not evidence.file or request is None:
            return None
        return request.build_absolute_uri(f"/api/v1/evidence/{evidence.pk}/file/")
