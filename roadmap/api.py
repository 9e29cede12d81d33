"""REST endpoints for the roadmap. Querysets are scoped with `for_user`; writes go through services."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import django_filters
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cairn import outbox
from cairn.lib.uploads import read_upload
from roadmap import checklists, selectors, services
from roadmap.models import (
    ChecklistItem,
    ImportRun,
    Phase,
    Program,
    ProgramMembership,
    Section,
    item_is_overdue,
)
from roadmap.resources import EXPORT_FORMATS, checklist_export
from roadmap.serializers import (
    BulkStatusSerializer,
    ChecklistImportSerializer,
    ChecklistItemSerializer,
    ImportRunSerializer,
    MembershipSerializer,
    PhaseSerializer,
    ProgramSerializer,
    SectionSerializer,
)
from roadmap.tasks import items_set_status


def delay_notice_fields() -> dict[str, serializers.Field]:
    """What a 202 answer gains when the task queue was unreachable (`cairn.outbox.api_notice`)."""
    return {
        "delayed": serializers.BooleanField(
            required=False,
            help_text="Present, and true, when the task queue was unreachable: the work is recorded and runs "
            "when the queue is back.",
        ),
        "detail": serializers.CharField(required=False, help_text="The same, in words, when `delayed`."),
    }


IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The item's ETag as you read it; the change is refused with 412 if the item changed since.",
)


class ItemConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = ChecklistItemSerializer()


def item_etag(version: int) -> str:
    return f'"{version}"'


def if_match_version(request: Request) -> int | None:
    """The version named by an If-Match header (`"7"` or `W/"7"`), None without one or for `*`.

    An unreadable value is a 412: the client meant a precondition, and it cannot hold.
    """
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return None
    value = header.removeprefix("W/").strip('"')
    if not value.isdigit():
        return -1  # matches no version
    return int(value)


class RollupListMixin:
    """Lists compute their roll-ups for the page being returned, in a fixed number of queries."""

    def rollup_context(self, objects: list[Any]) -> dict[str, Any]:
        return {}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        objects = list(page if page is not None else queryset)
        context = {**self.get_serializer_context(), **self.rollup_context(objects)}
        data = self.get_serializer_class()(objects, many=True, context=context).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        context = {**self.get_serializer_context(), **self.rollup_context([instance])}
        return Response(self.get_serializer_class()(instance, context=context).data)


class ProgramViewSet(
    RollupListMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProgramSerializer
    lookup_field = "key"
    filterset_fields = ["status"]
    search_fields = ["key", "title", "summary"]
    ordering_fields = ["key", "title", "start_date", "status"]

    def get_queryset(self) -> QuerySet[Program]:
        return Program.objects.for_user(self.request.user).order_by("title")

    def rollup_context(self, objects: list[Program]) -> dict[str, Any]:
        return {"progress": selectors.program_progress(objects)}

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = services.program_create(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = services.program_update(
            program=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class ProgramScopedFilterSet(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__key", help_text="Program key.")


class PhaseFilterSet(ProgramScopedFilterSet):
    class Meta:
        model = Phase
        fields = ["code"]


class PhaseViewSet(
    RollupListMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = PhaseSerializer
    filterset_class = PhaseFilterSet
    ordering_fields = ["order", "code", "start_month"]

    def get_queryset(self) -> QuerySet[Phase]:
        programs = Program.objects.for_user(self.request.user)
        return (
            Phase.objects.filter(program__in=programs)
            .select_related("program")
            .order_by("program_id", "order")
        )

    def rollup_context(self, objects: list[Phase]) -> dict[str, Any]:
        return {"health": selectors.phase_health(objects)}

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = services.phase_save(
            phase=Phase(**serializer.validated_data), by=self.request.user
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        phase = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(phase, field, value)
        serializer.instance = services.phase_save(phase=phase, by=self.request.user)


def in_callers_programs(model: type[Phase | Section]) -> Any:
    """A foreign-key filter's choices: rows of the caller's programs only, so another program's id is refused
    exactly like an unknown one (django-filter would otherwise check the id against every row)."""

    def queryset(request: Request | None) -> QuerySet:
        if request is None:
            return model.objects.none()
        return model.objects.filter(program__in=Program.objects.for_user(request.user))

    return queryset


class SectionFilterSet(ProgramScopedFilterSet):
    parent = django_filters.ModelChoiceFilter(queryset=in_callers_programs(Section))
    phase = django_filters.ModelChoiceFilter(queryset=in_callers_programs(Phase))

    class Meta:
        model = Section
        fields = ["parent", "phase", "is_capability_area"]


class SectionViewSet(
    RollupListMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SectionSerializer
    filterset_class = SectionFilterSet
    search_fields = ["title"]
    ordering_fields = ["order", "title"]

    def get_queryset(self) -> QuerySet[Section]:
        programs = Program.objects.for_user(self.request.user)
        return (
            Section.objects.filter(program__in=programs)
            .select_related("program")
            .order_by("program_id", "order", "id")
        )

    def rollup_context(self, objects: list[Section]) -> dict[str, Any]:
        paths: dict[int, str] = {}
        for program_id in {s.program_id for s in objects}:
            paths.update(selectors.section_paths(program_id))
        return {"progress": selectors.section_progress(objects), "paths": paths}

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = services.section_save(
            section=Section(**serializer.validated_data), by=self.request.user
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        section = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(section, field, value)
        serializer.instance = services.section_save(section=section, by=self.request.user)


class ChecklistItemFilterSet(ProgramScopedFilterSet):
    phase = django_filters.ModelChoiceFilter(queryset=in_callers_programs(Phase))
    section = django_filters.ModelChoiceFilter(queryset=in_callers_programs(Section))
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner's username.")
    overdue = django_filters.BooleanFilter(method="filter_overdue", help_text="Past due and not done.")
    archived = django_filters.BooleanFilter(
        method="filter_archived", help_text="true: only archived items; false (default): only current ones."
    )

    class Meta:
        model = ChecklistItem
        fields = ["phase", "section", "status", "kind", "level", "blocking"]

    def filter_overdue(self, queryset: QuerySet[ChecklistItem], name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        overdue = queryset.overdue(timezone.localdate())
        return overdue if value else queryset.exclude(pk__in=overdue.values("pk"))

    def filter_archived(self, queryset: QuerySet[ChecklistItem], name: str, value: bool | None) -> QuerySet:
        return queryset.filter(archived_at__isnull=not value)

    @property
    def qs(self) -> QuerySet[ChecklistItem]:
        queryset = super().qs
        if self.form.cleaned_data.get("archived") is None:
            queryset = queryset.filter(archived_at__isnull=True)
        return queryset


# DRF fields whose `to_representation` hands back a value read by `.values()` unchanged (a str, an int, a bool, a
# valid choice): a list read from rows copies these. Any other field (dates, instants, decimals) formats through
# the serializer's own field object, so the row path and the serializer cannot disagree on a format.
PLAIN_FIELDS = frozenset(
    {serializers.CharField, serializers.IntegerField, serializers.BooleanField, serializers.ChoiceField}
)


class RowField(NamedTuple):
    """One key of a serializer's answer, read from a `.values()` row."""

    name: str
    column: str  # the row's key: a column, a joined column (`owner__username`) or a computed value's source
    represent: Callable[[Any], Any] | None  # None: the value is copied as it is


def _is_column(model: type[Model], attrs: list[str]) -> bool:
    """Whether a field source such as `owner.username` names a concrete column, through forward relations."""
    for position, attr in enumerate(attrs):
        try:
            field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return False
        last = position == len(attrs) - 1
        if not field.concrete or field.many_to_many or field.is_relation == last:
            return False
        if not last:
            model = field.related_model
    return bool(attrs)


def row_fields(serializer: serializers.ModelSerializer, *, computed: Collection[str]) -> list[RowField]:
    """How to build `serializer`'s answer from a `.values()` row: its own fields, in its order; `computed` names
    the sources (model properties) the caller adds to each row. A field no row can feed is a programming error."""
    if type(serializer).to_representation is not serializers.Serializer.to_representation:
        raise ImproperlyConfigured(
            f"{type(serializer).__name__} overrides to_representation: a list read from rows would not follow it."
        )
    model = serializer.Meta.model
    fields = []
    for field in serializer.fields.values():
        if field.write_only:
            continue
        path = "__".join(field.source_attrs)
        if isinstance(field, serializers.SlugRelatedField):
            fields.append(RowField(field.field_name, f"{path}__{field.slug_field}", None))
        elif type(field) is serializers.PrimaryKeyRelatedField and field.pk_field is None:
            fields.append(RowField(field.field_name, path, None))  # `.values()` reads the key itself
        elif isinstance(field, serializers.RelatedField) or not (
            field.source in computed or _is_column(model, field.source_attrs)
        ):
            raise ImproperlyConfigured(
                f"{type(serializer).__name__}.{field.field_name} (source {field.source!r}) cannot be read from "
                "a .values() row: compute it in the list, or give the list back to the serializer."
            )
        else:
            plain = type(field) in PLAIN_FIELDS
            fields.append(RowField(field.field_name, path, None if plain else field.to_representation))
    return fields


def rows_data(
    rows: list[dict[str, Any]], fields: list[RowField], computed: dict[str, Callable[[dict[str, Any]], Any]]
) -> list[dict[str, Any]]:
    """What the serializer answers for each row: None stays None (the serializer skips formatting it too)."""
    answer = []
    for row in rows:
        for source, compute in computed.items():
            row[source] = compute(row)
        answer.append(
            {
                name: value if (value := row[column]) is None or represent is None else represent(value)
                for name, column, represent in fields
            }
        )
    return answer


class ChecklistItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Checklist items. Items are never deleted: a removed line is archived by the next import."""

    serializer_class = ChecklistItemSerializer
    filterset_class = ChecklistItemFilterSet
    search_fields = ["key", "ref", "title", "description"]
    ordering_fields = ["due_date", "status", "weight", "level", "key", "ref", "updated_at"]

    def get_queryset(self) -> QuerySet[ChecklistItem]:
        return (
            ChecklistItem.objects.for_user(self.request.user)
            .select_related("program", "phase", "owner")
            .order_by("program_id", "order", "id")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The serializer's answer, built from `.values()` rows: a page of 100 model instances (and their program,
        # phase and owner) through ModelSerializer cost several times the query (issue 11). The fields come from
        # the serializer itself; tests/test_items_list_fast.py holds both paths to the same output.
        # No docstring here: drf-spectacular would make it the operation's description.
        today = timezone.localdate()
        computed = {
            "is_overdue": lambda row: item_is_overdue(
                due_date=row["due_date"], status=row["status"], today=today
            )
        }
        fields = row_fields(self.get_serializer(), computed=computed)
        columns = dict.fromkeys(
            [*(f.column for f in fields if f.column not in computed), "due_date", "status"]
        )
        queryset = self.filter_queryset(self.get_queryset()).values(*columns)
        page = self.paginate_queryset(queryset)
        data = rows_data(list(page if page is not None else queryset), fields, computed)
        return self.get_paginated_response(data) if page is not None else Response(data)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.checklist_item_create(by=self.request.user, **data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        response["ETag"] = item_etag(response.data["version"])
        return response

    @extend_schema(
        parameters=[IF_MATCH],
        responses={200: ChecklistItemSerializer, 409: ItemConflictSerializer, 412: ItemConflictSerializer},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change an item. Send the version you read (`If-Match` with its ETag, or `version` in the body):
        if someone changed the item since, nothing is saved and the answer (412 / 409) carries its current state."""
        item = self.get_object()
        header_version = if_match_version(request)
        if header_version is not None and header_version != item.version:
            return self._conflict(item, status.HTTP_412_PRECONDITION_FAILED)
        serializer = self.get_serializer(item, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        body_version = data.pop("version", None)
        try:
            item = services.checklist_item_update(
                item=item,
                by=request.user,
                data=data,
                expected_version=header_version if header_version is not None else body_version,
            )
        except services.EditConflict as conflict:
            failed = header_version is not None
            answer = status.HTTP_412_PRECONDITION_FAILED if failed else status.HTTP_409_CONFLICT
            return self._conflict(conflict.current, answer)
        response = Response(self.get_serializer(item).data)
        response["ETag"] = item_etag(item.version)
        return response

    @extend_schema(
        parameters=[IF_MATCH],
        responses={200: ChecklistItemSerializer, 409: ItemConflictSerializer, 412: ItemConflictSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def _conflict(self, current: ChecklistItem, answer: int) -> Response:
        detail = (
            f"The item changed since you read it: it is now version {current.version}. Nothing was saved; "
            "`current` is its state now."
        )
        response = Response({"detail": detail, "current": self.get_serializer(current).data}, status=answer)
        response["ETag"] = item_etag(current.version)
        return response

    @extend_schema(
        request=BulkStatusSerializer,
        responses={
            200: inline_serializer("BulkStatusDone", {"changed": serializers.IntegerField()}),
            202: inline_serializer(
                "BulkStatusQueued", {"queued": serializers.IntegerField(), **delay_notice_fields()}
            ),
        },
    )
    @action(detail=False, methods=["post"], url_path="bulk-status")
    def bulk_status(self, request: Request) -> Response:
        """Set the status of many items at once; all or nothing. Large selections run in the background."""
        payload = BulkStatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ids = sorted(set(payload.validated_data["ids"]))
        visible = set(self.get_queryset().filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [pk for pk in ids if pk not in visible]
        if unknown:
            return Response({"ids": [f"No checklist item with id {pk}." for pk in unknown[:20]]}, status=400)
        arguments = {
            "status": payload.validated_data["status"],
            "reason": payload.validated_data["reason"],
        }
        if len(ids) > settings.CAIRN_BULK_INLINE_LIMIT:
            # Refuse now rather than fail later in the worker where nobody sees the error.
            services.checklist_items_assert_status_changeable(item_ids=ids, by=request.user)
            delivery = outbox.enqueue(items_set_status, item_ids=ids, user_id=request.user.pk, **arguments)
            return Response(
                {"queued": len(ids), **outbox.api_notice(delivery)}, status=status.HTTP_202_ACCEPTED
            )
        changed = services.checklist_items_set_status(item_ids=ids, by=request.user, **arguments)
        return Response({"changed": changed})


class MembershipFilterSet(ProgramScopedFilterSet):
    class Meta:
        model = ProgramMembership
        fields = ["role"]


class MembershipViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet

    def get_queryset(self) -> QuerySet[ProgramMembership]:
        return ProgramMembership.objects.for_user(self.request.user).select_related("program", "user")


class ImportRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Every checklist import with its counts and errors; a queued one shows its progress here."""

    serializer_class = ImportRunSerializer
    filterset_fields = ["status"]
    ordering_fields = ["created_at"]

    def get_queryset(self) -> QuerySet[ImportRun]:
        runs = ImportRun.objects.for_user(self.request.user).select_related("program", "created_by")
        if key := self.request.query_params.get("program"):
            runs = runs.filter(program__key=key)
        return runs.defer("source")


class ChecklistImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="imports_checklist_create",
        request={"multipart/form-data": ChecklistImportSerializer},
        responses={
            200: OpenApiResponse(
                description="Imported (or dry run): the report, with `run` the import run id."
            ),
            202: OpenApiResponse(
                inline_serializer(
                    "ChecklistImportQueued",
                    {
                        "run": serializers.IntegerField(),
                        "status": serializers.CharField(),
                        "rows": serializers.IntegerField(),
                        **delay_notice_fields(),
                    },
                ),
                description="Large file queued: follow /api/v1/import-runs/{run}/.",
            ),
            400: OpenApiResponse(
                description="Unreadable file, or invalid rows (nothing written): the report."
            ),
            403: OpenApiResponse(description="Not a manager of the program."),
            404: OpenApiResponse(description="No such program."),
        },
        description=(
            "Import checklist items from a spreadsheet; one engine with the admin and `import_checklist`. Files "
            "over CAIRN_CHECKLIST_INLINE_ROWS rows are queued (202) and report progress on their import run."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = ChecklistImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        options = serializer.validated_data
        program = Program.objects.for_user(request.user).filter(key=options["program"]).first()
        if program is None:
            raise Http404("No such program.")
        upload = options["file"]
        mapping_file = options.get("mapping_file")
        with outbox.deliveries() as sent:
            try:
                run, report = checklists.import_run_start(
                    program=program,
                    data=read_upload(upload, limit=settings.CAIRN_CHECKLIST_MAX_BYTES),
                    source_name=upload.name or "",
                    file_format=options["format"],
                    by=request.user,
                    mapping=options["mapping"],
                    mapping_text=mapping_file.read().decode("utf-8", "replace") if mapping_file else "",
                    dry_run=options["dry_run"],
                    commit_valid=options["commit_valid"],
                )
            except checklists.ChecklistFileError as exc:
                return Response({"detail": str(exc), "row": exc.row}, status=status.HTTP_400_BAD_REQUEST)
        if report is None:
            return Response(
                {"run": run.pk, "status": run.status, "rows": run.rows, **outbox.api_notice(sent)},
                status=status.HTTP_202_ACCEPTED,
            )
        rejected = report.invalid and not report.committed
        return Response(
            {**report.as_dict(), "run": run.pk},
            status=status.HTTP_400_BAD_REQUEST if rejected else status.HTTP_200_OK,
        )


class PassthroughRenderer(BaseRenderer):
    """Lets a view answer any Accept header with a file it builds itself."""

    media_type = "*/*"
    format = "file"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else str(data).encode()


class ChecklistExportView(APIView):
    renderer_classes = [JSONRenderer, PassthroughRenderer]

    @extend_schema(
        operation_id="programs_checklist_retrieve",
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), default="csv")],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="No such program."),
        },
        description="The program's active checklist items in the import's canonical columns, formulas escaped.",
    )
    def get(self, request: Request, key: str) -> HttpResponse:
        program = Program.objects.for_user(request.user).filter(key=key).first()
        if program is None:
            raise Http404("No such program.")
        if not request.user.has_perm("roadmap.export_checklistitem"):
            raise PermissionDenied("You may not export checklists.")
        file_format = request.query_params.get("format", "csv")
        if file_format not in EXPORT_FORMATS:
            raise serializers.ValidationError({"format": f"Expected one of {', '.join(EXPORT_FORMATS)}."})
        content = checklist_export(program=program, by=request.user, file_format=file_format)
        format_class = EXPORT_FORMATS[file_format]()
        response = HttpResponse(content, content_type=format_class.get_content_type())
        response["Content-Disposition"] = f'attachment; filename="{program.key}-checklist.{file_format}"'
        return response
