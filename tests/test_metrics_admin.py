"""Metrics and evidence in the admin: the forms go through the services, refusals show on the form, records stay
read-only, "Run now" shows the result, and the changelists run a constant number of queries.

Personas come from the `team` fixture: maria manages alpha, carla contributes (owns `owned_item` and here the
`owned_metric`), aude audits, and oscar manages beta only. Executives are not staff and never see the admin.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from metrics import services
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from tests.factories import ItemFactory, MetricFactory
from tests.test_metrics_api import LoopbackServer, loopback

pytestmark = pytest.mark.django_db

Kind = EvidenceSource.Kind


def ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def admin_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def split(moment: datetime, name: str) -> dict[str, str]:
    """A datetime as the admin's split date and time inputs post it."""
    local = timezone.localtime(moment)
    return {f"{name}_0": local.date().isoformat(), f"{name}_1": local.strftime("%H:%M:%S")}


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def change_form_data(response: Any) -> dict[str, Any]:
    """What the browser would post back unchanged from a rendered change form."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif isinstance(field, forms.ModelMultipleChoiceField):
            data[name] = [str(pk) for pk in value or []]
        else:
            data[name] = "" if value is None else str(value)
    return data


@pytest.fixture
def server(settings: Any) -> Iterator[LoopbackServer]:
    with loopback(settings) as started:
        yield started


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def metric(team: Any) -> Metric:
    return MetricFactory(program=team.program, key="availability", name="Availability", unit="%")


@pytest.fixture
def owned_metric(team: Any) -> Metric:
    return MetricFactory(program=team.program, key="patch-rate", name="Patch rate", owner=team.contributor)


def source_for(team: Any, kind: str = Kind.HTTP_CHECK, config: Any = None, **fields: Any) -> EvidenceSource:
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

METRIC_CHANGELIST = reverse("admin:metrics_metric_changelist")


def test_the_metric_changelist_shows_the_latest_value_and_its_freshness(team, metric):
    services.measurement_record(metric=metric, value=Decimal("98.5"), observed_at=ago(40), by=None)
    services.measurement_record(metric=metric, value=Decimal("99.95"), observed_at=ago(3), by=None)
    stale = MetricFactory(program=team.program, name="Backup restores", valid_for_days=10, grace_days=30)
    services.measurement_record(metric=stale, value=Decimal("4"), observed_at=ago(12), by=None)
    MetricFactory(program=team.program, name="Never measured")
    MetricFactory(program=team.other_program, name="Beta's secret metric")

    response = admin_for(team.auditor).get(METRIC_CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    assert "99.95 %" in page
    assert "98.5" not in page
    assert "fresh, 3 d old" in page
    assert "stale, 12 d old" in page
    assert "no evidence" in page
    assert "Beta&#x27;s secret metric" not in page and "Beta's secret metric" not in page
    assert {m.name for m in response.context["cl"].result_list} == {
        "Availability",
        "Backup restores",
        "Never measured",
    }


def test_a_manager_edits_a_metrics_target_in_the_change_form_with_history(team, metric):
    client = admin_for(team.manager)
    url = reverse("admin:metrics_metric_change", args=[metric.pk])
    data = change_form_data(client.get(url))

    response = client.post(url, {**data, "target": "99.5", "_save": "Save"})

    assert response.status_code == 302, form_errors(response)
    metric.refresh_from_db()
    assert (metric.target, metric.key, metric.program) == (Decimal("99.5"), "availability", team.program)
    assert metric.history.count() == 2
    assert metric.history.first().history_user == team.manager


def test_a_manager_adds_a_metric_whose_key_comes_from_its_name(team):
    response = admin_for(team.manager).post(
        reverse("admin:metrics_metric_add"),
        {"program": team.program.pk, "name": "Mean time to patch", "direction": "lower", "weight": "1"},
    )

    assert response.status_code == 302, form_errors(response)
    metric = Metric.objects.get()
    assert (metric.key, metric.program) == ("mean-time-to-patch", team.program)


def test_a_contributor_reads_a_metric_but_cannot_change_it(team, metric):
    client = admin_for(team.contributor)
    url = reverse("admin:metrics_metric_change", args=[metric.pk])

    page = client.get(url)
    refused = client.post(url, {"name": "Renamed", "target": "1", "weight": "1", "direction": "higher"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    metric.refresh_from_db()
    assert (metric.name, metric.target) == ("Availability", Decimal("99.9"))
    assert metric.history.count() == 1


def test_the_outsider_does_not_find_alphas_metric(team, metric):
    response = admin_for(team.outsider).get(
        reverse("admin:metrics_metric_change", args=[metric.pk]), follow=True
    )

    assert response.redirect_chain == [(reverse("admin:index"), 302)]  # Django's answer for "no such object"
    assert any("doesn’t exist" in text for text in messages_of(response))
    assert "Availability" not in response.content.decode()


# --- measurements -------------------------------------------------------------------------------------------

MEASUREMENT_ADD = reverse("admin:metrics_measurement_add")


@pytest.mark.parametrize("persona", ["manager", "contributor"])
def test_a_manager_or_the_metrics_owner_records_a_value(team, owned_metric, persona):
    user = team.user(persona)
    data = {
        "metric": owned_metric.pk,
        "value": "87.5",
        "note": "From the quarterly report",
        **split(ago(1), "observed_at"),
    }

    response = admin_for(user).post(MEASUREMENT_ADD, data)

    assert response.status_code == 302, form_errors(response)
    measurement = Measurement.objects.get()
    assert (measurement.metric, measurement.value, measurement.source, measurement.recorded_by) == (
        owned_metric,
        Decimal("87.5"),
        Measurement.Source.MANUAL,
        user,
    )
    assert measurement.note == "From the quarterly report"


def test_a_contributor_who_does_not_own_the_metric_sees_why_and_writes_nothing(team, metric):
    data = {"metric": metric.pk, "value": "1", **split(ago(1), "observed_at")}

    response = admin_for(team.contributor).post(MEASUREMENT_ADD, data)

    errors = form_errors(response)
    assert "metric's owner" in " ".join(errors["__all__"])
    assert not Measurement.objects.exists()


def test_the_measurement_form_refuses_a_value_of_the_future(team, metric):
    data = {"metric": metric.pk, "value": "1", **split(timezone.now() + timedelta(days=2), "observed_at")}

    errors = form_errors(admin_for(team.manager).post(MEASUREMENT_ADD, data))

    assert "future" in " ".join(errors["observed_at"])
    assert not Measurement.objects.exists()


def test_a_measurement_is_read_only_once_recorded(team, metric):
    measurement = services.measurement_record(metric=metric, value=Decimal("5"), by=team.manager)
    client = admin_for(team.manager)
    url = reverse("admin:metrics_measurement_change", args=[measurement.pk])

    page = client.get(url)
    refused = client.post(url, {"metric": metric.pk, "value": "6", **split(ago(1), "observed_at")})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    deleted = client.post(reverse("admin:metrics_measurement_delete", args=[measurement.pk]), {"post": "yes"})
    assert deleted.status_code == 403
    measurement.refresh_from_db()
    assert measurement.value == Decimal("5")


# --- evidence sources ---------------------------------------------------------------------------------------

SOURCE_ADD = reverse("admin:metrics_evidencesource_add")


def source_form(team: Any, **fields: Any) -> dict[str, Any]:
    return {
        "program": team.program.pk,
        "name": "Edge health",
        "kind": "http_check",
        "config": json.dumps({"url": "https://status.example.com/health", "expected_status": [200, 204]}),
        "auth": "none",
        "secret_env": "",
        "interval_seconds": "600",
        "timeout_seconds": "5",
        "evidence_valid_days": "",
        "enabled": "on",
        "metric": "",
        "items": [team.owned_item.pk],
        **fields,
    }


def test_a_manager_adds_an_http_check_with_a_json_configuration(team, metric):
    response = admin_for(team.manager).post(SOURCE_ADD, source_form(team, metric=metric.pk))

    assert response.status_code == 302, form_errors(response)
    source = EvidenceSource.objects.get()
    assert source.config == {
        "url": "https://status.example.com/health",
        "method": "GET",
        "expected_status": [200, 204],
    }
    assert (source.program, source.metric, list(source.items.all())) == (
        team.program,
        metric,
        [team.owned_item],
    )
    assert (source.created_by, source.push_token_hash, source.next_run_at is not None) == (
        team.manager,
        "",
        True,
    )


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (json.dumps({"url": "gopher://old.example.com"}), "http:// or https://"),
        (json.dumps({"url": "https://example.com", "expected_status": "200"}), "expected_status"),
        ("{not json", "JSON"),
    ],
    ids=["scheme", "status-list", "not-json"],
)
def test_a_bad_configuration_shows_on_the_form_and_nothing_is_written(team, config, fragment):
    response = admin_for(team.manager).post(SOURCE_ADD, source_form(team, config=config))

    assert fragment in " ".join(form_errors(response)["config"])
    assert not EvidenceSource.objects.exists()


def test_the_source_form_refuses_another_programs_items(team):
    response = admin_for(team.manager).post(SOURCE_ADD, source_form(team, items=[team.foreign_item.pk]))

    assert "items" in form_errors(response)
    assert not EvidenceSource.objects.exists()


def test_a_new_push_source_shows_its_token_once(team):
    client = admin_for(team.manager)

    response = client.post(SOURCE_ADD, source_form(team, name="CI", kind="push", config="{}"), follow=True)

    source = EvidenceSource.objects.get()
    [shown] = [text for text in messages_of(response) if "Push token" in text]
    token = shown.rsplit(": ", 1)[1]
    assert source.push_token_hash == hashlib.sha256(token.encode()).hexdigest()
    change = client.get(reverse("admin:metrics_evidencesource_change", args=[source.pk])).content.decode()
    assert token not in change
    assert source.push_token_hash not in change
    assert "Rotate push token" in change and "Run now" not in change


def test_a_contributor_cannot_add_a_source(team):
    client = admin_for(team.contributor)

    assert client.get(SOURCE_ADD).status_code == 403
    assert client.post(SOURCE_ADD, source_form(team)).status_code == 403
    assert not EvidenceSource.objects.exists()


def run_url(source: EvidenceSource) -> str:
    return reverse("admin:metrics_evidencesource_run", args=[source.pk])


def test_run_now_shows_the_result_and_the_start_of_the_response(team, server):
    source = source_for(
        team, config={"url": f"{server.url}/health", "body_contains": "all good"}, items=[team.owned_item]
    )
    client = admin_for(team.manager)
    change = client.get(reverse("admin:metrics_evidencesource_change", args=[source.pk])).content.decode()
    assert "Run now" in change and run_url(source) in change

    response = client.post(run_url(source))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Succeeded" in page
    assert "status: all good, edge is up" in page
    run = CollectionRun.objects.get()
    assert (run.status, run.trigger, run.triggered_by) == ("success", "manual", team.manager)
    assert Evidence.objects.get(run=run).item == team.owned_item


def test_run_now_shows_a_refused_target_as_an_error(team, server, settings):
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = []
    source = source_for(team, config={"url": f"{server.url}/health"})

    page = admin_for(team.manager).post(run_url(source)).content.decode()

    assert "Error" in page
    assert "not a public address" in page
    assert server.requests == []


def test_run_now_only_answers_a_post_from_a_manager_of_the_program(team, server):
    source = source_for(team, config={"url": f"{server.url}/health"})
    beta = source_for(
        team, program=team.other_program, name="Beta edge", config={"url": f"{server.url}/health"}
    )

    assert admin_for(team.manager).get(run_url(source)).status_code == 405
    assert admin_for(team.manager).post(run_url(beta)).status_code == 404
    assert admin_for(team.contributor).post(run_url(source)).status_code == 403
    assert admin_for(team.outsider).post(run_url(source)).status_code == 404
    assert not CollectionRun.objects.exists()
    assert server.requests == []


def test_run_now_on_a_push_source_says_it_cannot(team):
    source = source_for(team, Kind.PUSH, name="CI")

    response = admin_for(team.manager).post(run_url(source), follow=True)

    assert any("push source" in text for text in messages_of(response))
    assert not CollectionRun.objects.exists()


def test_rotating_a_push_token_shows_the_new_one(team):
    source = source_for(team, Kind.PUSH, name="CI")
    old_hash = EvidenceSource.objects.get(pk=source.pk).push_token_hash
    url = reverse("admin:metrics_evidencesource_rotate", args=[source.pk])

    response = admin_for(team.manager).post(url, follow=True)

    [shown] = [text for text in messages_of(response) if "New push token" in text]
    token = shown.rsplit(": ", 1)[1]
    source.refresh_from_db()
    assert source.push_token_hash == hashlib.sha256(token.encode()).hexdigest() != old_hash
    assert services.source_for_push_token(source.pk, source.push_token) is None
    assert services.source_for_push_token(source.pk, token) == source
    assert admin_for(team.manager).get(url).status_code == 405
    assert admin_for(team.contributor).post(url).status_code == 403


# --- collection runs ----------------------------------------------------------------------------------------


def test_collection_runs_are_read_only_in_the_admin(team):
    run = services.source_push(
        source=source_for(team, Kind.PUSH, name="CI", items=[team.owned_item]), passed=True
    )
    client = admin_for(team.manager)
    url = reverse("admin:metrics_collectionrun_change", args=[run.pk])

    assert client.get(reverse("admin:metrics_collectionrun_add")).status_code == 403
    changelist = client.get(reverse("admin:metrics_collectionrun_changelist")).content.decode()
    assert reverse("admin:metrics_collectionrun_add") not in changelist
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(url, {"status": "failed"}).status_code == 403
    run.refresh_from_db()
    assert run.status == CollectionRun.Status.SUCCESS


# --- evidence -----------------------------------------------------------------------------------------------

EVIDENCE_ADD = reverse("admin:metrics_evidence_add")


def evidence_form(item: Any, **fields: Any) -> dict[str, Any]:
    return {"item": item.pk, "url": "", "passed": "on", "note": "", **split(ago(1), "observed_at"), **fields}


def test_a_manager_attaches_a_link(team):
    data = evidence_form(team.unowned_item, url="https://wiki.example.com/runbook")

    response = admin_for(team.manager).post(EVIDENCE_ADD, data)

    assert response.status_code == 302, form_errors(response)
    evidence = Evidence.objects.get()
    assert (evidence.item, evidence.kind, evidence.url, evidence.recorded_by) == (
        team.unowned_item,
        Evidence.Kind.LINK,
        "https://wiki.example.com/runbook",
        team.manager,
    )


def test_a_contributor_attaches_evidence_to_their_own_item_only(team):
    client = admin_for(team.contributor)

    own = client.post(EVIDENCE_ADD, evidence_form(team.owned_item, url="https://example.com/own"))
    other = client.post(EVIDENCE_ADD, evidence_form(team.unowned_item, url="https://example.com/other"))

    assert own.status_code == 302, form_errors(own)
    assert "item's owner" in " ".join(form_errors(other)["__all__"])
    assert list(Evidence.objects.values_list("item_id", flat=True)) == [team.owned_item.pk]


def test_a_file_is_stored_with_its_sha256_and_downloads_as_uploaded(team, media):
    content = b"access review, signed\n" * 50
    upload = SimpleUploadedFile("access-review.txt", content, content_type="text/plain")
    client = admin_for(team.manager)

    response = client.post(EVIDENCE_ADD, evidence_form(team.owned_item, file=upload))

    assert response.status_code == 302, form_errors(response)
    evidence = Evidence.objects.get()
    assert (evidence.kind, evidence.sha256) == (Evidence.Kind.FILE, hashlib.sha256(content).hexdigest())
    download = reverse("admin:metrics_evidence_download", args=[evidence.pk])
    assert download in client.get(reverse("admin:metrics_evidence_changelist")).content.decode()
    for user in (team.manager, team.auditor, team.contributor):
        file = admin_for(user).get(download)
        assert file.status_code == 200
        assert b"".join(file.streaming_content) == content
        assert file["Content-Disposition"].startswith("attachment;")
    assert admin_for(team.outsider).get(download).status_code == 404


def test_a_file_over_the_limit_shows_on_the_form(team, media, settings):
    settings.CAIRN_EVIDENCE_MAX_FILE_BYTES = 16
    upload = SimpleUploadedFile("big.txt", b"x" * 17)

    errors = form_errors(
        admin_for(team.manager).post(EVIDENCE_ADD, evidence_form(team.owned_item, file=upload))
    )

    assert "16 bytes" in " ".join(errors["file"])
    assert not Evidence.objects.exists()


def test_the_evidence_changelist_shows_each_records_state(team):
    services.evidence_attach(
        item=team.owned_item, by=team.manager, url="https://example.com/new", observed_at=ago(1)
    )
    services.evidence_attach(
        item=team.unowned_item,
        by=team.manager,
        url="https://example.com/old",
        observed_at=ago(100),
        valid_until=ago(60),
    )
    services.evidence_attach(item=team.foreign_item, by=team.outsider, url="https://example.com/beta")

    response = admin_for(team.auditor).get(reverse("admin:metrics_evidence_changelist"))

    page = response.content.decode()
    assert "fresh, 1 d old" in page
    assert "expired, 100 d old" in page
    assert "https://example.com/beta" not in page
    assert len(response.context["cl"].result_list) == 2


def test_evidence_is_read_only_once_attached(team):
    evidence = services.evidence_attach(item=team.owned_item, by=team.manager, url="https://example.com/a")
    client = admin_for(team.manager)
    url = reverse("admin:metrics_evidence_change", args=[evidence.pk])

    assert 'name="_save"' not in client.get(url).content.decode()
    assert client.post(url, evidence_form(team.owned_item, url="https://example.com/b")).status_code == 403
    evidence.refresh_from_db()
    assert evidence.url == "https://example.com/a"


# --- the checklist item changelist's evidence column --------------------------------------------------------

ITEM_CHANGELIST = reverse("admin:roadmap_checklistitem_changelist")


def test_the_item_changelist_shows_each_items_evidence(team):
    services.evidence_attach(
        item=team.owned_item, by=team.manager, url="https://example.com/a", observed_at=ago(2)
    )
    services.evidence_attach(
        item=team.unowned_item,
        by=team.manager,
        url="https://example.com/b",
        observed_at=ago(40),
        valid_until=ago(5),
        passed=False,
    )

    response = admin_for(team.manager).get(ITEM_CHANGELIST)

    page = response.content.decode()
    assert "column-evidence_column" in page
    assert "fresh, 2 d old</span> ✓" in page
    assert "stale, 40 d old</span> ✗" in page
    assert page.count("no evidence") == 0  # both items have some
    assert f"?item__id__exact={team.owned_item.pk}" in page


def test_the_item_changelist_runs_the_same_queries_for_5_and_50_items(team, django_assert_num_queries):
    def add(count: int) -> None:
        for n in range(count):
            item = ItemFactory(section=team.section, owner=team.contributor)
            services.evidence_attach(item=item, by=team.manager, url=f"https://example.com/{n}")

    add(3)  # 5 with the team's two
    client = admin_for(team.manager)
    with CaptureQueriesContext(connection) as five:
        assert len(client.get(ITEM_CHANGELIST).context["cl"].result_list) == 5
    add(45)
    with django_assert_num_queries(len(five.captured_queries)):
        response = client.get(ITEM_CHANGELIST)
    assert len(response.context["cl"].result_list) == 50
    assert response.content.decode().count("fresh, 0 d old") == 48


def _collected(metric: Metric, source: EvidenceSource, count: int) -> None:
    for _ in range(count):
        run = CollectionRun.objects.create(source=source, started_at=timezone.now(), status="success")
        Measurement.objects.create(
            metric=metric, value=Decimal("1"), observed_at=timezone.now(), source="collector", run=run
        )


def test_the_measurement_changelist_names_runs_in_a_constant_number_of_queries(team, metric):
    source = source_for(team, metric=metric)
    client = admin_for(team.manager)
    url = reverse("admin:metrics_measurement_changelist")
    _collected(metric, source, 2)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    _collected(metric, source, 10)
    with CaptureQueriesContext(connection) as many:
        page = client.get(url).content.decode()
    assert page.count(source.name) >= 12
    assert len(many) == len(few)
