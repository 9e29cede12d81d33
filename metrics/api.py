"""Metrics and evidence over the API. Querysets are scoped with `for_user`; writes go through `metrics.services`.

The push endpoint is the one door without a user: it authenticates by the source's own token (Authorization:
Bearer …), which is stored only as a hash and compared in constant time.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from cairn.api import Pagination, UtcIsoDateTimeFilter
from metrics import selectors, services
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from metrics.serializers import (
    CollectionRunSerializer,
    EvidenceSerializer,
    EvidenceSourceCreatedSerializer,
    EvidenceSourceSerializer,
    ItemFreshnessSerializer,
    MeasurementSerializer,
    MetricSerializer,
    PushSerializer,
    PushTokenSerializer,
    freshness_data,
)
from roadmap.models import ChecklistItem


def visible_to_caller(model: type[Metric | EvidenceSource | ChecklistItem]) -> Any:
    """A foreign-key filter's choices: only rows the caller sees, so an invisible id is refused like an unknown
    one (django-filter would otherwise check the id against every row and tell the two apart)."""

    def queryset(request: Request | None) -> QuerySet:
        return model.objects.for_user(request.user) if request is not None else model.objects.none()

    return queryset


def runs_visible_to_caller(request: Request | None) -> QuerySet[CollectionRun]:
    if request is None:
        return CollectionRun.objects.none()
    return CollectionRun.objects.filter(source__in=EvidenceSource.objects.for_user(request.user))


class ProgramKeyFilterSet(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__key", help_text="Program key.")


class MetricFilterSet(ProgramKeyFilterSet):
    class Meta:
        model = Metric
        fields = ["key", "direction"]


class MetricViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Metric definitions with their latest value and its freshness. Managers define and edit them."""

    serializer_class = MetricSerializer
    filterset_class = MetricFilterSet
    search_fields = ["key", "name", "description"]
    ordering_fields = ["order", "name", "key"]

    def get_queryset(self) -> QuerySet[Metric]:
        metrics = Metric.objects.for_user(self.request.user).select_related("program", "owner")
        return selectors.metrics_with_latest_value(metrics).order_by("program_id", "order", "pk")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        metric = services.metric_save(metric=Metric(**serializer.validated_data), by=self.request.user)
        serializer.instance = self.get_queryset().get(pk=metric.pk)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        metric = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(metric, field, value)
        services.metric_save(metric=metric, by=self.request.user)
        serializer.instance = self.get_queryset().get(pk=metric.pk)


class MeasurementFilterSet(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="metric__program__key", help_text="Program key.")
    observed_after = UtcIsoDateTimeFilter(field_name="observed_at", lookup_expr="gte")
    observed_before = UtcIsoDateTimeFilter(field_name="observed_at", lookup_expr="lt")
    metric = django_filters.ModelChoiceFilter(queryset=visible_to_caller(Metric))

    class Meta:
        model = Measurement
        fields = ["metric", "source"]


class MeasurementViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Values of metrics. Append-only: a correction is a newer measurement."""

    serializer_class = MeasurementSerializer
    filterset_class = MeasurementFilterSet
    ordering_fields = ["observed_at"]

    def get_queryset(self) -> QuerySet[Measurement]:
        return (
            Measurement.objects.filter(metric__in=Metric.objects.for_user(self.request.user))
            .select_related("recorded_by")
            .order_by("-observed_at", "-pk")
        )

    @extend_schema(
        responses={
            201: MeasurementSerializer,
            400: OpenApiResponse(description="No such metric, archived metric, or a future time."),
            403: OpenApiResponse(description="Neither a manager of the program nor the metric's owner."),
        }
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.measurement_record(
            metric=data["metric"],
            value=data["value"],
            observed_at=data.get("observed_at"),
            note=data.get("note", ""),
            by=self.request.user,
            source=Measurement.Source.API,
        )


class EvidenceSourceFilterSet(ProgramKeyFilterSet):
    metric = django_filters.ModelChoiceFilter(queryset=visible_to_caller(Metric))

    class Meta:
        model = EvidenceSource
        fields = ["kind", "enabled", "metric"]


class PushThrottle(AnonRateThrottle):
    rate = "120/minute"


class EvidenceSourceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Collector configurations. Managers create, edit, run now and rotate push tokens; disable to stop."""

    serializer_class = EvidenceSourceSerializer
    filterset_class = EvidenceSourceFilterSet
    search_fields = ["name"]
    ordering_fields = ["name", "next_run_at"]

    def get_queryset(self) -> QuerySet[EvidenceSource]:
        sources = (
            EvidenceSource.objects.for_user(self.request.user)
            .select_related("program")
            .prefetch_related("items")
        )
        return selectors.sources_with_last_run(sources).order_by("program_id", "name", "pk")

    @extend_schema(
        responses={
            201: EvidenceSourceCreatedSerializer,
            400: OpenApiResponse(
                description="A configuration its kind cannot use, or feeds of another program."
            ),
            403: OpenApiResponse(description="Not a manager of the program."),
        }
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        items = data.pop("items", None)
        source = EvidenceSource(**data)
        token = services.source_save(
            source=source,
            by=request.user,
            item_ids=[item.pk for item in items] if items is not None else None,
        )
        instance = self.get_queryset().get(pk=source.pk)
        instance.push_token = token
        body = EvidenceSourceCreatedSerializer(instance, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        source = serializer.instance
        data = dict(serializer.validated_data)
        items = data.pop("items", None)
        for field, value in data.items():
            setattr(source, field, value)
        services.source_save(
            source=source,
            by=self.request.user,
            item_ids=[item.pk for item in items] if items is not None else None,
        )
        serializer.instance = self.get_queryset().get(pk=source.pk)

    @extend_schema(
        request=None,
        responses={
            200: CollectionRunSerializer,
            400: OpenApiResponse(description="A push source: nothing to fetch."),
            403: OpenApiResponse(description="Not a manager of the program."),
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Collect once now, one attempt; the run, its result and the start of the raw response."""
        [run] = services.sources_collect_now(sources=[self.get_object()], by=request.user, max_attempts=1)
        return Response(CollectionRunSerializer(run).data)

    @extend_schema(
        request=None,
        responses={
            200: PushTokenSerializer,
            400: OpenApiResponse(description="Not a push source."),
            403: OpenApiResponse(description="Not a manager of the program."),
        },
    )
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request: Request, pk: str | None = None) -> Response:
        """A new push token, shown once; the old one stops working at once."""
        token = services.source_rotate_token(source=self.get_object(), by=request.user)
        return Response({"push_token": token})

    @extend_schema(
        request=PushSerializer,
        responses={
            201: CollectionRunSerializer,
            400: OpenApiResponse(description="Neither value nor passed, or what this source does not feed."),
            401: OpenApiResponse(description="No token, a wrong token, or a disabled source."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[AllowAny],
        authentication_classes=[],
        throttle_classes=[PushThrottle],
        parser_classes=[JSONParser],
    )
    def push(self, request: Request, pk: str | None = None) -> Response:
        """External systems post a value and/or a pass/fail result with the source's token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        source = None
        if scheme.lower() == "bearer" and token and (pk or "").isdigit():
            source = services.source_for_push_token(int(pk or 0), token.strip())
        if source is None:
            return Response(
                {"detail": "A valid push token is required (Authorization: Bearer <token>)."},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="push"'},
            )
        payload = PushSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = services.source_push(source=source, **payload.validated_data)
        return Response(CollectionRunSerializer(run).data, status=status.HTTP_201_CREATED)


class CollectionRunFilterSet(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="source__program__key", help_text="Program key.")
    source = django_filters.ModelChoiceFilter(queryset=visible_to_caller(EvidenceSource))

    class Meta:
        model = CollectionRun
        fields = ["source", "status", "trigger"]


class CollectionRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Every collection attempt: when, how long, how many attempts, and what went wrong."""

    serializer_class = CollectionRunSerializer
    filterset_class = CollectionRunFilterSet
    ordering_fields = ["started_at"]

    def get_queryset(self) -> QuerySet[CollectionRun]:
        return (
            CollectionRun.objects.filter(source__in=EvidenceSource.objects.for_user(self.request.user))
            .select_related("source__program")
            .order_by("-started_at", "-pk")
        )


class EvidenceFilterSet(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="item__program__key", help_text="Program key.")
    item = django_filters.ModelChoiceFilter(queryset=visible_to_caller(ChecklistItem))
    run = django_filters.ModelChoiceFilter(queryset=runs_visible_to_caller)

    class Meta:
        model = Evidence
        fields = ["item", "kind", "passed", "run"]


class EvidenceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Evidence on checklist items: links and files people attach, and the checks collectors record."""

    serializer_class = EvidenceSerializer
    filterset_class = EvidenceFilterSet
    ordering_fields = ["observed_at"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Evidence]:
        return (
            Evidence.objects.for_user(self.request.user)
            .select_related("recorded_by")
            .order_by("-observed_at", "-pk")
        )

    @extend_schema(
        responses={
            201: EvidenceSerializer,
            400: OpenApiResponse(
                description="Neither or both of url and file, a file too large, or bad dates."
            ),
            403: OpenApiResponse(description="Neither a manager of the program nor the item's owner."),
        }
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.evidence_attach(
            item=data["item"],
            by=self.request.user,
            url=data.get("url", ""),
            upload=data.get("file"),
            observed_at=data.get("observed_at"),
            valid_until=data.get("valid_until"),
            passed=data.get("passed", True),
            note=data.get("note", ""),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("program", str, description="Program key."),
            OpenApiParameter("state", str, enum=selectors.FRESHNESS_STATES),
        ],
        responses=ItemFreshnessSerializer(many=True),
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=Pagination)
    def freshness(self, request: Request, format: str | None = None) -> Response:
        """Each checklist item's latest evidence: how old, and whether fresh, stale, expired or missing."""
        items = ChecklistItem.objects.for_user(request.user).filter(archived_at__isnull=True)
        if program := request.query_params.get("program"):
            items = items.filter(program__key=program)
        items = selectors.items_with_latest_evidence(items.select_related("program")).order_by(
            "program_id", "order", "pk"
        )
        state = request.query_params.get("state")
        if state:
            items = selectors.items_in_freshness_state(items, state, timezone.now())
        page = self.paginate_queryset(items)
        now = timezone.now()
        rows = [
            {"item": item.pk, "program": item.program.key, "key": item.key, "title": item.title,
             **freshness_data(selectors.item_freshness(item, now))}
            for item in page
        ]  # fmt: skip
        return self.get_paginated_response(ItemFreshnessSerializer(rows, many=True).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: None})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str | None = None, format: str | None = None) -> FileResponse:
        """The attached file, as uploaded."""
        evidence = self.get_object()
        if not evidence.file:
            raise Http404("This evidence has no file.")
        return evidence_file_response(evidence)


def evidence_file_response(evidence: Evidence) -> FileResponse:
    """A download of an evidence file, never rendered inline (it is user content)."""
    name = evidence.file.name.rsplit("/", 1)[-1]
    response = FileResponse(evidence.file.open("rb"), as_attachment=True, filename=name)
    response["X-Content-Type-Options"] = "nosniff"
    return response
