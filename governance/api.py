"""Document control over the API: documents, versions and their workflow, reviews, approvals, acknowledgements.

Every queryset is scoped to the caller's programs; every state change goes through `governance.services`.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance import services
from governance.models import Acknowledgement, Approval, ControlledDocument, DocumentVersion, Review


def visible_to_caller(model: type[ControlledDocument | DocumentVersion]) -> Any:
    """A foreign-key filter's choices: only rows the caller sees, so an invisible id is refused like an unknown
    one (django-filter would otherwise check the id against every row and tell the two apart)."""

    def queryset(request: Request | None) -> QuerySet:
        return model.objects.for_user(request.user) if request is not None else model.objects.none()

    return queryset


def versions_acknowledgeable_by_caller(request: Request | None) -> QuerySet[DocumentVersion]:
    """Versions of the caller's programs, and those someone outside the program was asked to acknowledge."""
    if request is None:
        return DocumentVersion.objects.none()
    return DocumentVersion.objects.filter(
        Q(pk__in=DocumentVersion.objects.for_user(request.user).values("pk"))
        | Q(acknowledgements__user=request.user)
    ).distinct()


class DocumentSerializer(serializers.ModelSerializer):
    program = serializers.SlugRelatedField(slug_field="key", read_only=True)
    approver_user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    overdue_days = serializers.SerializerMethodField()

    class Meta:
        model = ControlledDocument
        fields = [
            "id", "program", "doc_type", "doc_id", "title", "version_label", "owner", "approver", "approver_user",
            "distribution", "last_updated", "review_date", "next_review", "review_cycle", "classification",
            "last_updated_on", "last_reviewed_on", "next_review_due", "review_cadence_months", "overdue_days",
        ]  # fmt: skip
        read_only_fields = [
            "id",
            "program",
            "doc_type",
            "last_updated_on",
            "last_reviewed_on",
            "next_review_due",
        ]

    def get_overdue_days(self, document: ControlledDocument) -> int | None:
        """Days past the next review date (0 or more), or None when no review date is known or it is ahead."""
        today = self.context["today"]
        if document.next_review_due is None or document.next_review_due > today:
            return None
        return (today - document.next_review_due).days


class DocumentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    serializer_class = DocumentSerializer
    filterset_fields = ["doc_type"]
    search_fields = ["title", "doc_id", "owner", "approver"]

    def get_queryset(self) -> QuerySet[ControlledDocument]:
        documents = ControlledDocument.objects.for_user(self.request.user).select_related(
            "program", "approver_user"
        )
        if key := self.request.query_params.get("program"):
            documents = documents.filter(program__key=key)
        return documents.order_by("program__key", "title")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = services.controlled_document_update(
            document=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DocumentVersion
        fields = [
            "id", "document", "label", "state", "source_name", "source_text", "sha256", "change_summary",
            "effective_on", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "id",
            "state",
            "source_name",
            "sha256",
            "effective_on",
            "created_by",
            "created_at",
        ]


DecisionSerializer = inline_serializer(
    "VersionDecision", {"comment": serializers.CharField(required=False, default="", allow_blank=True)}
)


class PublishSerializer(serializers.Serializer):
    effective_on = serializers.DateField(required=False, help_text="Default: today.")


class VersionFilterSet(django_filters.FilterSet):
    document = django_filters.ModelChoiceFilter(queryset=visible_to_caller(ControlledDocument))

    class Meta:
        model = DocumentVersion
        fields = ["document", "state"]


class VersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Versions and their workflow: submit, approve, request changes, reject, publish, mark obsolete."""

    serializer_class = VersionSerializer
    filterset_class = VersionFilterSet

    def get_queryset(self) -> QuerySet[DocumentVersion]:
        return DocumentVersion.objects.for_user(self.request.user).select_related("document", "created_by")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        document = data["document"]
        if not ControlledDocument.objects.for_user(self.request.user).filter(pk=document.pk).exists():
            raise serializers.ValidationError({"document": "No such document."})
        serializer.instance = services.version_create_draft(
            document=document,
            by=self.request.user,
            source_text=data["source_text"],
            label=data.get("label", ""),
            change_summary=data.get("change_summary", ""),
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        if set(serializer.validated_data) - {"source_text"}:
            raise serializers.ValidationError("Only a draft's source_text can be changed.")
        serializer.instance = services.version_update_text(
            version=serializer.instance,
            by=self.request.user,
            source_text=serializer.validated_data["source_text"],
        )

    def _respond(self, version: DocumentVersion) -> Response:
        version.refresh_from_db()
        return Response(VersionSerializer(version, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(services.version_submit(version=self.get_object(), by=request.user))

    def _decide(self, request: Request, decision: str) -> Response:
        # Validated like any body: a JSON null or list was a 500, a NUL in the comment a 500 on PostgreSQL.
        payload = type(DecisionSerializer)(data=request.data)
        payload.is_valid(raise_exception=True)
        approval = services.version_decide(
            version=self.get_object(),
            by=request.user,
            decision=decision,
            comment=payload.validated_data["comment"],
        )
        return self._respond(approval.version)

    @extend_schema(request=DecisionSerializer, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._decide(request, Approval.Decision.APPROVED)

    @extend_schema(request=DecisionSerializer, responses=VersionSerializer)
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request: Request, pk: str | None = None) -> Response:
        return self._decide(request, Approval.Decision.CHANGES_REQUESTED)

    @extend_schema(request=DecisionSerializer, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._decide(request, Approval.Decision.REJECTED)

    @extend_schema(request=PublishSerializer, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_publish(
            version=self.get_object(),
            by=request.user,
            effective_on=serializer.validated_data.get("effective_on"),
        )
        return self._respond(version)

    @extend_schema(request=None, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def obsolete(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(services.version_obsolete(version=self.get_object(), by=request.user))


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Review
        fields = [
            "id", "document", "version", "kind", "due_on", "state", "outcome", "reviewer", "comment", "opened_at",
            "completed_at", "escalated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id",
            "version",
            "kind",
            "state",
            "outcome",
            "reviewer",
            "opened_at",
            "completed_at",
            "escalated_at",
        ]


class CompleteSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Review.Outcome.choices)
    comment = serializers.CharField(required=False, default="")


class ReviewFilterSet(django_filters.FilterSet):
    document = django_filters.ModelChoiceFilter(queryset=visible_to_caller(ControlledDocument))

    class Meta:
        model = Review
        fields = ["document", "state", "kind"]


class ReviewViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = ReviewSerializer
    filterset_class = ReviewFilterSet

    def get_queryset(self) -> QuerySet[Review]:
        return Review.objects.filter(
            document__in=ControlledDocument.objects.for_user(self.request.user)
        ).select_related("document", "reviewer")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        if not ControlledDocument.objects.for_user(self.request.user).filter(pk=data["document"].pk).exists():
            raise serializers.ValidationError({"document": "No such document."})
        serializer.instance = services.review_open(
            document=data["document"],
            by=self.request.user,
            due_on=data["due_on"],
            comment=data.get("comment", ""),
        )

    @extend_schema(request=CompleteSerializer, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        serializer = CompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.review_complete(
            review=self.get_object(),
            by=request.user,
            outcome=serializer.validated_data["outcome"],
            comment=serializer.validated_data.get("comment", ""),
        )
        return Response(ReviewSerializer(review).data)


class ApprovalSerializer(serializers.ModelSerializer):
    signer = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Approval
        fields = ["id", "version", "decision", "signer", "content_sha256", "comment", "created_at"]
        read_only_fields = fields


class ApprovalFilterSet(django_filters.FilterSet):
    version = django_filters.ModelChoiceFilter(queryset=visible_to_caller(DocumentVersion))

    class Meta:
        model = Approval
        fields = ["version", "decision"]


class ApprovalViewSet(viewsets.ReadOnlyModelViewSet):
    """Approvals are append-only: they are made through a version's approve / request-changes / reject."""

    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilterSet

    def get_queryset(self) -> QuerySet[Approval]:
        return Approval.objects.filter(
            version__in=DocumentVersion.objects.for_user(self.request.user)
        ).select_related("signer")


class AcknowledgementSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Acknowledgement
        fields = ["id", "version", "user", "requested_at", "acknowledged_at"]
        read_only_fields = fields


class AcknowledgementFilterSet(django_filters.FilterSet):
    version = django_filters.ModelChoiceFilter(queryset=versions_acknowledgeable_by_caller)

    class Meta:
        model = Acknowledgement
        fields = ["version"]


class AcknowledgementViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AcknowledgementSerializer
    queryset = Acknowledgement.objects.none()  # for the schema; get_queryset scopes every request
    filterset_class = AcknowledgementFilterSet

    def get_queryset(self) -> QuerySet[Acknowledgement]:
        # Readers outside the program are asked to acknowledge too: they see their own requests.
        acknowledgements = Acknowledgement.objects.filter(
            Q(version__in=DocumentVersion.objects.for_user(self.request.user)) | Q(user=self.request.user)
        ).select_related("user")
        if self.request.query_params.get("mine") == "true":
            acknowledgements = acknowledgements.filter(user=self.request.user)
        return acknowledgements

    @extend_schema(request=None, responses=AcknowledgementSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        acknowledgement = services.acknowledgement_confirm(acknowledgement=self.get_object(), by=request.user)
        return Response(AcknowledgementSerializer(acknowledgement).data)
