"""Schemathesis fuzzes every operation of the OpenAPI schema, as a manager and as an anonymous caller.

The schema is the one drf-spectacular serves at /api/schema/ (a test below proves the two are equal); requests go
through the WSGI application in-process, inside the test's transaction, so whatever the fuzzer writes is rolled
back. Zero tolerance: no 5xx, every status, header and body must be the one the schema documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cairn.wsgi import application
from tests.factories import ItemFactory, MetricFactory

pytestmark = [pytest.mark.django_db, pytest.mark.heavy]

# Hypothesis examples per operation for the manager. ~91 operations x (8 + 2 anonymous) is ~900 requests: about
# 40 s of CPU for the whole module on SQLite (a bit more on PostgreSQL), within CI's budget on 2 cores. Eight is
# enough for every query parameter and body field to get a wrong type, an empty, huge or NUL-carrying value
# (negative and positive generation both run). Schemathesis's coverage phase is off: it enumerates every
# boundary of every field and took ~15 minutes. The examples are derandomized, so CI and a laptop agree.
EXAMPLES_PER_OPERATION = 8

ANONYMOUS_EXAMPLES_PER_OPERATION = 2

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def served_schema() -> dict[str, Any]:
    """What GET /api/schema/?format=json answers a signed-in user, built by the view's own generator."""
    generator = SchemaGenerator()
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(
    served_schema(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES_PER_OPERATION},
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
        }
    ),
)
schema.app = application

# Operations that answer callers without a session or API token: they check credentials of their own.
OPEN_TO_ANONYMOUS = {
    ("POST", "/api/v1/evidence-sources/{id}/push/"),  # the source's push token
    ("POST", "/api/v1/auth/token/"),  # username and password
}

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # same examples on every run and machine: a failure in CI reproduces locally
    derandomize=True,
    # `team` is built once per operation and shared by its examples: they may see each other's writes.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)

# DRF refuses an anonymous caller before it parses anything, so more examples would only repeat that refusal.
ANONYMOUS_SETTINGS = settings(FUZZ_SETTINGS, max_examples=ANONYMOUS_EXAMPLES_PER_OPERATION)


@pytest.fixture(autouse=True)
def requests_share_the_test_transaction() -> Iterator[None]:
    """As Django's test client does: the WSGI handler must not close the connection that holds the transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_data(team: Any) -> Any:
    """The team's program with something behind every kind of id the fuzzer may guess."""
    ItemFactory(section=team.section, owner=team.manager)
    MetricFactory(program=team.program)
    return team


def test_it_fuzzes_the_schema_signed_in_users_are_served(team: Any) -> None:
    client = APIClient()
    client.force_authenticate(team.manager)
    response = client.get("/api/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert json.loads(response.content) == served_schema()


@schema.parametrize()
@FUZZ_SETTINGS
def test_it_answers_a_manager_within_the_schema(case: schemathesis.Case, fuzz_data: Any) -> None:
    token, _ = Token.objects.get_or_create(user=fuzz_data.manager)
    case.call_and_validate(headers={"Authorization": f"Token {token.key}"}, checks=CHECKS)


@schema.parametrize()
@ANONYMOUS_SETTINGS
def test_it_refuses_an_anonymous_caller_within_the_schema(case: schemathesis.Case, db: None) -> None:
    response = case.call_and_validate(checks=CHECKS)
    if (case.method, case.path) in OPEN_TO_ANONYMOUS:
        return
    try:
        match = resolve(unquote(urlsplit(response.request.url).path))
    except Resolver404:
        match = None
    if match is None or "format" in match.kwargs:
        # No view for this path, or the router's `.<format>` suffix with a format nobody renders ("/items/0.5/").
        assert response.status_code == 404
    else:
        assert response.status_code in (401, 403), f"{case.method} {case.formatted_path} answered anonymously"


# What the fuzzer found, pinned down so the fixes hold whatever examples it draws next.


def manager_client(team: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(team.manager)
    return client


def test_it_refuses_a_decision_body_that_is_not_an_object(team: Any) -> None:
    response = manager_client(team).post(
        "/api/v1/document-versions/1/approve/", "null", content_type="application/json"
    )
    assert response.status_code == 400, response.content  # was a 500: None has no .get()


def test_it_refuses_a_nul_in_a_program_key(team: Any) -> None:
    response = manager_client(team).post(
        "/api/v1/sections/", {"program": "al\x00pha", "title": "T"}, format="json"
    )
    assert response.status_code == 400  # PostgreSQL refused the lookup: a 500
    assert response.json() == {"program": ["Null characters are not allowed."]}


def test_it_filters_measurements_by_an_instant_with_any_utc_offset(team: Any) -> None:
    client = manager_client(team)
    ok = client.get("/api/v1/measurements/", {"observed_before": "4697-04-10T04:26:03+17:19"})
    assert ok.status_code == 200  # PostgreSQL refuses offsets past ±15:59: it was a 500 there
    overflow = client.get("/api/v1/measurements/", {"observed_after": "9999-12-31T23:00:00-05:00"})
    assert overflow.status_code == 400
    assert "observed_after" in overflow.json()


def test_it_answers_json_for_api_paths_no_view_matches(team: Any) -> None:
    response = manager_client(team).get("/api/v1/items/1/no-such-action/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}  # was Django's HTML page
    assert b"<html" in APIClient().get("/no-such-page/").content.lower()


def test_it_answers_json_when_a_form_has_too_many_fields(team: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    response = manager_client(team).post(
        "/api/v1/items/bulk-status/", {"ids": list(range(10))}, format="multipart"
    )
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]  # was Django's HTML 400 page
