"""Maturity over the API: the what-if calculator, a program's maturity now or at a date, and its snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from roadmap.models import Program
from scorecards import engine, services
from scorecards.models import Snapshot


class ScoreView(APIView):
    @extend_schema(
        operation_id="score_create",
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="The requirement and field at fault."),
        },
        description="Evaluate a requirements document in the MMS-1 JSON contract (DESIGN §5) without storing it.",
    )
    def post(self, request: Request) -> Response:
        try:
            return Response(engine.evaluate(request.data))
        except engine.EngineError as exc:
            return Response(
                {"detail": str(exc), "requirement": exc.requirement, "field": exc.field},
                status=status.HTTP_400_BAD_REQUEST,
            )


class MaturityView(APIView):
    @extend_schema(
        operation_id="programs_maturity_retrieve",
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE, description="Default: now.")],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such program.")},
        description="The program's maturity (MMS-1) with per-area figures, phase status, trend and evidence.",
    )
    def get(self, request: Request, key: str) -> Response:
        program = Program.objects.for_user(request.user).filter(key=key).first()
        if program is None:
            raise Http404("No such program.")
        as_of = None
        if text := request.query_params.get("as_of"):
            try:
                as_of = (
                    datetime.fromisoformat(text.replace("Z", "+00:00"))
                    if "T" in text
                    else datetime.combine(date.fromisoformat(text), time.max, tzinfo=UTC)
                )
            except ValueError:
                raise serializers.ValidationError(
                    {"as_of": "Expected an ISO date, e.g. 2026-11-28."}
                ) from None
            as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        return Response(services.program_maturity(program=program, as_of=as_of).as_dict())


class SnapshotSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Snapshot
        fields = [
            "id", "program", "as_of", "model_version", "inputs_hash", "config_hash", "level", "index", "score",
            "coverage", "freshness", "result", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SnapshotListSerializer(SnapshotSerializer):
    class Meta(SnapshotSerializer.Meta):
        # Lists leave out the per-requirement result; fetch one snapshot for it.
        fields = [name for name in SnapshotSerializer.Meta.fields if name != "result"]
        read_only_fields = fields


class SnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_fields = ["as_of", "model_version"]
    ordering_fields = ["as_of"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return SnapshotListSerializer if self.action == "list" else SnapshotSerializer

    def get_queryset(self) -> QuerySet[Snapshot]:
        snapshots = Snapshot.objects.for_user(self.request.user).select_related("program")
        if key := self.request.query_params.get("program"):
            snapshots = snapshots.filter(program__key=key)
        if self.action == "list":
            snapshots = snapshots.defer("result")
        return snapshots.order_by("-as_of", "-id")
