"""API plumbing shared by every app: pagination, fields that keep bad input a 400, and the error translation DRF lacks."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback


class KeyRelatedField(serializers.SlugRelatedField):
    """A related object by its key; a NUL character is refused here, as PostgreSQL would refuse the lookup (500)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError("Null characters are not allowed.")
        return super().to_internal_value(data)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant moved to UTC: PostgreSQL refuses UTC offsets past ±15:59 in a query (a 500)."""

    def to_python(self, value: Any) -> datetime.datetime | None:
        instant = super().to_python(value)
        if instant is None:
            return None
        try:
            return instant.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range once moved to UTC.", code="overflow") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Model and service validation errors are the caller's fault: answer 400 with the messages, never 500."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = serializers.ValidationError(detail)
    elif isinstance(exc, RequestDataTooBig):
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    elif isinstance(exc, SuspiciousOperation):
        # Django's request parsing refuses too many fields or files; without this the caller got an HTML 400.
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 404 for URLs no view matches: JSON under /api/ (as every API refusal), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)
