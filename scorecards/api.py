"""Maturity over the API: the what-if calculator, a program's maturity now or at a date, its snapshots, and the
executive scorecards (list, generate, download the PDF)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from roadmap.models import Program
from scorecards import engine, services
from scorecards.models import Scorecard, Snapshot


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


# --- executive scorecards ----------------------------------------------------------------------------------


class PDFRenderer(BaseRenderer):
    """Lets clients ask for the PDF with `Accept: application/pdf`; error bodies stay JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class ScorecardSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(slug_field="key", read_only=True)
    level = serializers.IntegerField(source="snapshot.level", read_only=True)
    index = serializers.DecimalField(source="snapshot.index", max_digits=6, decimal_places=2, read_only=True)
    score = serializers.DecimalField(
        source="snapshot.score", max_digits=5, decimal_places=2, read_only=True, allow_null=True
    )
    coverage = serializers.DecimalField(
        source="snapshot.coverage", max_digits=5, decimal_places=2, read_only=True, allow_null=True
    )
    freshness = serializers.DecimalField(
        source="snapshot.freshness", max_digits=5, decimal_places=2, read_only=True, allow_null=True
    )
    model_version = serializers.CharField(source="snapshot.model_version", read_only=True)
    inputs_hash = serializers.CharField(source="snapshot.inputs_hash", read_only=True)
    generated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Scorecard
        fields = [
            "id", "program", "as_of", "period", "snapshot", "level", "index", "score", "coverage", "freshness",
            "model_version", "inputs_hash", "summary", "sha256", "size", "pages", "template_version", "trigger",
            "generated_by", "generated_at", "delivered_to", "delivered_at", "pdf_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_pdf_url(self, scorecard: Scorecard) -> str:
        path = reverse("scorecard-pdf", args=[scorecard.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ScorecardRequestSerializer(serializers.Serializer):
    program = serializers.SlugField(help_text="Key of the program.")
    as_of = serializers.DateField(required=False, help_text="Default: today.")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("program", OpenApiTypes.STR, description="Only this program's (by key).")
        ],
        description="Scorecards of the programs where the caller is an executive, manager or auditor.",
    ),
    retrieve=extend_schema(
        responses={200: ScorecardSerializer, 403: OpenApiResponse(description="A contributor.")}
    ),
)
class ScorecardViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = ScorecardSerializer
    filterset_fields = ["period", "trigger"]
    ordering_fields = ["as_of", "generated_at"]

    def get_queryset(self) -> QuerySet[Scorecard]:
        user = self.request.user
        # Lists show only what the caller may read; single scorecards are found among the caller's programs so a
        # contributor is told "forbidden" (get_object) and an outsider "not found".
        scorecards = (
            Scorecard.objects.for_user(user)
            if self.action == "list"
            else Scorecard.objects.filter(program__in=Program.objects.for_user(user))
        )
        if key := self.request.query_params.get("program"):
            scorecards = scorecards.filter(program__key=key)
        return scorecards.select_related("program", "snapshot", "generated_by").defer("snapshot__result")

    def get_object(self) -> Scorecard:
        scorecard = super().get_object()
        try:
            return Scorecard.objects.readable(self.request.user, scorecard.pk)
        except Scorecard.DoesNotExist:
            raise Http404("No such scorecard.") from None

    @extend_schema(
        request=ScorecardRequestSerializer,
        responses={
            201: ScorecardSerializer,
            200: OpenApiResponse(
                ScorecardSerializer, description="Already generated from the same snapshot."
            ),
            400: OpenApiResponse(
                description="Unknown program, or a date in the future, before the program's start or before 2000."
            ),
            403: OpenApiResponse(description="Not a manager of the program."),
        },
        description="Generate the program's scorecard as of a date (default today) from its stored snapshot.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = ScorecardRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        program = Program.objects.for_user(request.user).filter(key=given.validated_data["program"]).first()
        if program is None:
            raise serializers.ValidationError({"program": "No program with this key."})
        scorecard, created = services.scorecard_generate(
            program=program,
            as_of=given.validated_data.get("as_of"),
            by=request.user,
            trigger=Scorecard.Trigger.API,
        )
        scorecard = self.get_queryset().get(pk=scorecard.pk)
        body = ScorecardSerializer(scorecard, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            403: OpenApiResponse(description="A contributor."),
            404: OpenApiResponse(
                description="No such scorecard among the caller's programs, or its PDF is missing from storage."
            ),
            409: OpenApiResponse(description="The stored PDF no longer matches its recorded sha256."),
        },
        description="The archived PDF, exactly as generated (its sha256 is in the `X-Content-SHA256` header).",
    )
    @action(detail=True, methods=["get"], url_path="pdf", renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request: Request, pk: str | None = None, format: str | None = None) -> HttpResponse:
        scorecard = self.get_object()
        try:
            return scorecard_pdf_response(scorecard)
        except services.ScorecardFileError as exc:
            raise ScorecardFileUnavailable(exc) from exc


def scorecard_file_error_status(error: services.ScorecardFileError) -> int:
    """404 when the archived PDF is gone from storage, 409 when it no longer matches its recorded digest: the
    scorecard exists, its file does not (or not as generated)."""
    if isinstance(error, services.ScorecardFileMissing):
        return status.HTTP_404_NOT_FOUND
    return status.HTTP_409_CONFLICT


class ScorecardFileUnavailable(APIException):
    """The API's answer to a missing or altered PDF: the status above, the service's message as the detail."""

    def __init__(self, error: services.ScorecardFileError) -> None:
        super().__init__(detail=str(error))
        self.status_code = scorecard_file_error_status(error)


def scorecard_pdf_response(scorecard: Scorecard) -> HttpResponse:
    """The archived PDF as a download (shared by the API and the admin). Raises `services.ScorecardFileError`
    when the file is missing or altered: each door answers it with `scorecard_file_error_status`."""
    response = HttpResponse(services.scorecard_content(scorecard=scorecard), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{scorecard.filename}"'
    response["X-Content-SHA256"] = scorecard.sha256
    return response
