"""Metrics, measurements, evidence sources, collection runs and evidence through the REST API.

Personas come from the `team` fixture: maria manages alpha, carla contributes (owns `owned_item` and, here, the
`owned_metric`), cody is a second contributor of alpha who owns nothing, eve is an executive, aude an auditor,
and oscar manages beta and must learn nothing of alpha. Collector behaviour (kinds, retries, SSRF) is tested in
tests/test_collectors.py; this module tests the doors: who may call what, what the answers show and hide.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from metrics import services
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from metrics.serializers import FreshnessSerializer
from tests.factories import ItemFactory, MetricFactory, member

pytestmark = pytest.mark.django_db

Kind = EvidenceSource.Kind
SECRET_VALUE = "hunter2-d0f1e3b5a7c9-never-shown"


def ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def api(user: Any = None, **kwargs: Any) -> APIClient:
    client = APIClient(**kwargs)
    if user is not None:
        client.force_authenticate(user)
    return client


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response: Any) -> set[int]:
    return {row["id"] for row in rows(response)}


# --- a loopback HTTP server ---------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append({name.lower(): value for name, value in self.headers.items()})
        body = b"status: all good, edge is up"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.requests: list[dict[str, str]] = []


@contextmanager
def loopback(settings: Any) -> Iterator[LoopbackServer]:
    """A server on 127.0.0.1 that collectors are allowed to reach (the allowlist opts loopback in)."""
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.CAIRN_COLLECTOR_BACKOFF_MS = 1
    started = LoopbackServer()
    threading.Thread(target=started.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield started
    finally:
        started.shutdown()
        started.server_close()


@pytest.fixture
def server(settings: Any) -> Iterator[LoopbackServer]:
    with loopback(settings) as started:
        yield started


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_throttle() -> Iterator[None]:
    cache.clear()  # the push throttle counts per address in the cache, across tests
    yield
    cache.clear()


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def cody(team: Any) -> Any:
    """A contributor of alpha who owns neither the metric nor the item."""
    return member(team.program, "contributor", "cody")


@pytest.fixture
def metric(team: Any) -> Metric:
    return MetricFactory(program=team.program, key="availability", name="Availability")


@pytest.fixture
def owned_metric(team: Any) -> Metric:
    return MetricFactory(program=team.program, key="patch-rate", name="Patch rate", owner=team.contributor)


@pytest.fixture
def foreign_metric(team: Any) -> Metric:
    return MetricFactory(program=team.other_program, key="beta-secret", name="Beta's secret metric")


def source_for(team: Any, kind: str = Kind.HTTP_CHECK, config: Any = None, **fields: Any) -> EvidenceSource:
    """A source saved through the service by the manager of its program."""
    items = fields.pop("items", ())
    program = fields.pop("program", team.program)
    by = team.manager if program == team.program else team.outsider
    fields.setdefault("name", f"{kind} source")
    if config is None:
        config = {} if kind == Kind.PUSH else {"url": "https://status.example.com/health"}
    source = EvidenceSource(program=program, kind=kind, config=config, **fields)
    source.push_token = services.source_save(source=source, by=by, item_ids=[item.pk for item in items])
    return source


# --- metrics ------------------------------------------------------------------------------------------------

METRICS = "/api/v1/metrics/"


@pytest.mark.parametrize("persona", ["manager", "contributor", "executive", "auditor"])
def test_it_lists_a_programs_metrics_to_its_members_only(team, metric, foreign_metric, persona):
    client = api(team.user(persona))

    assert ids(client.get(METRICS)) == {metric.pk}
    assert client.get(f"{METRICS}{foreign_metric.pk}/").status_code == 404
    assert rows(client.get(METRICS, {"program": "beta"})) == []


def test_it_shows_the_outsider_none_of_alphas_metrics(team, metric, foreign_metric):
    client = api(team.outsider)

    assert ids(client.get(METRICS)) == {foreign_metric.pk}
    response = client.get(f"{METRICS}{metric.pk}/")
    assert response.status_code == 404
    assert b"Availability" not in response.content


def test_it_refuses_anonymous_callers(team, metric):
    for url in (METRICS, "/api/v1/measurements/", "/api/v1/evidence-sources/", "/api/v1/evidence/"):
        assert api().get(url).status_code in (401, 403), url


def test_it_answers_each_metrics_latest_value_and_its_freshness(team):
    def metric_measured(key: str, *ages: float) -> Metric:
        metric = MetricFactory(program=team.program, key=key, valid_for_days=10, grace_days=5)
        for n, age in enumerate(ages):
            services.measurement_record(metric=metric, value=Decimal(90 + n), observed_at=ago(age), by=None)
        return metric

    fresh = metric_measured("fresh", 30, 2)  # the newer value counts, however old the first one is
    stale = metric_measured("stale", 12)  # valid until 2 days ago, in grace for 3 more
    expired = metric_measured("expired", 20)  # valid until 10 days ago, grace ended 5 days ago
    missing = metric_measured("missing")

    by_id = {row["id"]: row for row in rows(api(team.executive).get(METRICS))}

    assert by_id[fresh.pk]["latest_value"] == "91.000000"
    assert (by_id[fresh.pk]["freshness"]["state"], by_id[fresh.pk]["freshness"]["age_days"]) == ("fresh", 2)
    assert (by_id[stale.pk]["freshness"]["state"], by_id[stale.pk]["freshness"]["age_days"]) == ("stale", 12)
    assert by_id[expired.pk]["freshness"]["state"] == "expired"
    assert by_id[missing.pk]["latest_value"] is None
    missing_freshness = by_id[missing.pk]["freshness"]
    assert (missing_freshness["state"], missing_freshness["observed_at"], missing_freshness["age_days"]) == (
        "missing",
        None,
        None,
    )
    documented = set(FreshnessSerializer().fields)  # what the schema promises, nothing more
    assert all(set(row["freshness"]) == documented for row in by_id.values())
    valid_until = datetime.fromisoformat(by_id[stale.pk]["freshness"]["valid_until"])
    observed_at = datetime.fromisoformat(by_id[stale.pk]["freshness"]["observed_at"])
    assert valid_until - observed_at == timedelta(days=10)


def test_the_metric_list_runs_the_same_queries_for_5_and_50_metrics(team, django_assert_num_queries):
    def add(count: int) -> None:
        for _ in range(count):
            metric = MetricFactory(program=team.program, owner=team.contributor)
            services.measurement_record(metric=metric, value=Decimal("1"), observed_at=ago(1), by=None)

    add(5)
    client = api(team.manager)
    with CaptureQueriesContext(connection) as five:
        assert len(rows(client.get(METRICS, {"page_size": 100}))) == 5
    add(45)
    with django_assert_num_queries(len(five.captured_queries)):
        assert len(rows(client.get(METRICS, {"page_size": 100}))) == 50


def test_a_manager_defines_a_metric_and_its_key_comes_from_its_name(team):
    body = {
        "program": "alpha",
        "name": "Mean time to patch",
        "unit": "days",
        "direction": "lower",
        "target": 7,
    }

    response = api(team.manager).post(METRICS, body)

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["key"], data["unit"], data["direction"], data["target"]) == (
        "mean-time-to-patch",
        "days",
        "lower",
        "7.000000",
    )
    assert (data["measurable"], data["latest_value"], data["freshness"]["state"]) == (True, None, "missing")
    metric = Metric.objects.get(pk=data["id"])
    assert metric.program == team.program
    assert metric.history.get().history_user == team.manager


def test_a_manager_edits_a_metrics_target_unit_and_direction_with_history(team, metric):
    response = api(team.manager).patch(
        f"{METRICS}{metric.pk}/", {"target": "99.5", "unit": "percent", "direction": "lower"}
    )

    assert response.status_code == 200, response.content
    metric.refresh_from_db()
    assert (metric.target, metric.unit, metric.direction) == (Decimal("99.5"), "percent", "lower")
    assert metric.history.count() == 2
    assert metric.history.first().history_user == team.manager


def test_it_refuses_a_second_metric_with_the_same_key(team, metric):
    response = api(team.manager).post(METRICS, {"program": "alpha", "name": "Availability"})

    assert response.status_code == 400
    assert "already exists" in json.dumps(response.json())
    assert Metric.objects.count() == 1


def test_a_metrics_program_and_key_stay_as_they_were_created(team, metric):
    response = api(team.manager).patch(f"{METRICS}{metric.pk}/", {"program": "beta", "key": "renamed"})

    assert response.status_code == 200, response.content
    metric.refresh_from_db()
    assert (metric.program, metric.key) == (team.program, "availability")


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor"])
def test_only_managers_define_or_edit_metrics(team, metric, persona):
    client = api(team.user(persona))

    created = client.post(METRICS, {"program": "alpha", "name": "Sneaky"})
    edited = client.patch(f"{METRICS}{metric.pk}/", {"target": "1"})

    assert (created.status_code, edited.status_code) == (403, 403)
    assert list(Metric.objects.values_list("key", flat=True)) == ["availability"]
    metric.refresh_from_db()
    assert metric.target == Decimal("99.9")
    assert metric.history.count() == 1


def test_it_treats_a_program_the_caller_cannot_see_as_unknown(team, metric):
    as_manager = api(team.manager).post(METRICS, {"program": "beta", "name": "Planted in beta"})
    as_outsider = api(team.outsider).post(METRICS, {"program": "alpha", "name": "Planted in alpha"})
    outsider_edit = api(team.outsider).patch(f"{METRICS}{metric.pk}/", {"target": "1"})

    assert as_manager.status_code == 400
    assert "does not exist" in as_manager.json()["program"][0]
    assert as_outsider.status_code == 400
    assert "does not exist" in as_outsider.json()["program"][0]
    assert outsider_edit.status_code == 404
    assert Metric.objects.count() == 1


# --- measurements -------------------------------------------------------------------------------------------

MEASUREMENTS = "/api/v1/measurements/"


@pytest.mark.parametrize("persona", ["manager", "contributor"])
def test_a_manager_or_the_metrics_owner_records_a_value(team, owned_metric, persona):
    user = team.user(persona)

    response = api(user).post(MEASUREMENTS, {"metric": owned_metric.pk, "value": "87.5", "note": "Q1"})

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["source"], data["recorded_by"], data["value"], data["run"]) == (
        "api",
        user.username,
        "87.500000",
        None,
    )
    measurement = Measurement.objects.get()
    assert (measurement.source, measurement.recorded_by, measurement.metric) == (
        Measurement.Source.API,
        user,
        owned_metric,
    )
    assert abs(measurement.observed_at - timezone.now()) < timedelta(minutes=1)


@pytest.mark.parametrize("persona", ["cody", "executive", "auditor"])
def test_members_who_neither_manage_nor_own_the_metric_record_nothing(team, owned_metric, cody, persona):
    user = cody if persona == "cody" else team.user(persona)

    response = api(user).post(MEASUREMENTS, {"metric": owned_metric.pk, "value": "1"})

    assert response.status_code == 403, response.content
    assert not Measurement.objects.exists()


def test_it_refuses_a_measurement_of_the_future(team, metric):
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()

    response = api(team.manager).post(
        MEASUREMENTS, {"metric": metric.pk, "value": "1", "observed_at": tomorrow}
    )

    assert response.status_code == 400
    assert set(response.json()) == {"observed_at"}
    assert not Measurement.objects.exists()


def test_it_treats_another_programs_metric_as_unknown(team, foreign_metric):
    response = api(team.manager).post(MEASUREMENTS, {"metric": foreign_metric.pk, "value": "1"})

    assert response.status_code == 400
    assert "does not exist" in response.json()["metric"][0]
    assert not Measurement.objects.exists()


def test_measurements_are_never_changed_or_deleted(team, metric):
    measurement = services.measurement_record(metric=metric, value=Decimal("5"), by=team.manager)
    client = api(team.manager)
    url = f"{MEASUREMENTS}{measurement.pk}/"

    assert client.patch(url, {"value": "6"}).status_code == 405
    assert client.put(url, {"metric": metric.pk, "value": "6"}).status_code == 405
    assert client.delete(url).status_code == 405
    measurement.refresh_from_db()
    assert measurement.value == Decimal("5")


def test_measurements_filter_by_metric_program_and_time(team, metric, owned_metric, foreign_metric):
    old = services.measurement_record(metric=metric, value=Decimal("1"), observed_at=ago(10), by=None)
    new = services.measurement_record(metric=metric, value=Decimal("2"), observed_at=ago(1), by=None)
    other = services.measurement_record(metric=owned_metric, value=Decimal("3"), observed_at=ago(1), by=None)
    services.measurement_record(metric=foreign_metric, value=Decimal("4"), by=None)
    client = api(team.auditor)

    assert ids(client.get(MEASUREMENTS)) == {old.pk, new.pk, other.pk}
    assert ids(client.get(MEASUREMENTS, {"metric": metric.pk})) == {old.pk, new.pk}
    assert ids(client.get(MEASUREMENTS, {"program": "alpha"})) == {old.pk, new.pk, other.pk}
    assert ids(client.get(MEASUREMENTS, {"program": "beta"})) == set()
    assert ids(client.get(MEASUREMENTS, {"observed_after": ago(5).isoformat()})) == {new.pk, other.pk}
    assert [row["id"] for row in rows(client.get(MEASUREMENTS, {"metric": metric.pk}))] == [new.pk, old.pk]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v1/measurements/", "metric"),
        ("/api/v1/evidence-sources/", "metric"),
        ("/api/v1/collection-runs/", "source"),
        ("/api/v1/evidence/", "item"),
    ],
)
def test_a_filter_does_not_tell_an_invisible_row_from_a_missing_one(team, foreign_metric, url, name):
    """django-filter checks a foreign key against every row unless its queryset is scoped (STYLE.md)."""
    beta_source = source_for(team, Kind.PUSH, name="Beta CI", program=team.other_program)
    invisible = {"metric": foreign_metric.pk, "source": beta_source.pk, "item": team.foreign_item.pk}[name]
    client = api(team.manager)

    hidden = client.get(url, {name: invisible})
    unknown = client.get(url, {name: invisible + 1000})

    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json() == unknown.json()
    assert api(team.outsider).get(url, {name: invisible}).status_code == 200  # its owner may filter by it


# --- evidence sources ---------------------------------------------------------------------------------------

SOURCES = "/api/v1/evidence-sources/"


def test_a_manager_configures_an_http_check_that_feeds_a_metric_and_items(team, metric):
    body = {
        "program": "alpha",
        "name": "Edge health",
        "kind": "http_check",
        "config": {"url": "https://status.example.com/health", "max_latency_ms": 500},
        "metric": metric.pk,
        "items": [team.owned_item.pk, team.unowned_item.pk],
        "interval_seconds": 600,
    }

    response = api(team.manager).post(SOURCES, body)

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["config"] == {
        "url": "https://status.example.com/health",
        "method": "GET",
        "expected_status": [200],
        "max_latency_ms": 500,
    }
    assert (data["program"], data["metric"], sorted(data["items"])) == (
        "alpha",
        metric.pk,
        sorted([team.owned_item.pk, team.unowned_item.pk]),
    )
    assert data["push_token"] is None
    assert data["next_run_at"] is not None  # a new pull source is due at once
    assert data["last_run_status"] is None
    source = EvidenceSource.objects.get(pk=data["id"])
    assert (source.created_by, source.history.get().history_user) == (team.manager, team.manager)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"url": "ftp://files.example.com/report"}, "http:// or https://"),
        ({}, "url"),
        ({"url": "https://example.com", "method": "BREW"}, "method"),
        ({"url": "https://example.com", "body_regex": "("}, "regular expression"),
    ],
    ids=["scheme", "no-url", "method", "regex"],
)
def test_it_names_what_is_wrong_with_a_configuration(team, config, fragment):
    body = {"program": "alpha", "name": "Bad", "kind": "http_check", "config": config}

    response = api(team.manager).post(SOURCES, body)

    assert response.status_code == 400
    assert fragment in " ".join(response.json()["config"])
    assert not EvidenceSource.objects.exists()


def test_a_push_source_answers_its_token_once_and_never_again(team):
    client = api(team.manager)

    created = client.post(SOURCES, {"program": "alpha", "name": "CI results", "kind": "push", "config": {}})

    assert created.status_code == 201, created.content
    token = created.json()["push_token"]
    assert token and len(token) >= 32
    source = EvidenceSource.objects.get(pk=created.json()["id"])
    assert source.push_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert source.next_run_at is None  # nothing to schedule: systems post to it
    for response in (
        client.get(SOURCES),
        client.get(f"{SOURCES}{source.pk}/"),
        client.patch(f"{SOURCES}{source.pk}/", {"name": "CI results (main)"}),
        api(team.auditor).get(f"{SOURCES}{source.pk}/"),
    ):
        assert response.status_code == 200, response.content
        assert token not in response.content.decode()
        assert source.push_token_hash not in response.content.decode()
        assert b"push_token" not in response.content
    assert client.get(f"{SOURCES}{source.pk}/").json()["name"] == "CI results (main)"


def test_it_shows_the_name_of_a_credential_variable_never_its_value(team, server, monkeypatch):
    monkeypatch.setenv("CAIRN_SECRET_EDGE_TOKEN", SECRET_VALUE)
    client = api(team.manager)
    body = {
        "program": "alpha",
        "name": "Edge with auth",
        "kind": "http_check",
        "config": {"url": f"{server.url}/health"},
        "auth": "bearer",
        "secret_env": "CAIRN_SECRET_EDGE_TOKEN",
        "items": [team.owned_item.pk],
    }

    created = client.post(SOURCES, body)
    assert created.status_code == 201, created.content
    source_id = created.json()["id"]
    responses = [
        created,
        client.get(SOURCES),
        client.get(f"{SOURCES}{source_id}/"),
        client.patch(f"{SOURCES}{source_id}/", {"interval_seconds": 900}),
        client.post(f"{SOURCES}{source_id}/run/"),
        client.get("/api/v1/collection-runs/"),
        client.get("/api/v1/evidence/"),
    ]

    assert responses[2].json()["secret_env"] == "CAIRN_SECRET_EDGE_TOKEN"
    assert responses[4].json()["status"] == "success"
    assert server.requests[0]["authorization"] == f"Bearer {SECRET_VALUE}"  # it was used …
    for response in responses:
        assert response.status_code in (200, 201), response.content
        assert SECRET_VALUE not in response.content.decode()  # … and never shown


def test_it_refuses_a_credential_typed_where_its_variable_name_belongs(team):
    body = {
        "program": "alpha",
        "name": "Oops",
        "kind": "http_check",
        "config": {"url": "https://example.com"},
        "auth": "bearer",
        "secret_env": "Bearer abc.def-ghi",
    }

    response = api(team.manager).post(SOURCES, body)

    assert response.status_code == 400
    assert set(response.json()) == {"secret_env"}
    assert "abc.def-ghi" not in response.content.decode()


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL"])
def test_a_source_cannot_send_the_servers_own_settings_as_its_credential(team, variable):
    """A manager of one program must not be able to post Cairn's own secrets to a server they control."""
    body = {
        "program": "alpha",
        "name": "Exfiltration",
        "kind": "http_check",
        "config": {"url": "https://attacker.example.com/collect"},
        "auth": "bearer",
        "secret_env": variable,
    }

    response = api(team.manager).post(SOURCES, body)

    assert response.status_code == 400, response.content
    assert set(response.json()) == {"secret_env"}
    assert not EvidenceSource.objects.exists()


def test_a_source_cannot_feed_another_programs_items_or_metric(team, foreign_metric):
    client = api(team.manager)
    base = {
        "program": "alpha",
        "name": "Reach",
        "kind": "http_check",
        "config": {"url": "https://example.com"},
    }

    items = client.post(SOURCES, {**base, "items": [team.owned_item.pk, team.foreign_item.pk]})
    metric = client.post(SOURCES, {**base, "metric": foreign_metric.pk})

    assert items.status_code == 400
    assert set(items.json()) == {"items"}
    assert metric.status_code == 400
    assert set(metric.json()) == {"metric"}
    assert not EvidenceSource.objects.exists()


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor"])
def test_only_managers_configure_sources(team, persona):
    body = {
        "program": "alpha",
        "name": "Nope",
        "kind": "http_check",
        "config": {"url": "https://example.com"},
    }
    source = source_for(team)
    client = api(team.user(persona))

    assert client.post(SOURCES, body).status_code == 403
    assert client.patch(f"{SOURCES}{source.pk}/", {"enabled": False}).status_code == 403
    assert client.get(f"{SOURCES}{source.pk}/").status_code == 200  # reading is fine
    assert list(EvidenceSource.objects.values_list("name", "enabled")) == [("http_check source", True)]


def test_the_outsider_neither_sees_nor_configures_alphas_sources(team):
    source = source_for(team, name="Alpha's edge")
    client = api(team.outsider)
    body = {
        "program": "alpha",
        "name": "Nope",
        "kind": "http_check",
        "config": {"url": "https://example.com"},
    }

    assert client.get(f"{SOURCES}{source.pk}/").status_code == 404
    assert b"Alpha's edge" not in client.get(SOURCES).content
    assert client.patch(f"{SOURCES}{source.pk}/", {"enabled": False}).status_code == 404
    assert client.post(SOURCES, body).status_code == 400
    assert EvidenceSource.objects.count() == 1


def test_a_manager_changes_a_sources_interval_and_disables_it(team):
    source = source_for(team)

    response = api(team.manager).patch(f"{SOURCES}{source.pk}/", {"interval_seconds": 7200, "enabled": False})

    assert response.status_code == 200, response.content
    assert (response.json()["interval_seconds"], response.json()["enabled"]) == (7200, False)
    source.refresh_from_db()
    assert (source.interval_seconds, source.enabled) == (7200, False)
    assert source.history.first().history_user == team.manager


def test_it_refuses_an_interval_under_a_minute(team):
    source = source_for(team)

    response = api(team.manager).patch(f"{SOURCES}{source.pk}/", {"interval_seconds": 5})

    assert response.status_code == 400
    assert set(response.json()) == {"interval_seconds"}


def test_a_sources_kind_and_program_stay_as_they_were_created(team):
    source = source_for(team)

    response = api(team.manager).patch(f"{SOURCES}{source.pk}/", {"kind": "push", "program": "beta"})

    assert response.status_code == 200, response.content
    source.refresh_from_db()
    assert (source.kind, source.program, source.push_token_hash) == (Kind.HTTP_CHECK, team.program, "")


# --- run now ------------------------------------------------------------------------------------------------


def test_a_manager_runs_a_source_now_and_sees_the_result(team, server, metric):
    source = source_for(
        team,
        config={"url": f"{server.url}/health", "body_contains": "all good"},
        metric=metric,
        items=[team.owned_item],
    )

    response = api(team.manager).post(f"{SOURCES}{source.pk}/run/")

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["status"], data["passed"], data["trigger"], data["attempts"], data["error"]) == (
        "success",
        True,
        "manual",
        1,
        "",
    )
    assert Decimal(data["value"]) > 0  # the latency, in ms
    assert data["excerpt"] == "status: all good, edge is up"
    run = CollectionRun.objects.get(pk=data["id"])
    assert run.triggered_by == team.manager
    evidence = Evidence.objects.get(run=run)
    assert (evidence.item, evidence.kind, evidence.passed) == (team.owned_item, Evidence.Kind.CHECK, True)
    assert Measurement.objects.get(run=run).source == Measurement.Source.COLLECTOR
    assert api(team.manager).get(f"{SOURCES}{source.pk}/").json()["last_run_status"] == "success"


def test_run_now_refuses_loopback_without_the_allowlist(team, server, settings):
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = []
    source = source_for(team, config={"url": f"{server.url}/health"}, items=[team.owned_item])

    response = api(team.manager).post(f"{SOURCES}{source.pk}/run/")

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["status"], data["passed"]) == ("error", None)
    assert "127.0.0.1" in data["error"]
    assert "not a public address" in data["error"]
    assert server.requests == []
    assert not Evidence.objects.exists()


@pytest.mark.parametrize(("persona", "status"), [("contributor", 403), ("executive", 403), ("outsider", 404)])
def test_only_managers_run_a_source_now(team, server, persona, status):
    source = source_for(team, config={"url": f"{server.url}/health"})

    response = api(team.user(persona)).post(f"{SOURCES}{source.pk}/run/")

    assert response.status_code == status
    assert not CollectionRun.objects.exists()
    assert server.requests == []


def test_a_push_source_cannot_be_run_now(team):
    source = source_for(team, Kind.PUSH, name="CI")

    response = api(team.manager).post(f"{SOURCES}{source.pk}/run/")

    assert response.status_code == 400
    assert "push source" in json.dumps(response.json())
    assert not CollectionRun.objects.exists()


# --- push ---------------------------------------------------------------------------------------------------


@pytest.fixture
def push_source(team: Any, metric: Metric) -> EvidenceSource:
    return source_for(team, Kind.PUSH, name="CI results", metric=metric, items=[team.owned_item])


def push(source_id: int, token: str | None, body: dict[str, Any]) -> Any:
    """As an external system does: no session, no CSRF token, only the source's bearer token."""
    client = APIClient(enforce_csrf_checks=True)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.post(f"{SOURCES}{source_id}/push/", body, format="json", **headers)


def test_a_system_pushes_a_value_that_becomes_a_measurement(team, push_source, metric):
    response = push(push_source.pk, push_source.push_token, {"value": "99.95"})

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["trigger"], data["status"], data["value"]) == ("push", "success", "99.950000")
    measurement = Measurement.objects.get()
    assert (measurement.metric, measurement.value, measurement.source, measurement.run_id) == (
        metric,
        Decimal("99.95"),
        Measurement.Source.API,
        data["id"],
    )
    assert not Evidence.objects.exists()


@pytest.mark.parametrize("passed", [True, False])
def test_a_system_pushes_a_result_that_becomes_evidence_on_the_fed_items(team, push_source, passed):
    observed = ago(1)

    response = push(
        push_source.pk, push_source.push_token, {"passed": passed, "observed_at": observed.isoformat()}
    )

    assert response.status_code == 201, response.content
    assert response.json()["status"] == ("success" if passed else "failed")
    evidence = Evidence.objects.get()
    assert (evidence.item, evidence.kind, evidence.passed, evidence.observed_at) == (
        team.owned_item,
        Evidence.Kind.CHECK,
        passed,
        observed,
    )
    assert not Measurement.objects.exists()


@pytest.mark.parametrize(
    "case", ["no-token", "wrong-token", "basic-scheme", "other-source", "disabled", "unknown-id"]
)
def test_a_push_without_the_sources_own_valid_token_is_unauthorized(team, push_source, case):
    other = source_for(team, Kind.PUSH, name="Other CI", items=[team.owned_item])
    source_id, token = push_source.pk, push_source.push_token
    if case == "no-token":
        token = None
    elif case == "wrong-token":
        token = "not-the-token"
    elif case == "other-source":
        token = other.push_token
    elif case == "disabled":
        EvidenceSource.objects.filter(pk=push_source.pk).update(enabled=False)
    elif case == "unknown-id":
        source_id = other.pk + 1000
    client = APIClient(enforce_csrf_checks=True)
    if case == "basic-scheme":
        response = client.post(
            f"{SOURCES}{source_id}/push/",
            {"passed": True},
            format="json",
            HTTP_AUTHORIZATION=f"Basic {token}",
        )
    else:
        response = push(source_id, token, {"passed": True})

    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not CollectionRun.objects.exists()
    assert not Evidence.objects.exists()


def test_a_signed_in_session_is_no_push_token(team, push_source):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(team.manager)

    response = client.post(f"{SOURCES}{push_source.pk}/push/", {"passed": True}, format="json")

    assert response.status_code == 401
    assert not CollectionRun.objects.exists()


def test_a_push_needs_a_value_or_a_result(team, push_source):
    response = push(push_source.pk, push_source.push_token, {"note": "nothing to say"})

    assert response.status_code == 400
    assert set(response.json()) == {"value"}
    assert not CollectionRun.objects.exists()


def test_rotating_the_token_retires_the_old_one_at_once(team, push_source):
    old = push_source.push_token

    response = api(team.manager).post(f"{SOURCES}{push_source.pk}/rotate-token/")

    assert response.status_code == 200, response.content
    new = response.json()["push_token"]
    assert new and new != old
    assert push(push_source.pk, old, {"passed": True}).status_code == 401
    assert push(push_source.pk, new, {"passed": True}).status_code == 201


@pytest.mark.parametrize(("persona", "status"), [("contributor", 403), ("executive", 403), ("outsider", 404)])
def test_only_managers_rotate_a_push_token(team, push_source, persona, status):
    response = api(team.user(persona)).post(f"{SOURCES}{push_source.pk}/rotate-token/")

    assert response.status_code == status
    assert push(push_source.pk, push_source.push_token, {"passed": True}).status_code == 201


def test_a_pull_source_has_no_token_to_rotate(team):
    source = source_for(team)

    response = api(team.manager).post(f"{SOURCES}{source.pk}/rotate-token/")

    assert response.status_code == 400
    source.refresh_from_db()
    assert source.push_token_hash == ""


# --- collection runs ----------------------------------------------------------------------------------------

RUNS = "/api/v1/collection-runs/"


@pytest.fixture
def runs(team: Any) -> dict[str, CollectionRun]:
    ci = source_for(team, Kind.PUSH, name="CI", items=[team.owned_item])
    scan = source_for(team, Kind.PUSH, name="Scanner", items=[team.unowned_item])
    beta = source_for(team, Kind.PUSH, name="Beta CI", program=team.other_program, items=[team.foreign_item])
    return {
        "ci_pass": services.source_push(source=ci, passed=True),
        "ci_fail": services.source_push(source=ci, passed=False),
        "scan_pass": services.source_push(source=scan, passed=True),
        "beta": services.source_push(source=beta, passed=True),
    }


def test_collection_runs_are_scoped_and_filtered(team, runs):
    client = api(team.auditor)
    alpha = {runs[name].pk for name in ("ci_pass", "ci_fail", "scan_pass")}
    ci = runs["ci_pass"].source_id

    assert ids(client.get(RUNS)) == alpha
    assert ids(client.get(RUNS, {"source": ci})) == {runs["ci_pass"].pk, runs["ci_fail"].pk}
    assert ids(client.get(RUNS, {"status": "failed"})) == {runs["ci_fail"].pk}
    assert ids(client.get(RUNS, {"program": "alpha", "status": "success"})) == {
        runs["ci_pass"].pk,
        runs["scan_pass"].pk,
    }
    assert ids(client.get(RUNS, {"program": "beta"})) == set()
    assert client.get(f"{RUNS}{runs['beta'].pk}/").status_code == 404
    assert ids(api(team.outsider).get(RUNS)) == {runs["beta"].pk}
    detail = client.get(f"{RUNS}{runs['ci_fail'].pk}/").json()
    assert (detail["program"], detail["trigger"], detail["passed"]) == ("alpha", "push", False)


def test_collection_runs_are_read_only(team, runs):
    client = api(team.manager)
    run = runs["ci_pass"]

    assert client.post(RUNS, {"source": run.source_id}).status_code == 405
    assert client.patch(f"{RUNS}{run.pk}/", {"status": "failed"}).status_code == 405
    assert client.delete(f"{RUNS}{run.pk}/").status_code == 405
    run.refresh_from_db()
    assert run.status == CollectionRun.Status.SUCCESS


# --- evidence -----------------------------------------------------------------------------------------------

EVIDENCE = "/api/v1/evidence/"


@pytest.mark.parametrize(
    ("persona", "item_name"), [("manager", "unowned_item"), ("contributor", "owned_item")]
)
def test_a_manager_or_the_items_owner_attaches_a_link(team, persona, item_name):
    item = getattr(team, item_name)
    body = {"item": item.pk, "url": "https://wiki.example.com/runbook", "note": "Runbook reviewed"}

    response = api(team.user(persona)).post(EVIDENCE, body)

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["kind"], data["url"], data["recorded_by"], data["passed"], data["download"]) == (
        "link",
        "https://wiki.example.com/runbook",
        team.user(persona).username,
        True,
        None,
    )
    evidence = Evidence.objects.get()
    assert evidence.valid_until - evidence.observed_at == timedelta(days=365)  # the default validity


@pytest.mark.parametrize("persona", ["cody", "executive", "auditor"])
def test_members_who_neither_manage_nor_own_the_item_attach_nothing(team, cody, persona):
    user = cody if persona == "cody" else team.user(persona)

    response = api(user).post(EVIDENCE, {"item": team.owned_item.pk, "url": "https://example.com/x"})

    assert response.status_code == 403, response.content
    assert not Evidence.objects.exists()


def test_the_outsider_cannot_attach_evidence_to_alphas_items(team):
    response = api(team.outsider).post(EVIDENCE, {"item": team.owned_item.pk, "url": "https://example.com/x"})

    assert response.status_code == 400
    assert "does not exist" in response.json()["item"][0]
    assert not Evidence.objects.exists()


def test_it_stores_an_uploaded_files_sha256_and_serves_it_to_members_only(team, media):
    content = b"%PDF-1.7 penetration test report\n" * 20

    response = api(team.contributor).post(
        EVIDENCE,
        {"item": team.owned_item.pk, "file": SimpleUploadedFile("pentest.pdf", content), "note": "2026 test"},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["kind"], data["sha256"], data["url"]) == ("file", hashlib.sha256(content).hexdigest(), "")
    assert data["download"].endswith(f"/api/v1/evidence/{data['id']}/file/")
    assert "file" not in data  # write-only: the download link stands for it
    assert any(media.rglob("pentest*.pdf"))
    url = f"{EVIDENCE}{data['id']}/file/"
    for persona in ("manager", "executive", "auditor"):
        download = api(team.user(persona)).get(url)
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == content
        assert download["Content-Disposition"].startswith("attachment;")
        assert "pentest" in download["Content-Disposition"]
        assert download["X-Content-Type-Options"] == "nosniff"
    assert api(team.outsider).get(url).status_code == 404
    assert api(team.outsider).get(f"{EVIDENCE}{data['id']}/").status_code == 404
    assert api().get(url).status_code in (401, 403)


def test_a_link_has_no_file_to_download(team):
    evidence = services.evidence_attach(item=team.owned_item, by=team.manager, url="https://example.com/a")

    assert api(team.manager).get(f"{EVIDENCE}{evidence.pk}/file/").status_code == 404


def test_it_refuses_a_file_over_the_size_limit_and_keeps_nothing(team, media, settings):
    settings.CAIRN_EVIDENCE_MAX_FILE_BYTES = 64

    response = api(team.manager).post(
        EVIDENCE,
        {"item": team.owned_item.pk, "file": SimpleUploadedFile("big.bin", b"x" * 65)},
        format="multipart",
    )

    assert response.status_code == 400
    assert "64 bytes" in response.json()["file"][0]
    assert not Evidence.objects.exists()
    assert not any(path.is_file() for path in media.rglob("*"))


@pytest.mark.parametrize("both", [True, False], ids=["both", "neither"])
def test_evidence_is_either_a_link_or_a_file(team, media, both):
    body: dict[str, Any] = {"item": team.owned_item.pk}
    if both:
        body.update(url="https://example.com/a", file=SimpleUploadedFile("a.txt", b"a"))

    response = api(team.manager).post(EVIDENCE, body, format="multipart")

    assert response.status_code == 400
    assert "url" in response.json()
    assert not Evidence.objects.exists()


def test_the_evidence_list_is_scoped_to_the_callers_programs(team):
    alpha = services.evidence_attach(item=team.owned_item, by=team.manager, url="https://example.com/a")
    beta = services.evidence_attach(item=team.foreign_item, by=team.outsider, url="https://example.com/b")

    assert ids(api(team.executive).get(EVIDENCE)) == {alpha.pk}
    assert ids(api(team.outsider).get(EVIDENCE)) == {beta.pk}
    assert ids(api(team.executive).get(EVIDENCE, {"item": team.owned_item.pk})) == {alpha.pk}
    assert api(team.executive).get(f"{EVIDENCE}{beta.pk}/").status_code == 404


def test_evidence_is_never_changed_or_deleted(team):
    evidence = services.evidence_attach(item=team.owned_item, by=team.manager, url="https://example.com/a")
    client = api(team.manager)

    assert client.patch(f"{EVIDENCE}{evidence.pk}/", {"passed": False}).status_code == 405
    assert client.delete(f"{EVIDENCE}{evidence.pk}/").status_code == 405
    evidence.refresh_from_db()
    assert evidence.passed is True


# --- freshness ----------------------------------------------------------------------------------------------

FRESHNESS = f"{EVIDENCE}freshness/"


def attest(item: Any, by: Any, observed_days_ago: float, valid_days_ago: float) -> Evidence:
    """Evidence observed `observed_days_ago`, valid until `valid_days_ago` (negative: still in the future)."""
    return services.evidence_attach(
        item=item,
        by=by,
        url="https://example.com/evidence",
        observed_at=ago(observed_days_ago),
        valid_until=ago(valid_days_ago),
    )


@pytest.fixture
def aged(team: Any) -> dict[str, Any]:
    """Items of alpha at each freshness state (default grace: 30 days), and one of beta."""
    items = {
        "fresh": ItemFactory(section=team.section, title="Fresh"),
        "renewed": ItemFactory(section=team.section, title="Renewed"),
        "stale": ItemFactory(section=team.section, title="Stale"),
        "stale_short_grace": ItemFactory(section=team.section, title="Short grace", grace_days=2),
        "expired": ItemFactory(section=team.section, title="Expired"),
    }
    attest(items["fresh"], team.manager, 1, -10)
    attest(items["renewed"], team.manager, 100, 60)  # expired once, then renewed: the newest evidence counts
    attest(items["renewed"], team.manager, 2, -5)
    attest(items["stale"], team.manager, 40, 5)
    attest(items["stale_short_grace"], team.manager, 40, 1)
    attest(items["expired"], team.manager, 100, 60)
    attest(team.foreign_item, team.outsider, 40, 5)  # stale, but not alpha's
    return items


def freshness_rows(client: APIClient, **params: Any) -> dict[int, dict[str, Any]]:
    return {row["item"]: row for row in rows(client.get(FRESHNESS, params))}


def test_the_freshness_list_names_exactly_the_items_in_each_state(team, aged):
    client = api(team.executive)

    stale = freshness_rows(client, program="alpha", state="stale")
    assert set(stale) == {aged["stale"].pk, aged["stale_short_grace"].pk}
    assert stale[aged["stale"].pk]["age_days"] == 40
    assert (stale[aged["stale"].pk]["program"], stale[aged["stale"].pk]["title"]) == ("alpha", "Stale")
    assert set(freshness_rows(client, program="alpha", state="fresh")) == {
        aged["fresh"].pk,
        aged["renewed"].pk,
    }
    assert set(freshness_rows(client, program="alpha", state="expired")) == {aged["expired"].pk}
    missing = freshness_rows(client, program="alpha", state="missing")
    assert set(missing) == {team.owned_item.pk, team.unowned_item.pk}
    assert missing[team.owned_item.pk]["observed_at"] is None
    everything = freshness_rows(client, program="alpha")
    assert len(everything) == 7
    assert {pk: row["state"] for pk, row in everything.items()}[aged["stale_short_grace"].pk] == "stale"


def test_the_freshness_list_agrees_with_the_state_of_each_row(team, aged):
    client = api(team.manager)

    for state in ("fresh", "stale", "expired", "missing"):
        assert {row["state"] for row in freshness_rows(client, state=state).values()} <= {state}


def test_the_freshness_list_is_scoped_to_the_callers_programs(team, aged):
    assert set(freshness_rows(api(team.outsider), state="stale")) == {team.foreign_item.pk}
    assert freshness_rows(api(team.outsider), program="alpha") == {}
    assert freshness_rows(api(team.manager), program="beta") == {}
    assert api().get(FRESHNESS).status_code in (401, 403)


def test_the_freshness_list_runs_the_same_queries_for_5_and_50_items(team, django_assert_num_queries):
    def add(count: int) -> None:
        for n in range(count):
            item = ItemFactory(section=team.section)
            attest(item, team.manager, 40 if n % 2 else 1, 5 if n % 2 else -5)

    add(5)
    client = api(team.auditor)
    with CaptureQueriesContext(connection) as five:
        assert len(freshness_rows(client, program="alpha", page_size=100)) == 7
    add(45)
    with django_assert_num_queries(len(five.captured_queries)):
        assert len(freshness_rows(client, program="alpha", page_size=100)) == 52


# --- schema -------------------------------------------------------------------------------------------------


def test_the_schema_describes_the_metrics_endpoints(team, client):
    client.force_login(team.executive)

    response = client.get("/api/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.content.decode()
    for path in (
        "/api/v1/metrics/",
        "/api/v1/measurements/",
        "/api/v1/evidence-sources/{id}/run/",
        "/api/v1/evidence-sources/{id}/rotate-token/",
        "/api/v1/evidence-sources/{id}/push/",
        "/api/v1/collection-runs/",
        "/api/v1/evidence/freshness/",
        "/api/v1/evidence/{id}/file/",
    ):
        assert path in schema, path
