from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from roadmap.models import ChecklistItem
from tests.factories import ItemFactory, SectionFactory

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("count", [10, 200])
def test_the_items_list_runs_a_constant_number_of_queries(team, count, django_assert_num_queries):
    for _ in range(count):
        ItemFactory(section=team.section, owner=team.contributor)
    client = client_for(team.manager)
    with django_assert_num_queries(2):  # count + page, whatever the number of items
        response = client.get("/api/v1/items/?page_size=500")
    assert response.status_code == 200
    assert response.json()["count"] == count + 2


@pytest.mark.parametrize("count", [10, 200])
def test_the_phases_and_sections_lists_run_a_constant_number_of_queries(
    team, count, django_assert_num_queries
):
    for _ in range(count):
        ItemFactory(section=SectionFactory(program=team.program, parent=team.section, phase=team.phase))
    client = client_for(team.manager)
    with django_assert_num_queries(3):  # count, page, one roll-up
        assert client.get("/api/v1/phases/").status_code == 200
    with django_assert_num_queries(6):  # count, page, tree, totals, credits, paths
        assert client.get("/api/v1/sections/?page_size=500").status_code == 200


def test_items_filter_by_program_status_owner_and_overdue(team):
    yesterday = timezone.localdate() - timedelta(days=1)
    late = ItemFactory(section=team.section, due_date=yesterday, owner=team.contributor)
    ItemFactory(section=team.section, due_date=yesterday, status=Status.DONE)
    client = client_for(team.manager)

    def keys(query):
        response = client.get(f"/api/v1/items/?{query}")
        assert response.status_code == 200, response.content
        return {row["key"] for row in response.json()["results"]}

    assert keys("overdue=true") == {late.key}
    assert keys("owner=carla") == {late.key, team.owned_item.key}
    assert keys("status=done") == {ChecklistItem.objects.get(status=Status.DONE).key}
    assert keys("program=beta") == set()  # the manager of alpha cannot see beta
    assert keys("search=Owned") == {team.owned_item.key}


def test_archived_items_are_hidden_unless_asked_for(team):
    team.unowned_item.archived_at = timezone.now()
    team.unowned_item.save()
    client = client_for(team.manager)
    current = {row["id"] for row in client.get("/api/v1/items/").json()["results"]}
    archived = {row["id"] for row in client.get("/api/v1/items/?archived=true").json()["results"]}
    assert team.unowned_item.pk not in current
    assert archived == {team.unowned_item.pk}


def test_items_order_by_due_date(team):
    ItemFactory(section=team.section, due_date=date(2026, 5, 1), key="may")
    ItemFactory(section=team.section, due_date=date(2026, 3, 1), key="march")
    rows = client_for(team.manager).get("/api/v1/items/?ordering=-due_date").json()["results"]
    assert [row["key"] for row in rows if row["due_date"]] == ["may", "march"]


def test_lists_are_paginated(team):
    for _ in range(5):
        ItemFactory(section=team.section)
    body = client_for(team.manager).get("/api/v1/items/?page_size=3").json()
    assert (body["count"], len(body["results"])) == (7, 3)
    assert body["next"]


def test_a_manager_creates_an_item_with_a_derived_key(team):
    response = client_for(team.manager).post(
        "/api/v1/items/",
        {
            "program": "alpha",
            "section": team.section.pk,
            "title": "Rotate the TLS certificates",
            "owner": "carla",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"].startswith("rotate-the-tls-certificates-")
    assert (body["phase"], body["owner"]) == ("P1", "carla")


def test_an_owner_who_is_not_a_member_is_refused_without_revealing_the_account(team):
    client = client_for(team.manager)
    for username in ("oscar", "nobody-at-all"):
        response = client.patch(f"/api/v1/items/{team.unowned_item.pk}/", {"owner": username})
        assert response.status_code == 400
        assert response.json() == {"owner": [f"No member of this program is called {username!r}."]}


def test_blocking_without_a_reason_is_a_400_naming_the_field(team):
    response = client_for(team.manager).patch(f"/api/v1/items/{team.unowned_item.pk}/", {"status": "blocked"})
    assert response.status_code == 400
    assert "status_reason" in response.json()


def test_an_unknown_status_is_a_400_listing_the_choices(team):
    response = client_for(team.manager).patch(
        f"/api/v1/items/{team.unowned_item.pk}/", {"status": "finished"}
    )
    assert response.status_code == 400
    assert "not a valid choice" in response.json()["status"][0]


def test_an_item_key_cannot_be_changed(team):
    response = client_for(team.manager).patch(f"/api/v1/items/{team.unowned_item.pk}/", {"key": "new-key"})
    assert response.status_code == 200
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.key != "new-key"


def test_bulk_status_changes_items_inline(team):
    response = client_for(team.manager).post(
        "/api/v1/items/bulk-status/",
        {"ids": [team.owned_item.pk, team.unowned_item.pk], "status": "blocked", "reason": "Freeze"},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"changed": 2}
    assert set(ChecklistItem.objects.filter(status_reason="Freeze").values_list("pk", flat=True)) == {
        team.owned_item.pk,
        team.unowned_item.pk,
    }


def test_bulk_status_queues_large_selections(team, settings, django_capture_on_commit_callbacks):
    settings.CAIRN_BULK_INLINE_LIMIT = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(team.manager).post(
            "/api/v1/items/bulk-status/",
            {"ids": [team.owned_item.pk, team.unowned_item.pk], "status": "done"},
        )
    assert response.status_code == 202
    assert response.json() == {"queued": 2}
    assert ChecklistItem.objects.filter(status=Status.DONE).count() == 2  # eager Celery ran the task


def test_bulk_status_refuses_before_queueing_what_the_user_may_not_change(team, settings):
    settings.CAIRN_BULK_INLINE_LIMIT = 1
    response = client_for(team.contributor).post(
        "/api/v1/items/bulk-status/", {"ids": [team.owned_item.pk, team.unowned_item.pk], "status": "done"}
    )
    assert response.status_code == 403


def test_bulk_status_treats_invisible_items_as_unknown(team):
    response = client_for(team.manager).post(
        "/api/v1/items/bulk-status/", {"ids": [team.foreign_item.pk], "status": "done"}
    )
    assert response.status_code == 400
    assert response.json() == {"ids": [f"No checklist item with id {team.foreign_item.pk}."]}
    team.foreign_item.refresh_from_db()
    assert team.foreign_item.status == Status.NOT_STARTED


def test_phases_report_planned_dates_progress_and_rag(team):
    ItemFactory(section=team.section, status=Status.DONE)
    row = client_for(team.executive).get("/api/v1/phases/?program=alpha").json()["results"][0]
    assert (row["planned_start"], row["planned_end"]) == ("2026-01-01", "2026-06-30")
    assert row["health"]["progress"]["label"] == "1 of 3 done (33 %)"
    assert row["health"]["rag"] in {"red", "amber", "green", "blue", "grey"}


def test_sections_report_their_path(team):
    child = SectionFactory(program=team.program, parent=team.section, title="Network")
    rows = client_for(team.auditor).get("/api/v1/sections/?program=alpha").json()["results"]
    assert {row["id"]: row["path"] for row in rows}[child.pk] == "Foundations > Network"


def test_token_authentication_works_and_revoked_tokens_do_not(team):
    token = Token.objects.create(user=team.executive)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/v1/programs/").status_code == 200
    token.delete()
    assert client.get("/api/v1/programs/").status_code in (401, 403)


def test_anonymous_callers_are_refused(team):
    assert APIClient().get("/api/v1/items/").status_code in (401, 403)
    assert APIClient().get("/api/schema/").status_code in (401, 403)


def test_the_schema_and_docs_are_served_to_signed_in_users_without_a_cdn(team, client):
    client.force_login(team.executive)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/items/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


def test_memberships_list_only_the_visible_programs(team):
    rows = client_for(team.outsider).get("/api/v1/memberships/").json()["results"]
    assert {row["program"] for row in rows} == {"beta"}


def test_the_openapi_schema_is_valid_and_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/imports/strategy/" in schema
    assert "ItemStatusEnum" in schema
