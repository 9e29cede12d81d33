"""Representations of the roadmap for the API. Validation of shape only; rules live in services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from cairn.api import KeyRelatedField
from roadmap.models import ChecklistItem, ImportRun, Phase, Program, ProgramMembership, Section
from roadmap.selectors import PhaseHealth, Progress


def _program_fixed_on_update(
    serializer: serializers.Serializer, fields: dict[str, serializers.Field]
) -> None:
    """Rows never move between programs: permissions, keys and history are per program."""
    if serializer.instance is not None and not isinstance(serializer.instance, list | tuple):
        fields["program"].read_only = True


def progress_data(progress: Progress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "done": progress.totals.done,
        "total": progress.totals.count,
        "percent": progress.percent,
        "label": progress.label,
        "blocked": progress.totals.blocked,
        "overdue": progress.totals.overdue,
    }


class ProgramSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Program
        fields = [
            "key", "title", "subtitle", "summary", "start_date", "status", "levels", "level_rules", "area_depth",
            "in_progress_credit", "rag_red_below", "rag_amber_below", "progress", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def get_progress(self, program: Program) -> dict[str, Any] | None:
        return progress_data(self.context.get("progress", {}).get(program.pk))

    def validate_key(self, value: str) -> str:
        if self.instance is not None and value != self.instance.key:
            raise serializers.ValidationError("A program's key cannot change; URLs and imports rely on it.")
        return value


class PhaseSerializer(serializers.ModelSerializer):
    program = KeyRelatedField(slug_field="key", queryset=Program.objects.none())
    planned_start = serializers.DateField(read_only=True)
    planned_end = serializers.DateField(read_only=True)
    health = serializers.SerializerMethodField()

    class Meta:
        model = Phase
        fields = [
            "id", "program", "order", "code", "name", "start_month", "end_month", "planned_start", "planned_end",
            "objectives", "target_level", "actual_start", "actual_end", "health",
        ]  # fmt: skip

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["program"].queryset = Program.objects.for_user(request.user)
        _program_fixed_on_update(self, fields)
        return fields

    def get_health(self, phase: Phase) -> dict[str, Any] | None:
        health: PhaseHealth | None = self.context.get("health", {}).get(phase.pk)
        if health is None:
            return None
        return {
            "progress": progress_data(health.progress),
            "expected_percent": None if health.expected is None else round(health.expected * 100),
            "rag": health.rag,
            "reasons": health.reasons,
            "forecast_end": health.forecast_end,
        }


class SectionSerializer(serializers.ModelSerializer):
    program = KeyRelatedField(slug_field="key", queryset=Program.objects.none())
    path = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Section
        fields = [
            "id", "program", "parent", "phase", "title", "path", "order", "is_capability_area", "default_level",
            "weight", "archived_at", "progress",
        ]  # fmt: skip
        read_only_fields = ["archived_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["program"].queryset = Program.objects.for_user(request.user)
            fields["parent"].queryset = Section.objects.filter(
                program__in=Program.objects.for_user(request.user)
            )
            fields["phase"].queryset = Phase.objects.filter(
                program__in=Program.objects.for_user(request.user)
            )
        _program_fixed_on_update(self, fields)
        return fields

    def get_path(self, section: Section) -> str:
        return self.context.get("paths", {}).get(section.pk, section.title)

    def get_progress(self, section: Section) -> dict[str, Any] | None:
        return progress_data(self.context.get("progress", {}).get(section.pk))


class ChecklistItemSerializer(serializers.ModelSerializer):
    program = KeyRelatedField(slug_field="key", queryset=Program.objects.none())
    section = serializers.PrimaryKeyRelatedField(queryset=Section.objects.none())
    phase = serializers.SlugRelatedField(slug_field="code", read_only=True)
    owner = serializers.CharField(
        source="owner.username", allow_null=True, required=False, help_text="Username of a program member."
    )
    is_overdue = serializers.BooleanField(read_only=True)
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Raised by every change. Send the version you read with a change: 409 if the item changed since.",
    )

    class Meta:
        model = ChecklistItem
        fields = [
            "id", "key", "ref", "program", "section", "phase", "title", "description", "kind", "status",
            "status_reason", "owner", "due_date", "weight", "level", "blocking", "is_overdue", "completed_at",
            "attested_at", "valid_for_days", "grace_days", "archived_at", "version", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["completed_at", "attested_at", "archived_at", "created_at", "updated_at"]
        extra_kwargs = {"key": {"required": False, "allow_blank": True}}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            visible = Program.objects.for_user(request.user)
            fields["program"].queryset = visible
            fields["section"].queryset = Section.objects.filter(program__in=visible)
        _program_fixed_on_update(self, fields)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["key"].read_only = True  # an item's key is its identity across re-imports
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        program = attrs.get("program") or (self.instance.program if self.instance else None)
        owner_data = attrs.pop("owner", None)
        if owner_data is not None or "owner" in self.initial_data:
            username = (owner_data or {}).get("username")
            attrs["owner"] = None
            if username:
                owner = (
                    get_user_model().objects.filter(username=username, memberships__program=program).first()
                )
                if owner is None:
                    # Same message whether the user exists or not: the API does not reveal accounts.
                    raise serializers.ValidationError(
                        {"owner": f"No member of this program is called {username!r}."}
                    )
                attrs["owner"] = owner
        section = attrs.get("section")
        if section is not None and program is not None and section.program_id != program.pk:
            raise serializers.ValidationError({"section": "The section belongs to another program."})
        return attrs


class BulkStatusSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=10_000
    )
    status = serializers.ChoiceField(choices=ChecklistItem.Status.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class MembershipSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(slug_field="key", read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ProgramMembership
        fields = ["id", "program", "user", "role", "created_at"]


class ChecklistImportSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="CSV, XLSX, JSON or YAML.")
    program = serializers.SlugField(max_length=64, help_text="Key of the program to import into.")
    format = serializers.ChoiceField(choices=["", "csv", "xlsx", "json", "yaml"], required=False, default="")
    mapping = serializers.CharField(
        required=False, default="", help_text="Name of a built-in mapping, e.g. asvs."
    )
    mapping_file = serializers.FileField(
        required=False, help_text="A YAML mapping instead of a built-in one."
    )
    dry_run = serializers.BooleanField(default=False)
    commit_valid = serializers.BooleanField(
        default=False, help_text="Import the valid rows, report the rest."
    )


class ImportRunSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(slug_field="key", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ImportRun
        fields = [
            "id", "program", "source_name", "file_format", "mapping", "sha256", "dry_run", "commit_valid",
            "status", "rows", "progress", "report", "error", "created_by", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields
