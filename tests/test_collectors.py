"""Evidence collectors end to end: real HTTP servers on loopback, the services that schedule and record runs,
the `collect_evidence` command and the Celery task. Only the network target is local; nothing is mocked."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics import services, tasks
from metrics.collectors import Result, Status
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement
from tests.factories import ItemFactory, MetricFactory, member

pytestmark = pytest.mark.django_db

Kind = EvidenceSource.Kind
RunStatus = CollectionRun.Status
PROM_TIME = 1767225600.5  # 2026-01-01T00:00:00.5Z, the sample time the fake Prometheus reports


# --- a loopback HTTP server ---------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.received.append(Received(self.command, self.path, headers))
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            self.reply(404, b"no such page")
        else:
            route(self)

    do_HEAD = do_POST = do_GET

    def reply(
        self, status: int, body: bytes = b"", *, content_type: str = "text/plain", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def reply_json(self, document: Any, status: int = 200) -> None:
        self.reply(status, json.dumps(document).encode(), content_type="application/json")

    def stall(self, seconds: float) -> None:
        """Sleep, but wake up when the test ends so no handler thread outlives it."""
        self.server.released.wait(seconds)


Route = Callable[[Handler], None]


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops connects when a round opens many at once

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.routes: dict[str, Route] = {}
        self.received: list[Received] = []
        self.released = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up on a stalled answer is the point of the timeout tests

    def hits(self, path: str) -> int:
        return sum(1 for request in self.received if urlsplit(request.path).path == path)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    started = LoopbackServer()
    threading.Thread(target=started.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield started
    started.released.set()
    started.shutdown()
    started.server_close()


def answer(status: int = 200, body: bytes = b"ok", *, delay: float = 0, **headers: str) -> Route:
    def route(handler: Handler) -> None:
        if delay:
            handler.stall(delay)
        handler.reply(status, body, **headers)

    return route


def json_answer(document: Any, status: int = 200) -> Route:
    return lambda handler: handler.reply_json(document, status)


def in_turn(*routes: Route) -> Route:
    """Each request gets the next route; the last one answers every request after that."""
    calls = iter(range(len(routes) * 1000))

    def route(handler: Handler) -> None:
        routes[min(next(calls), len(routes) - 1)](handler)

    return route


# --- fixtures and helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def collector_settings(settings: Any) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.CAIRN_COLLECTOR_BACKOFF_MS = 1
    settings.CAIRN_COLLECTOR_MAX_ATTEMPTS = 3


@pytest.fixture
def metric(team: Any) -> Any:
    return MetricFactory(program=team.program, key="availability", name="Availability")


def make_source(
    team: Any,
    kind: str,
    config: dict[str, Any],
    *,
    metric: Any = None,
    items: tuple[Any, ...] = (),
    **fields: Any,
) -> EvidenceSource:
    fields.setdefault("name", f"{kind} source")
    fields.setdefault("timeout_seconds", Decimal("2"))
    source = EvidenceSource(program=team.program, kind=kind, config=config, metric=metric, **fields)
    services.source_save(source=source, by=team.manager, item_ids=[item.pk for item in items])
    return source


def check(url: str, **config: Any) -> dict[str, Any]:
    return {"url": url, **config}


def run_now(team: Any, source: EvidenceSource) -> CollectionRun:
    [run] = services.sources_collect_now(sources=[source], by=team.manager)
    return run


def prometheus_route(answers: dict[str, Route], seen: list[str]) -> Route:
    """/api/v1/query: the answer chosen by the `query` parameter, like a real Prometheus evaluates it."""

    def route(handler: Handler) -> None:
        [query] = parse_qs(urlsplit(handler.path).query)["query"]
        seen.append(query)
        answers[query](handler)

    return route


def prom_success(result_type: str, result: Any) -> Route:
    return json_answer({"status": "success", "data": {"resultType": result_type, "result": result}})


def series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [PROM_TIME, value]}


# --- http_check -----------------------------------------------------------------------------------------------


def test_it_passes_a_check_and_records_its_latency_and_evidence(team, server, metric):
    server.routes["/health"] = answer(200, b"status: all good, version: 42")
    items = (team.owned_item, team.unowned_item)
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(
            f"{server.url}/health", max_latency_ms=2000, body_contains="all good", body_regex=r"version: \d+"
        ),
        metric=metric,
        items=items,
        evidence_valid_days=7,
    )

    run = run_now(team, source)

    assert (run.status, run.passed, run.attempts, run.error) == (RunStatus.SUCCESS, True, 1, "")
    assert run.trigger == CollectionRun.Trigger.MANUAL and run.triggered_by == team.manager
    assert run.excerpt.startswith("status: all good")
    assert 0 < run.value < 2000  # latency in ms
    measurement = Measurement.objects.get(metric=metric)
    assert (measurement.value, measurement.run, measurement.source) == (run.value, run, "collector")
    evidence = Evidence.objects.filter(run=run).order_by("item_id")
    assert [(e.item_id, e.kind, e.passed) for e in evidence] == [
        (item.pk, Evidence.Kind.CHECK, True) for item in sorted(items, key=lambda i: i.pk)
    ]
    assert all(e.valid_until - e.observed_at == timedelta(days=7) for e in evidence)
    assert server.received[0].method == "GET"


def test_it_uses_the_configured_method(team, server):
    server.routes["/ping"] = answer(204, b"")
    source = make_source(
        team, Kind.HTTP_CHECK, check(f"{server.url}/ping", method="head", expected_status=[204])
    )

    run = run_now(team, source)

    assert run.status == RunStatus.SUCCESS
    assert server.received[0].method == "HEAD"


@pytest.mark.parametrize(
    ("route", "config", "why"),
    [
        (answer(403, b"forbidden"), {}, "status 403 is not one of [200]"),
        (answer(200, b"ok", delay=0.3), {"max_latency_ms": 50}, "is over 50 ms"),
        (answer(200, b"maintenance"), {"body_contains": "all good"}, "does not contain 'all good'"),
        (answer(200, b"version: x"), {"body_regex": r"version: \d+"}, r"does not match /version: \d+/"),
    ],
    ids=["status", "latency", "substring", "regex"],
)
def test_it_fails_a_check_and_says_why(team, server, route, config, why):
    server.routes["/health"] = route
    source = make_source(
        team, Kind.HTTP_CHECK, check(f"{server.url}/health", **config), items=(team.owned_item,)
    )

    run = run_now(team, source)

    assert (run.status, run.passed, run.attempts) == (RunStatus.FAILED, False, 1)
    assert why in run.error
    [evidence] = Evidence.objects.filter(item=team.owned_item)
    assert (evidence.run, evidence.passed) == (run, False)
    assert why in evidence.note


def test_it_records_a_timeout_without_evidence_and_leaves_the_last_result_alone(team, server, metric):
    server.routes["/health"] = in_turn(answer(200), answer(200, delay=5))
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/health"),
        metric=metric,
        items=(team.owned_item,),
        timeout_seconds=Decimal("0.3"),
    )
    passing = run_now(team, source)
    assert passing.status == RunStatus.SUCCESS
    before = list(Evidence.objects.values())

    started = time.monotonic()
    run = run_now(team, source)

    assert run.status == RunStatus.TIMEOUT
    assert run.passed is None and run.value is None
    assert "timed out" in run.error
    assert run.attempts == 3  # a timeout is transient: retried
    assert time.monotonic() - started < 3  # each attempt was cut at 0.3 s, not the server's 5 s
    assert not Evidence.objects.filter(run=run).exists()
    assert not Measurement.objects.filter(run=run).exists()
    assert list(Evidence.objects.values()) == before
    assert Evidence.objects.get(item=team.owned_item).passed is True


def test_it_retries_a_server_error_and_succeeds(team, server, metric):
    server.routes["/health"] = in_turn(answer(500, b"boom"), answer(200))
    source = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/health"), metric=metric)

    run = run_now(team, source)

    assert (run.status, run.passed, run.attempts) == (RunStatus.SUCCESS, True, 2)
    assert server.hits("/health") == 2
    assert Measurement.objects.filter(metric=metric).count() == 1


def test_it_records_a_failed_check_when_the_server_keeps_answering_an_error(team, server, metric, settings):
    server.routes["/health"] = answer(503, b"down for maintenance")
    source = make_source(
        team, Kind.HTTP_CHECK, check(f"{server.url}/health"), metric=metric, items=(team.owned_item,)
    )

    run = run_now(team, source)

    # Retried as transient, then the answer stands: the service is down, which is a result, not an error.
    assert (run.status, run.passed) == (RunStatus.FAILED, False)
    assert run.attempts == settings.CAIRN_COLLECTOR_MAX_ATTEMPTS == server.hits("/health")
    assert run.error == "status 503 is not one of [200]"
    assert run.excerpt == "down for maintenance"
    [evidence] = Evidence.objects.filter(item=team.owned_item)
    assert (evidence.run, evidence.passed) == (run, False)


def test_it_does_not_retry_a_not_found(team, server):
    source = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/missing"))

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
    assert "status 404" in run.error
    assert server.hits("/missing") == 1


def test_it_refuses_an_oversize_body_without_retrying(team, server, settings):
    settings.CAIRN_COLLECTOR_MAX_BYTES = 1024
    server.routes["/big"] = answer(200, b"x" * 4096)
    source = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/big"), items=(team.owned_item,))

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 1)
    assert "1024" in run.error
    assert server.hits("/big") == 1
    assert not Evidence.objects.exists()


def test_it_follows_a_redirect(team, server):
    server.routes["/old"] = answer(302, b"", Location="/new")
    server.routes["/new"] = answer(200, b"moved here")
    source = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/old", body_contains="moved here"))

    run = run_now(team, source)

    assert run.status == RunStatus.SUCCESS
    assert [urlsplit(request.path).path for request in server.received] == ["/old", "/new"]


def test_it_refuses_a_redirect_to_the_metadata_service(team, server):
    server.routes["/old"] = answer(302, b"", Location="http://169.254.169.254/latest/meta-data/")
    source = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/old"), items=(team.owned_item,))

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 1)
    assert "169.254.169.254" in run.error
    assert not Evidence.objects.exists()


def test_it_refuses_a_loopback_address_outside_the_allowlist(team, server):
    source = make_source(team, Kind.HTTP_CHECK, check(f"http://127.0.0.2:{server.port}/health"))

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 1)
    assert "127.0.0.2" in run.error
    assert server.received == []


# --- http_json ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected", "value", "passed"),
    [
        (">=", 99.9, 99.95, True),
        (">=", 99.9, 99.5, False),
        ("<=", 5, 3, True),
        ("<=", 5, 7, False),
        ("==", "ok", "ok", True),
        ("==", "ok", "degraded", False),
        ("in", ["ok", "green"], "green", True),
        ("in", ["ok", "green"], "red", False),
    ],
)
def test_it_compares_a_json_value(team, server, op, expected, value, passed):
    server.routes["/status"] = json_answer({"data": {"checks": [{"value": value}]}})
    source = make_source(
        team,
        Kind.HTTP_JSON,
        {"url": f"{server.url}/status", "path": "$.data.checks[0].value", "op": op, "expected": expected},
        items=(team.owned_item,),
    )

    run = run_now(team, source)

    assert run.status == (RunStatus.SUCCESS if passed else RunStatus.FAILED)
    assert run.passed is passed
    assert Evidence.objects.get(item=team.owned_item).passed is passed
    if not passed:
        assert "does not hold" in run.error
    assert server.received[0].headers["accept"] == "application/json"


def test_it_records_a_json_number_as_a_measurement(team, server, metric):
    server.routes["/slo"] = json_answer({"data": {"availability": 99.95}})
    source = make_source(
        team, Kind.HTTP_JSON, {"url": f"{server.url}/slo", "path": "data.availability"}, metric=metric
    )

    run = run_now(team, source)

    assert (run.status, run.value, run.passed) == (RunStatus.SUCCESS, Decimal("99.95"), None)
    measurement = Measurement.objects.get(metric=metric)
    assert (measurement.value, measurement.run, measurement.source) == (Decimal("99.95"), run, "collector")


def test_it_names_a_missing_json_path(team, server, metric):
    server.routes["/slo"] = json_answer({"data": {"availability": 99.95}})
    source = make_source(
        team, Kind.HTTP_JSON, {"url": f"{server.url}/slo", "path": "data.uptime"}, metric=metric
    )

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 1)
    assert "data.uptime" in run.error
    assert not Measurement.objects.exists()


def test_it_reports_bad_json_without_retrying(team, server, metric):
    server.routes["/slo"] = answer(200, b"{not json", content_type="application/json")
    source = make_source(
        team, Kind.HTTP_JSON, {"url": f"{server.url}/slo", "path": "data.availability"}, metric=metric
    )

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 1)
    assert "not JSON" in run.error
    assert server.hits("/slo") == 1


def test_it_refuses_a_non_numeric_value_without_a_comparison(team, server, metric):
    server.routes["/slo"] = json_answer({"state": "green"})
    source = make_source(team, Kind.HTTP_JSON, {"url": f"{server.url}/slo", "path": "state"}, metric=metric)

    run = run_now(team, source)

    assert run.status == RunStatus.ERROR
    assert "'green' is not a number" in run.error
    assert not Measurement.objects.exists()


def test_it_reports_a_json_endpoint_not_found_as_a_permanent_error(team, server):
    source = make_source(team, Kind.HTTP_JSON, {"url": f"{server.url}/gone", "path": "a"})

    run = run_now(team, source)

    assert (run.status, run.attempts, run.error) == (RunStatus.ERROR, 1, "HTTP 404")


# --- prometheus -----------------------------------------------------------------------------------------------

AVAILABILITY = 'avg_over_time(probe_success{job="api", env=~"prod|eu"}[30d]) * 100'


def prometheus_source(team: Any, server: LoopbackServer, metric: Any, **config: Any) -> EvidenceSource:
    return make_source(
        team, Kind.PROMETHEUS, {"base_url": f"{server.url}/", "query": AVAILABILITY, **config}, metric=metric
    )


def test_it_records_a_prometheus_scalar(team, server, metric):
    seen: list[str] = []
    server.routes["/api/v1/query"] = prometheus_route(
        {AVAILABILITY: prom_success("scalar", [PROM_TIME, "99.95"])}, seen
    )

    run = run_now(team, prometheus_source(team, server, metric))

    assert (run.status, run.value) == (RunStatus.SUCCESS, Decimal("99.95"))
    assert seen == [AVAILABILITY]  # the expression arrives intact, special characters and all
    assert Measurement.objects.get(metric=metric).observed_at == datetime.fromtimestamp(PROM_TIME, UTC)


def test_it_records_a_single_series_with_its_sample_time(team, server, metric):
    seen: list[str] = []
    server.routes["/api/v1/query"] = prometheus_route(
        {AVAILABILITY: prom_success("vector", [series("99.912", job="api")])}, seen
    )

    run = run_now(team, prometheus_source(team, server, metric))

    assert (run.status, run.value) == (RunStatus.SUCCESS, Decimal("99.912"))
    measurement = Measurement.objects.get(metric=metric)
    assert (measurement.value, measurement.run) == (Decimal("99.912"), run)
    assert measurement.observed_at == datetime.fromtimestamp(PROM_TIME, UTC)
    assert urlsplit(server.received[0].path).path == "/api/v1/query"


def test_it_compares_a_prometheus_value(team, server, metric):
    seen: list[str] = []
    server.routes["/api/v1/query"] = prometheus_route(
        {AVAILABILITY: prom_success("vector", [series("99.5")])}, seen
    )
    source = make_source(
        team,
        Kind.PROMETHEUS,
        {"base_url": server.url, "query": AVAILABILITY, "op": ">=", "expected": 99.9},
        metric=metric,
        items=(team.owned_item,),
    )

    run = run_now(team, source)

    assert (run.status, run.passed, run.value) == (RunStatus.FAILED, False, Decimal("99.5"))
    assert Evidence.objects.get(item=team.owned_item).passed is False
    assert Measurement.objects.get(metric=metric).value == Decimal("99.5")


@pytest.mark.parametrize(
    ("route", "why"),
    [
        (prom_success("vector", []), "no series"),
        (prom_success("vector", [series("99.9", job="api"), series("98.1", job="web")]), "2 series"),
        (prom_success("scalar", [PROM_TIME, "NaN"]), "'NaN' is not a finite number"),
        (prom_success("vector", [series("+Inf")]), "'+Inf' is not a finite number"),
        (prom_success("matrix", [{"metric": {}, "values": [[PROM_TIME, "1"]]}]), "'matrix' is not supported"),
        (
            json_answer(
                {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'},
                status=400,
            ),
            'Prometheus answered bad_data: parse error: unexpected "}"',
        ),
    ],
    ids=["empty", "two-series", "nan", "inf", "matrix", "promql-error"],
)
def test_it_reports_a_prometheus_answer_it_cannot_use(team, server, metric, route, why):
    server.routes["/api/v1/query"] = prometheus_route({AVAILABILITY: route}, [])

    run = run_now(team, prometheus_source(team, server, metric))

    assert (run.status, run.attempts) == (RunStatus.ERROR, 1)
    assert why in run.error
    assert not Measurement.objects.exists()


# --- credentials ----------------------------------------------------------------------------------------------


def text_columns(model: type[models.Model]) -> list[str]:
    kinds = (models.CharField, models.TextField, models.JSONField)
    return [field.attname for field in model._meta.concrete_fields if isinstance(field, kinds)]


def stored_text() -> str:
    """Every text column of every row a collection writes, as one string."""
    models_written = (CollectionRun, EvidenceSource, EvidenceSource.history.model, Measurement, Evidence)
    return "\n".join(
        str(value)
        for model in models_written
        for row in model.objects.values_list(*text_columns(model))
        for value in row
    )


def test_it_sends_a_bearer_token_it_never_stores_or_logs(team, server, metric, monkeypatch, caplog):
    token = "tok-7f3a9c1e5b2d48e6a0c4f19b"
    monkeypatch.setenv("CAIRN_SECRET_STATUS_TOKEN", token)
    caplog.set_level(logging.DEBUG, logger="metrics")
    caplog.set_level(logging.DEBUG, logger="cairn")
    server.routes["/health"] = in_turn(answer(200), answer(401, b"token expired"))
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/health"),
        metric=metric,
        items=(team.owned_item,),
        auth=EvidenceSource.Auth.BEARER,
        secret_env="CAIRN_SECRET_STATUS_TOKEN",
    )

    runs = [run_now(team, source), run_now(team, source)]

    assert [run.status for run in runs] == [RunStatus.SUCCESS, RunStatus.FAILED]
    assert [request.headers["authorization"] for request in server.received] == [f"Bearer {token}"] * 2
    assert "collection run" in caplog.text  # the loggers were listening
    assert token not in caplog.text
    assert token not in stored_text()
    assert all(token not in str(getattr(run, name)) for run in runs for name in text_columns(CollectionRun))


def test_it_sends_basic_auth_from_the_environment(team, server, monkeypatch):
    monkeypatch.setenv("CAIRN_SECRET_BASIC", "robot:pa55word")
    server.routes["/health"] = answer(200)
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/health"),
        auth=EvidenceSource.Auth.BASIC,
        secret_env="CAIRN_SECRET_BASIC",
    )

    run = run_now(team, source)

    assert run.status == RunStatus.SUCCESS
    assert server.received[0].headers["authorization"] == "Basic cm9ib3Q6cGE1NXdvcmQ="
    assert "pa55word" not in stored_text()


def test_it_redacts_a_credential_the_server_echoes_back(team, server, monkeypatch):
    """Debug endpoints (httpbin's /headers, say) reflect the request; the excerpt must not keep the token."""
    token = "tok-echoed-0c4f19b7f3a9c1e5"
    monkeypatch.setenv("CAIRN_SECRET_STATUS_TOKEN", token)
    server.routes["/headers"] = lambda handler: handler.reply_json({"headers": dict(handler.headers.items())})
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/headers"),
        auth=EvidenceSource.Auth.BEARER,
        secret_env="CAIRN_SECRET_STATUS_TOKEN",
    )

    run = run_now(team, source)

    assert run.status == RunStatus.SUCCESS
    assert token not in run.excerpt
    assert token not in stored_text()


def test_it_errors_naming_a_missing_credential_variable_and_sends_nothing(team, server, monkeypatch):
    monkeypatch.delenv("CAIRN_SECRET_UNSET_TOKEN", raising=False)
    server.routes["/health"] = answer(200)
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/health"),
        items=(team.owned_item,),
        auth=EvidenceSource.Auth.BEARER,
        secret_env="CAIRN_SECRET_UNSET_TOKEN",
    )

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 0)
    assert "CAIRN_SECRET_UNSET_TOKEN" in run.error
    assert server.received == []
    assert not Evidence.objects.exists()


def test_it_errors_on_a_basic_credential_without_a_colon(team, server, monkeypatch):
    monkeypatch.setenv("CAIRN_SECRET_BASIC", "just-a-password")
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/health"),
        auth=EvidenceSource.Auth.BASIC,
        secret_env="CAIRN_SECRET_BASIC",
    )

    run = run_now(team, source)

    assert run.status == RunStatus.ERROR
    assert "CAIRN_SECRET_BASIC must hold user:password" in run.error
    assert "just-a-password" not in stored_text()
    assert server.received == []


# --- configuration --------------------------------------------------------------------------------------------

URL = "https://status.example.com/health"


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        (Kind.HTTP_CHECK, {}, "needs `url`"),
        (
            Kind.HTTP_CHECK,
            {"url": "ftp://files.example.com/status"},
            "must be an http:// or https:// address",
        ),
        (Kind.HTTP_CHECK, {"url": "https://"}, "must be an http:// or https:// address"),
        (
            Kind.HTTP_CHECK,
            {"url": URL, "body_regex": "(unclosed"},
            "`body_regex` is not a regular expression",
        ),
        (Kind.HTTP_CHECK, {"url": URL, "method": "DELETE"}, "`method` must be one of"),
        (Kind.HTTP_CHECK, {"url": URL, "expected_status": [700]}, "`expected_status` must be a list"),
        (Kind.HTTP_CHECK, {"url": URL, "max_latency_ms": -5}, "`max_latency_ms` must be a positive number"),
        (Kind.HTTP_JSON, {"url": URL}, "needs `path`"),
        (Kind.HTTP_JSON, {"url": URL, "path": "data..value"}, "is not a JSON path"),
        (Kind.HTTP_JSON, {"url": URL, "path": "items[first]"}, "is not a JSON path"),
        (Kind.HTTP_JSON, {"url": URL, "path": "a", "op": "~=", "expected": 1}, "`op` must be one of"),
        (Kind.HTTP_JSON, {"url": URL, "path": "a", "op": "in", "expected": "ok"}, "must be a list for `in`"),
        (Kind.HTTP_JSON, {"url": URL, "path": "a", "op": ">=", "expected": "high"}, "must be a number"),
        (Kind.HTTP_JSON, {"url": URL, "path": "a", "op": "=="}, "needs `expected`"),
        (Kind.PROMETHEUS, {"base_url": "https://prom.example.com"}, "needs `query`"),
        (Kind.PROMETHEUS, {"base_url": "file:///etc/passwd", "query": "up"}, "must be an http://"),
        (Kind.PUSH, {"url": URL}, "push source has no settings"),
    ],
)
def test_it_rejects_a_bad_configuration(team, kind, config, message):
    with pytest.raises(ValidationError) as error:
        make_source(team, kind, config)

    assert message in " ".join(error.value.messages)
    assert not EvidenceSource.objects.exists()


def test_it_rejects_an_unknown_kind(team):
    with pytest.raises(ValidationError, match="Unknown kind 'ftp_check'"):
        make_source(team, "ftp_check", {"url": URL})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval_seconds": 30}, "interval_seconds"),
        ({"timeout_seconds": Decimal("0")}, "timeout_seconds"),
        ({"auth": EvidenceSource.Auth.BEARER}, "secret_env"),
    ],
)
def test_it_rejects_bad_source_settings(team, fields, field):
    with pytest.raises(ValidationError) as error:
        make_source(team, Kind.HTTP_CHECK, {"url": URL}, **fields)

    assert field in error.value.message_dict


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc.def",
        "sk_live-51HfZ2aKx",
        "robot:hunter2",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",  # a GitHub token: letters, digits and one underscore
        "0123456789abcdef0123456789abcdef",  # a hex API key; no variable name starts with a digit
    ],
)
def test_it_rejects_a_credential_typed_where_a_variable_name_belongs(team, value):
    with pytest.raises(ValidationError) as error:
        make_source(team, Kind.HTTP_CHECK, {"url": URL}, auth=EvidenceSource.Auth.BEARER, secret_env=value)

    assert "secret_env" in error.value.message_dict
    assert not EvidenceSource.objects.exists()


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "cairn_secret_token"])
def test_it_rejects_a_variable_not_meant_for_collectors(team, name):
    with pytest.raises(ValidationError, match="CAIRN_SECRET_") as error:
        make_source(team, Kind.HTTP_CHECK, {"url": URL}, auth=EvidenceSource.Auth.BEARER, secret_env=name)

    assert "secret_env" in error.value.message_dict


def test_it_accepts_a_collector_credential_name(team):
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        {"url": URL},
        auth=EvidenceSource.Auth.BEARER,
        secret_env="CAIRN_SECRET_STATUS_PAGE_2",
    )

    assert EvidenceSource.objects.get(pk=source.pk).secret_env == "CAIRN_SECRET_STATUS_PAGE_2"


def test_it_never_sends_a_variable_not_meant_for_collectors(team, server, monkeypatch):
    """A name written past source_save (a bulk update, an old row) is still refused when the run starts."""
    monkeypatch.setenv("SECRET_KEY", "the-django-secret-key")
    server.routes["/health"] = answer(200)
    source = make_source(
        team,
        Kind.HTTP_CHECK,
        check(f"{server.url}/health"),
        auth=EvidenceSource.Auth.BEARER,
        secret_env="CAIRN_SECRET_STATUS_TOKEN",
    )
    EvidenceSource.objects.filter(pk=source.pk).update(secret_env="SECRET_KEY")
    source.refresh_from_db()

    run = run_now(team, source)

    assert (run.status, run.attempts) == (RunStatus.ERROR, 0)
    assert "SECRET_KEY is not a collector credential" in run.error
    assert server.received == []


def test_it_cleans_a_configuration_on_save(team):
    source = make_source(
        team, Kind.PROMETHEUS, {"base_url": "https://prom.example.com/", "query": "up", "extra": 1}
    )

    source.refresh_from_db()
    assert source.config == {"base_url": "https://prom.example.com", "query": "up"}


def test_it_rejects_a_metric_of_another_program(team):
    foreign = MetricFactory(program=team.other_program)

    with pytest.raises(ValidationError) as error:
        make_source(team, Kind.HTTP_JSON, {"url": URL, "path": "a"}, metric=foreign)

    assert "metric" in error.value.message_dict


def test_it_rejects_items_of_another_program(team):
    with pytest.raises(ValidationError) as error:
        make_source(team, Kind.HTTP_CHECK, {"url": URL}, items=(team.owned_item, team.foreign_item))

    assert "items" in error.value.message_dict
    assert not EvidenceSource.objects.exists()


@pytest.mark.parametrize(
    ("persona", "allowed"), [("manager", True), ("contributor", False), ("outsider", False)]
)
def test_it_lets_only_managers_configure_sources(team, persona, allowed):
    source = EvidenceSource(
        program=team.program, name="Status page", kind=Kind.HTTP_CHECK, config={"url": URL}
    )

    if allowed:
        services.source_save(source=source, by=team.user(persona))
        assert EvidenceSource.objects.get().created_by == team.manager
    else:
        with pytest.raises(PermissionDenied):
            services.source_save(source=source, by=team.user(persona))
        assert not EvidenceSource.objects.exists()


@pytest.mark.parametrize("persona", ["contributor", "outsider"])
def test_it_lets_only_managers_run_sources_now_or_rotate_tokens(team, persona):
    pull = make_source(team, Kind.HTTP_CHECK, {"url": URL})
    push = make_source(team, Kind.PUSH, {})

    with pytest.raises(PermissionDenied):
        services.sources_collect_now(sources=[pull], by=team.user(persona))
    with pytest.raises(PermissionDenied):
        services.source_rotate_token(source=push, by=team.user(persona))
    assert not CollectionRun.objects.exists()


# --- scheduling and idempotency -------------------------------------------------------------------------------


def scheduled_source(team: Any, server: LoopbackServer, metric: Any = None, **fields: Any) -> EvidenceSource:
    server.routes.setdefault("/health", answer(200))
    fields.setdefault("interval_seconds", 3600)
    return make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/health"), metric=metric, **fields)


def test_it_makes_a_new_pull_source_due_at_once(team, server):
    before = timezone.now()
    source = scheduled_source(team, server)

    assert before <= source.next_run_at <= timezone.now()
    assert list(EvidenceSource.objects.due(timezone.now())) == [source]


def test_it_runs_a_due_source_and_moves_its_next_run(team, server, metric):
    source = scheduled_source(team, server, metric, interval_seconds=600)
    slot = source.next_run_at

    [run] = services.collect_due(now=slot)

    assert (run.source, run.slot, run.trigger, run.status) == (source, slot, "schedule", RunStatus.SUCCESS)
    source.refresh_from_db()
    assert source.next_run_at == slot + timedelta(seconds=600)
    assert Measurement.objects.get().run == run


def test_it_runs_a_slot_once_when_collect_due_runs_twice_at_the_same_moment(team, server, metric):
    source = scheduled_source(team, server, metric)
    now = source.next_run_at

    first = services.collect_due(now=now)
    second = services.collect_due(now=now)

    assert (len(first), second) == (1, [])
    assert CollectionRun.objects.count() == Measurement.objects.count() == server.hits("/health") == 1


def test_it_runs_one_catch_up_slot_after_a_worker_was_down(team, server):
    source = scheduled_source(team, server, interval_seconds=600)
    slot = source.next_run_at

    runs = services.collect_due(now=slot + timedelta(seconds=1500))

    assert [run.slot for run in runs] == [slot]
    source.refresh_from_db()
    assert source.next_run_at == slot + timedelta(seconds=1800)  # the first slot after "now"


def test_it_runs_every_due_source_in_one_round(team, server):
    first = scheduled_source(team, server, name="First")
    second = scheduled_source(team, server, name="Second")
    later = scheduled_source(team, server, name="Later")
    EvidenceSource.objects.filter(pk=later.pk).update(next_run_at=timezone.now() + timedelta(hours=1))

    runs = services.collect_due(now=timezone.now())

    assert sorted(run.source_id for run in runs) == sorted([first.pk, second.pk])
    assert all(run.status == RunStatus.SUCCESS for run in runs)


def test_it_takes_over_an_abandoned_scheduled_run_and_finishes_it_once(team, server, metric):
    source = scheduled_source(team, server, metric, interval_seconds=3600)
    slot = source.next_run_at
    # What a worker killed mid-run leaves: the slot claimed, its run `running`, no result.
    EvidenceSource.objects.filter(pk=source.pk).update(next_run_at=slot + timedelta(hours=1))
    stale = CollectionRun.objects.create(source=source, slot=slot, started_at=slot)

    [run] = services.collect_due(now=slot + timedelta(minutes=10))

    assert run.pk == stale.pk
    assert (run.status, run.slot) == (RunStatus.SUCCESS, slot)
    assert Measurement.objects.get().run == run
    # The dead worker waking up, and later ticks, change nothing.
    assert (
        services.run_finish(run=stale, result=Result(status=Status.SUCCESS, value=Decimal(1)), duration_ms=1)
        is False
    )
    assert services.collect_due(now=slot + timedelta(minutes=20)) == []
    assert CollectionRun.objects.count() == Measurement.objects.count() == 1


def test_it_leaves_a_run_still_within_its_deadline_alone(team, server):
    source = scheduled_source(team, server)
    slot = source.next_run_at
    EvidenceSource.objects.filter(pk=source.pk).update(next_run_at=slot + timedelta(hours=1))
    CollectionRun.objects.create(source=source, slot=slot, started_at=slot)

    assert services.collect_due(now=slot + timedelta(seconds=30)) == []
    assert CollectionRun.objects.get().status == RunStatus.RUNNING


def test_it_records_a_result_once_when_run_finish_runs_twice(team, server, metric):
    source = scheduled_source(team, server, metric, items=(team.owned_item,))
    run = CollectionRun.objects.create(source=source, started_at=timezone.now())
    result = Result(status=Status.SUCCESS, passed=True, value=Decimal("99.9"), observed_at=timezone.now())

    assert services.run_finish(run=run, result=result, duration_ms=5, attempts=1) is True
    assert services.run_finish(run=run, result=result, duration_ms=5, attempts=1) is False
    assert Measurement.objects.count() == Evidence.objects.count() == 1


def test_it_never_runs_disabled_archived_or_push_sources_on_schedule(team, server):
    disabled = scheduled_source(team, server, name="Disabled", enabled=False)
    archived = scheduled_source(team, server, name="Archived")
    push = make_source(team, Kind.PUSH, {}, name="Pushed")
    past = timezone.now() - timedelta(days=1)
    EvidenceSource.objects.filter(pk__in=[disabled.pk, archived.pk, push.pk]).update(next_run_at=past)
    EvidenceSource.objects.filter(pk=archived.pk).update(archived_at=past)

    assert not EvidenceSource.objects.due(timezone.now()).exists()
    assert services.collect_due() == []
    assert server.received == []


def test_it_marks_an_abandoned_manual_run_as_an_error(team, server):
    source = scheduled_source(team, server, enabled=False)
    long_ago = timezone.now() - timedelta(hours=1)
    run = CollectionRun.objects.create(
        source=source, trigger=CollectionRun.Trigger.MANUAL, started_at=long_ago
    )

    assert services.collect_due() == []

    run.refresh_from_db()
    assert run.status == RunStatus.ERROR
    assert "abandoned" in run.error
    assert server.received == []


def test_it_never_turns_failing_evidence_into_passing_on_an_error(team, server):
    server.routes["/health"] = answer(403)
    source = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/health"), items=(team.owned_item,))

    runs = [run_now(team, source)]
    source.config["url"] = "http://127.0.0.1:1/health"  # nothing listens: connection refused
    source.save()
    runs.append(run_now(team, source))

    assert [run.status for run in runs] == [RunStatus.FAILED, RunStatus.ERROR]
    [evidence] = Evidence.objects.filter(item=team.owned_item)
    assert (evidence.run, evidence.passed) == (runs[0], False)


def test_it_backs_off_exponentially_with_jitter(settings):
    settings.CAIRN_COLLECTOR_BACKOFF_MS = 1000
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0)):
        waits = {services.backoff_seconds(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(waits) > 1  # jittered, so retries of many sources spread out


# --- concurrency ----------------------------------------------------------------------------------------------


def test_it_does_not_let_a_dead_source_delay_the_others(team, server, settings):
    settings.CAIRN_COLLECTOR_MAX_ATTEMPTS = 1
    timeout = 0.5
    server.routes["/dead"] = answer(200, delay=30)
    server.routes["/fast"] = answer(200, delay=timeout / 2)
    dead = [
        make_source(
            team,
            Kind.HTTP_CHECK,
            check(f"{server.url}/dead"),
            name=f"Dead {n}",
            timeout_seconds=Decimal(timeout),
        )
        for n in range(2)
    ]
    fast = [
        make_source(
            team,
            Kind.HTTP_CHECK,
            check(f"{server.url}/fast"),
            name=f"Fast {n}",
            timeout_seconds=Decimal(timeout),
        )
        for n in range(6)
    ]
    assert len(dead) + len(fast) <= settings.CAIRN_COLLECTOR_CONCURRENCY
    # One after another this round would take 2 × 0.5 s (timeouts) + 6 × 0.25 s = 2.5 s: five timeouts.

    started = time.monotonic()
    runs = services.collect_due(now=timezone.now())
    elapsed = time.monotonic() - started

    status = {run.source_id: run.status for run in runs}
    assert [status[source.pk] for source in dead] == [RunStatus.TIMEOUT] * 2
    assert [status[source.pk] for source in fast] == [RunStatus.SUCCESS] * 6
    assert elapsed < 3 * timeout, f"the round took {elapsed:.2f} s"
    fast_ids = {source.pk for source in fast}
    assert all(run.duration_ms < timeout * 1000 for run in runs if run.source_id in fast_ids)


# Measured per source: claiming its slot (UPDATE next_run_at, then SAVEPOINT, INSERT run, RELEASE: 4) and
# finishing it (SAVEPOINT, conditional UPDATE, INSERT measurement, SELECT its items, INSERT evidence, RELEASE: 6),
# so 10; and 4 per round (due sources, abandoned runs, loading the claimed runs, reloading the finished ones).
# 20 sources cost 204. The bound leaves one query per source and two per round to spare, and stays far below
# anything quadratic (a query per pair of sources is 400 on its own).
QUERIES_PER_SOURCE = 11
QUERIES_PER_ROUND = 6


def test_it_records_a_round_in_a_bounded_number_of_queries_per_source(
    team, server, django_assert_max_num_queries
):
    metrics = [MetricFactory(program=team.program) for _ in range(20)]
    items = [ItemFactory(section=team.section) for _ in range(20)]
    for n, (metric, item) in enumerate(zip(metrics, items, strict=True)):
        scheduled_source(team, server, metric, items=(item,), name=f"Source {n}")

    with django_assert_max_num_queries(20 * QUERIES_PER_SOURCE + QUERIES_PER_ROUND):
        runs = services.collect_due(now=timezone.now())

    assert len(runs) == Measurement.objects.count() == Evidence.objects.count() == 20


def test_it_grows_round_queries_linearly_with_sources(team, server):
    def round_queries(count: int) -> int:
        for n in range(count):
            item = ItemFactory(section=team.section)
            scheduled_source(
                team, server, MetricFactory(program=team.program), items=(item,), name=f"S{count}.{n}"
            )
        with CaptureQueriesContext(connection) as queries:
            runs = services.collect_due(now=timezone.now())
        assert len(runs) == count  # earlier rounds' sources are not due again for an hour
        return len(queries)

    five, ten, fifteen = round_queries(5), round_queries(10), round_queries(15)

    assert fifteen - ten == ten - five <= 5 * QUERIES_PER_SOURCE


# --- push -----------------------------------------------------------------------------------------------------


def push_source(
    team: Any, metric: Any = None, items: tuple[Any, ...] = (), name: str = "CI pipeline"
) -> tuple[EvidenceSource, str]:
    source = EvidenceSource(program=team.program, name=name, kind=Kind.PUSH, metric=metric)
    token = services.source_save(source=source, by=team.manager, item_ids=[item.pk for item in items])
    assert token is not None
    return source, token


def test_it_shows_a_push_token_once_and_keeps_only_its_hash(team):
    source, token = push_source(team)

    assert len(token) >= 32
    source.refresh_from_db()
    assert source.push_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert source.next_run_at is None
    assert token not in stored_text()
    source.name = "CI pipeline (main)"
    assert services.source_save(source=source, by=team.manager) is None
    assert services.source_for_push_token(source.pk, token) == source


def test_it_accepts_a_push_token_only_for_its_own_enabled_source(team, server):
    source, token = push_source(team)
    other, other_token = push_source(team, name="Scanner")
    pull = scheduled_source(team, server)

    assert services.source_for_push_token(source.pk, token) == source
    assert services.source_for_push_token(source.pk, token[:-1]) is None
    assert services.source_for_push_token(source.pk, "") is None
    assert services.source_for_push_token(source.pk, other_token) is None
    assert services.source_for_push_token(other.pk, token) is None
    assert services.source_for_push_token(pull.pk, token) is None
    EvidenceSource.objects.filter(pk=source.pk).update(enabled=False)
    assert services.source_for_push_token(source.pk, token) is None


def test_it_records_a_pushed_value_and_result_like_collected_ones(team, metric):
    source, _ = push_source(team, metric, items=(team.owned_item,))
    observed = timezone.now() - timedelta(hours=1)

    run = services.source_push(source=source, value=Decimal("42.5"), passed=True, observed_at=observed)

    assert (run.trigger, run.status, run.passed, run.value) == (
        "push",
        RunStatus.SUCCESS,
        True,
        Decimal("42.5"),
    )
    measurement = Measurement.objects.get()
    assert (measurement.metric, measurement.value, measurement.source) == (metric, Decimal("42.5"), "api")
    assert (measurement.run, measurement.observed_at) == (run, observed)
    evidence = Evidence.objects.get()
    assert (evidence.item, evidence.kind, evidence.passed) == (team.owned_item, Evidence.Kind.CHECK, True)
    assert evidence.observed_at == observed


def test_it_records_a_pushed_failure_as_failing_evidence(team):
    source, _ = push_source(team, items=(team.owned_item,))

    run = services.source_push(source=source, passed=False)

    assert (run.status, run.passed) == (RunStatus.FAILED, False)
    assert Evidence.objects.get(item=team.owned_item).passed is False
    assert not Measurement.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "value"),
        ({"value": Decimal("1")}, "value"),  # the source feeds no metric
        ({"passed": True}, "passed"),  # the source feeds no items
        ({"value": Decimal("1"), "observed_at": timedelta(hours=1)}, "observed_at"),
    ],
    ids=["neither", "value-without-metric", "passed-without-items", "future"],
)
def test_it_refuses_a_push_it_cannot_record(team, metric, payload, field):
    source, _ = push_source(team, metric if field == "observed_at" else None)
    if "observed_at" in payload:
        payload = {**payload, "observed_at": timezone.now() + payload["observed_at"]}

    with pytest.raises(ValidationError) as error:
        services.source_push(source=source, **payload)

    assert field in error.value.message_dict
    assert not CollectionRun.objects.exists()


def test_it_invalidates_the_old_token_on_rotation(team):
    source, old = push_source(team)

    new = services.source_rotate_token(source=source, by=team.manager)

    assert new != old
    assert services.source_for_push_token(source.pk, old) is None
    assert services.source_for_push_token(source.pk, new) == source


def test_it_has_no_token_to_rotate_on_a_pull_source(team):
    source = make_source(team, Kind.HTTP_CHECK, {"url": URL})

    with pytest.raises(ValidationError):
        services.source_rotate_token(source=source, by=team.manager)


# --- evidence and measurements by hand ------------------------------------------------------------------------


def test_it_attaches_a_link(team, settings):
    url = "https://wiki.example.com/dr-test"

    evidence = services.evidence_attach(item=team.unowned_item, by=team.manager, url=url)

    assert (evidence.kind, evidence.url, evidence.passed) == (Evidence.Kind.LINK, url, True)
    assert evidence.recorded_by == team.manager
    assert evidence.valid_until - evidence.observed_at == timedelta(days=settings.CAIRN_EVIDENCE_VALID_DAYS)


def test_it_attaches_a_file_with_its_sha256(team, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    content = b"%PDF-1.4 penetration test report\n" * 200

    evidence = services.evidence_attach(
        item=team.owned_item, by=team.manager, upload=SimpleUploadedFile("pentest report.pdf", content)
    )

    evidence.refresh_from_db()
    assert evidence.kind == Evidence.Kind.FILE
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.file.name.startswith(f"evidence/{team.program.key}/{team.owned_item.key}/")
    with evidence.file.open("rb") as stored:
        assert stored.read() == content


def test_it_refuses_a_file_over_the_size_limit(team, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.CAIRN_EVIDENCE_MAX_FILE_BYTES = 1024
    upload = SimpleUploadedFile("big.bin", b"x" * 1025)

    with pytest.raises(ValidationError) as error:
        services.evidence_attach(item=team.owned_item, by=team.manager, upload=upload)

    assert "file" in error.value.message_dict
    assert not Evidence.objects.exists()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_it_stores_no_file_when_the_evidence_is_refused(team, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    upload = SimpleUploadedFile("scan.pdf", b"%PDF-1.4 scan")

    with pytest.raises(ValidationError) as error:
        services.evidence_attach(item=team.owned_item, by=team.manager, upload=upload, note="n" * 501)

    assert "note" in error.value.message_dict
    assert not Evidence.objects.exists()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


@pytest.mark.parametrize("both", [False, True], ids=["neither", "both"])
def test_it_wants_a_link_or_a_file(team, both):
    given = {"url": "https://wiki.example.com/a", "upload": SimpleUploadedFile("a.txt", b"a")} if both else {}

    with pytest.raises(ValidationError, match="either a link or a file"):
        services.evidence_attach(item=team.owned_item, by=team.manager, **given)


def test_it_wants_evidence_valid_after_it_was_observed(team):
    now = timezone.now()

    with pytest.raises(ValidationError) as error:
        services.evidence_attach(
            item=team.owned_item,
            by=team.manager,
            url="https://wiki.example.com/a",
            observed_at=now,
            valid_until=now,
        )

    assert "valid_until" in error.value.message_dict


@pytest.fixture
def other_contributor(team: Any) -> Any:
    return member(team.program, "contributor", "connor")


@pytest.mark.parametrize(
    ("persona", "item", "allowed"),
    [
        ("manager", "unowned_item", True),
        ("contributor", "owned_item", True),
        ("other_contributor", "owned_item", False),
        ("contributor", "unowned_item", False),
        ("auditor", "owned_item", False),
        ("outsider", "owned_item", False),
    ],
)
def test_it_lets_managers_and_the_items_owner_attach_evidence(
    team, other_contributor, persona, item, allowed
):
    user = other_contributor if persona == "other_contributor" else team.user(persona)

    def attach() -> Evidence:
        return services.evidence_attach(item=getattr(team, item), by=user, url="https://wiki.example.com/a")

    if allowed:
        assert attach().recorded_by == user
    else:
        with pytest.raises(PermissionDenied):
            attach()
        assert not Evidence.objects.exists()


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [("manager", True), ("contributor", True), ("other_contributor", False), ("outsider", False)],
)
def test_it_lets_managers_and_the_metrics_owner_record_measurements(
    team, other_contributor, persona, allowed
):
    metric = MetricFactory(program=team.program, owner=team.contributor)  # the contributor owns the metric
    user = other_contributor if persona == "other_contributor" else team.user(persona)

    def record() -> Measurement:
        return services.measurement_record(metric=metric, value=Decimal("97.5"), by=user)

    if allowed:
        measurement = record()
        assert (measurement.value, measurement.source, measurement.recorded_by) == (
            Decimal("97.5"),
            "manual",
            user,
        )
    else:
        with pytest.raises(PermissionDenied):
            record()
        assert not Measurement.objects.exists()


def test_it_refuses_a_measurement_from_the_future(team, metric):
    tomorrow = timezone.now() + timedelta(days=1)

    with pytest.raises(ValidationError) as error:
        services.measurement_record(metric=metric, value=Decimal("1"), observed_at=tomorrow, by=team.manager)

    assert "observed_at" in error.value.message_dict


def test_it_refuses_a_measurement_of_an_archived_metric(team, metric):
    metric.archived_at = timezone.now()
    metric.save()

    with pytest.raises(ValidationError) as error:
        services.measurement_record(metric=metric, value=Decimal("1"), by=team.manager)

    assert "metric" in error.value.message_dict
    assert not Measurement.objects.exists()


# --- the command and the task ---------------------------------------------------------------------------------


def collect_evidence(*args: str) -> str:
    out = io.StringIO()
    call_command("collect_evidence", *args, stdout=out)
    return out.getvalue()


def test_it_runs_one_source_from_the_command(team, server, metric):
    source = scheduled_source(team, server, metric, name="Status page")

    out = collect_evidence("--source", str(source.pk))

    run = CollectionRun.objects.get()
    assert (run.source, run.trigger, run.status) == (source, CollectionRun.Trigger.MANUAL, RunStatus.SUCCESS)
    assert f"source {source.pk} Status page: success pass value=" in out
    assert out.strip().endswith("1 run(s): 1 success")
    assert Measurement.objects.get().run == run


def test_it_runs_the_sources_of_one_program_from_the_command(team, server):
    ours = scheduled_source(team, server, name="Ours")
    theirs = EvidenceSource(
        program=team.other_program,
        name="Theirs",
        kind=Kind.HTTP_CHECK,
        config={"url": f"{server.url}/health"},
    )
    services.source_save(source=theirs, by=None)

    collect_evidence("--program", team.program.key)

    assert list(CollectionRun.objects.values_list("source_id", flat=True)) == [ours.pk]


def test_it_prints_the_commands_runs_as_json(team, server):
    passing = scheduled_source(team, server, name="Passing")
    server.routes["/down"] = answer(403)
    failing = make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/down"), name="Failing")

    runs = json.loads(collect_evidence("--json"))

    by_source = {run["source"]: run for run in runs}
    assert (by_source[passing.pk]["status"], by_source[passing.pk]["passed"]) == ("success", True)
    assert (by_source[failing.pk]["status"], by_source[failing.pk]["passed"]) == ("failed", False)
    assert "status 403" in by_source[failing.pk]["error"]
    assert {"run", "name", "value", "attempts", "duration_ms"} <= set(runs[0])


def test_it_exits_1_from_the_command_when_a_run_errors(team, server):
    scheduled_source(team, server, name="Fine")
    make_source(team, Kind.HTTP_JSON, {"url": f"{server.url}/gone", "path": "a"}, name="Gone")

    with pytest.raises(CommandError, match=r"2 run\(s\): 1 success, 1 error") as error:
        collect_evidence()

    assert error.value.returncode == 1
    assert CollectionRun.objects.filter(status=RunStatus.ERROR).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--program", "nope"), "no program with key 'nope'"),
        (("--source", "999999"), "no evidence source with id 999999"),
        ((), "no enabled pull sources"),
    ],
)
def test_it_says_what_the_command_could_not_find(team, args, message):
    with pytest.raises(CommandError, match=message) as error:
        collect_evidence(*args)

    assert error.value.returncode == 1


def test_it_refuses_a_push_source_in_the_command(team):
    source, _ = push_source(team)

    with pytest.raises(CommandError, match="push source"):
        collect_evidence("--source", str(source.pk))

    assert not CollectionRun.objects.exists()


def test_it_collects_due_sources_in_the_task_and_counts_them_by_status(team, server):
    server.routes["/down"] = answer(403)
    scheduled_source(team, server, name="Up")
    make_source(team, Kind.HTTP_CHECK, check(f"{server.url}/down"), name="Down")

    result = tasks.collect_due.delay()

    assert result.get() == {"success": 1, "failed": 1}
    assert set(CollectionRun.objects.values_list("celery_task_id", flat=True)) == {result.id}
    assert tasks.collect_due.delay().get() == {}  # nothing is due any more
