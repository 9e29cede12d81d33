"""Strategy import and export over the API; the same services as the admin and the CLI."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cairn.lib.uploads import read_upload
from cairn.openapi import VALIDATION_ERROR_SCHEMA
from roadmap.models import Program
from strategy.parser import StrategyError
from strategy.services import strategy_export, strategy_import


class StrategyImportSerializer(serializers.Serializer):
    # An empty file reaches the parser, which says what was expected instead of "empty file".
    file = serializers.FileField(allow_empty_file=True, help_text="The markdown strategy (UTF-8).")
    program = serializers.SlugField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Program key; default: derived from the title.",
    )
    dry_run = serializers.BooleanField(default=False, help_text="Report what would change; write nothing.")


_counts = inline_serializer(
    "ImportCounts",
    {name: serializers.IntegerField() for name in ("added", "changed", "archived", "unchanged")},
)
ImportReportSerializer = inline_serializer(
    "StrategyImportReport",
    {
        "program": serializers.CharField(),
        "created": serializers.BooleanField(),
        "dry_run": serializers.BooleanField(),
        "phases": serializers.IntegerField(),
        "sections": serializers.IntegerField(),
        "items": _counts,
        "metrics": _counts,
        "document": serializers.DictField(child=serializers.CharField(allow_null=True)),
        "warnings": serializers.ListField(child=serializers.CharField()),
    },
)
IMPORT_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "line": {"type": "integer", "nullable": True}},
    "required": ["detail", "line"],
}


class StrategyImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="imports_strategy_create",
        request={"multipart/form-data": StrategyImportSerializer},
        responses={
            200: ImportReportSerializer,
            201: ImportReportSerializer,
            400: OpenApiResponse(
                {"anyOf": [IMPORT_ERROR_SCHEMA, VALIDATION_ERROR_SCHEMA]},
                description="A document that cannot be imported (with its line), or an invalid form.",
            ),
            403: OpenApiResponse(description="Not a manager of the program / may not create programs."),
        },
        description=(
            "Create (201) or update (200) a program from a markdown strategy. With dry_run the report says what "
            "would change and nothing is written. A document that cannot be imported answers 400 with the line."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = StrategyImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        try:
            report = strategy_import(
                data=read_upload(upload, limit=settings.CAIRN_STRATEGY_MAX_BYTES),
                by=request.user,
                program_key=serializer.validated_data.get("program", ""),
                dry_run=serializer.validated_data["dry_run"],
                source_name=upload.name or "",
            )
        except StrategyError as exc:
            return Response({"detail": str(exc), "line": exc.line}, status=status.HTTP_400_BAD_REQUEST)
        created = report.created and not report.dry_run
        return Response(report.as_dict(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MarkdownRenderer(BaseRenderer):
    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, str):
            return data.encode()
        return str(data.get("detail", data) if isinstance(data, dict) else data).encode()


class StrategyExportView(APIView):
    renderer_classes = [MarkdownRenderer, JSONRenderer]

    @extend_schema(
        operation_id="programs_strategy_retrieve",
        responses={
            (200, "text/markdown"): OpenApiTypes.STR,
            404: OpenApiResponse(description="No such program."),
        },
        description="The program as a markdown strategy document, with [x] for done items.",
    )
    def get(self, request: Request, key: str) -> Any:
        program = Program.objects.for_user(request.user).filter(key=key).first()
        if program is None:
            raise Http404("No such program.")
        text = strategy_export(program=program, by=request.user)
        return Response(text, headers={"Content-Disposition": f'attachment; filename="{program.key}.md"'})
