"""Waivers over the API: list and read the waivers of one's programs, request one, approve or revoke it.

The queryset and the item/metric choices are scoped with `for_user`, so another program's rows answer 404 or
"No such item." and never show that they exist; every write goes through `governance.waivers`.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance import waivers
from governance.models import Waiver
from metrics.models import Metric
from roadmap.models import ChecklistItem


class WaiverSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(slug_field="key", read_only=True, help_text="Program key.")
    item = serializers.PrimaryKeyRelatedField(
        queryset=ChecklistItem.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No such item.", "incorrect_type": "Give the item's id."},
        help_text="Checklist item id; give this or `metric`.",
    )
    metric = serializers.PrimaryKeyRelatedField(
        queryset=Metric.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No such metric.", "incorrect_type": "Give the metric's id."},
        help_text="Metric id; give this or `item`.",
    )
    requirement = serializers.SerializerMethodField(
        help_text="The maturity requirement: item:KEY or metric:KEY."
    )
    state = serializers.SerializerMethodField()
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, help_text="Username.")
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username; empty while pending."
    )

    class Meta:
        model = Waiver
        fields = [
            "id", "program", "requirement", "item", "metric", "type", "reason", "expires_at", "state",
            "requested_by", "created_at", "approved_by", "approved_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "approved_at", "revoked_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            # Only what the caller can see; whether they may waive it is the service's decision (403).
            fields["item"].queryset = ChecklistItem.objects.for_user(request.user)
            fields["metric"].queryset = Metric.objects.for_user(request.user)
        return fields

    def get_requirement(self, waiver: Waiver) -> str:
        return f"item:{waiver.item.key}" if waiver.item is not None else f"metric:{waiver.metric.key}"

    @extend_schema_field(serializers.ChoiceField(choices=waivers.WaiverState.choices))
    def get_state(self, waiver: Waiver) -> str:
        return waivers.waiver_state(waiver).value


class WaiverRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Kept in the history."
    )


class WaiverFilterSet(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__key", help_text="Program key.")
    state = django_filters.ChoiceFilter(
        choices=waivers.WaiverState.choices, method="filter_state", help_text="State now."
    )

    class Meta:
        model = Waiver
        fields = ["type"]

    def filter_state(self, queryset: QuerySet[Waiver], name: str, value: str) -> QuerySet[Waiver]:
        return waivers.waivers_with_state(queryset, value)


class WaiverViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Waivers of the caller's programs. A waiver is never edited or deleted: approve or revoke it."""

    serializer_class = WaiverSerializer
    filterset_class = WaiverFilterSet
    search_fields = ["reason", "item__key", "item__title", "metric__key", "metric__name"]
    ordering_fields = ["created_at", "expires_at", "approved_at"]

    def get_queryset(self) -> QuerySet[Waiver]:
        return (
            Waiver.objects.for_user(self.request.user)
            .select_related("program", "item", "metric", "requested_by", "approved_by")
            .order_by("-created_at", "-id")
        )

    @extend_schema(
        responses={
            201: WaiverSerializer,
            400: OpenApiResponse(
                description="No such item or metric, no reason, no future expiry, or already waived."
            ),
            403: OpenApiResponse(
                description="Neither a manager of the program nor the contributor who owns it."
            ),
        }
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = waivers.waiver_request(by=self.request.user, **serializer.validated_data)

    @extend_schema(
        request=None,
        responses={
            200: WaiverSerializer,
            400: OpenApiResponse(description="Revoked, expired or already approved."),
            403: OpenApiResponse(description="Not a manager of the program, or the waiver's own requester."),
            404: OpenApiResponse(description="No such waiver."),
        },
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve a pending waiver; never by the person who requested it (separation of duties)."""
        waiver = waivers.waiver_approve(waiver=self.get_object(), by=request.user)
        return Response(self.get_serializer(waiver).data)

    @extend_schema(
        request=WaiverRevokeSerializer,
        responses={
            200: WaiverSerializer,
            400: OpenApiResponse(description="Already revoked."),
            403: OpenApiResponse(description="Neither a manager of the program nor the waiver's requester."),
            404: OpenApiResponse(description="No such waiver."),
        },
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Withdraw a waiver, pending or approved; maturity stops counting it at once."""
        payload = WaiverRevokeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        waiver = waivers.waiver_revoke(
            waiver=self.get_object(), by=request.user, reason=payload.validated_data["reason"]
        )
        return Response(self.get_serializer(waiver).data)
