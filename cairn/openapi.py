"""The OpenAPI schema class: every operation documents the refusals `cairn.api.exception_handler` answers.

A module of its own because drf-spectacular's AutoSchema imports DRF's generic views, which import the
pagination class from cairn.api: defining both in one module would be a circular import.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every refusal that is not a validation error: 401, 403, 404, 409, 412, 413, 415, 429."""

    detail = serializers.CharField()


# A validation error maps each field (or `non_field_errors`, or `detail` for a malformed body) to its messages.
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "Field name (`non_field_errors` or `detail` when no field is to blame) to its error messages.",
    "additionalProperties": {},
}


class AutoSchema(SpectacularAutoSchema):
    """Documents, on every operation, the refusals `exception_handler` really answers besides the success.

    Clients (and the fuzzer in tests/test_api_fuzz.py) can then rely on the schema for every status code.
    """

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description, body in self._refusals(operation):
            if code not in responses:
                responses[code] = self._get_response_for_code(OpenApiResponse(body, description), code)
        for code, response in responses.items():
            # A refusal documented by its description only still answers the envelope: say which.
            if code >= "400" and "content" not in response:
                body = VALIDATION_ERROR_SCHEMA if code == "400" else ErrorSerializer
                filled = self._get_response_for_code(OpenApiResponse(body, response["description"]), code)
                responses[code] = filled
        return operation

    def _refusals(self, operation: dict[str, Any]) -> list[tuple[str, str, Any]]:
        in_query = any(parameter["in"] == "query" for parameter in operation.get("parameters", []))
        in_path = any(parameter["in"] == "path" for parameter in operation.get("parameters", []))
        has_body = "requestBody" in operation
        refusals: list[tuple[str, str, Any]] = []
        if has_body or in_query:
            refusals.append(("400", "Invalid input", VALIDATION_ERROR_SCHEMA))
        if operation.get("security"):
            refusals.append(("401", "Missing, unknown or inactive credentials", ErrorSerializer))
            refusals.append(("403", "Not signed in, or not allowed to do this", ErrorSerializer))
        if in_path or in_query:
            refusals.append(("404", "No such object visible to the caller, or no such page", ErrorSerializer))
        if has_body:
            refusals.append(("413", "Request body too large", ErrorSerializer))
            refusals.append(("415", "Unsupported request body media type", ErrorSerializer))
        if getattr(self.view, "throttle_classes", None):
            refusals.append(("429", "Too many requests", ErrorSerializer))
        return refusals
