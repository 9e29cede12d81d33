"""The checklist import and export through the admin and the API: the same engine, scoped and permissioned.

Program "alpha" (team fixture) has a Foundations section in phase P1; the outsider manages "beta" only.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from roadmap.models import ChecklistItem, ImportRun

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:roadmap_checklistitem_import_checklist")
CHANGELIST = reverse("admin:roadmap_checklistitem_changelist")
API_IMPORT = "/api/v1/imports/checklist/"
GOOD = (
    "key,section,title,status,owner,due_date,level\n"
    "net-1,Network > Edge,Terminate TLS at the edge,done,maria,2026-12-31,1\n"
    "net-2,Network > Edge,Rate-limit logins,wip,,,2\n"
)
ONE_BAD = GOOD + "net-3,Network > Edge,Rotate keys,someday,,,\n"


def upload(text: str | bytes, name: str = "items.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, content_type="text/csv")


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(user: Any | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def count() -> tuple[int, int]:
    return ChecklistItem.objects.count(), ImportRun.objects.count()


# --- admin ---------------------------------------------------------------------------------------------------


def test_the_changelist_offers_import_and_export_to_a_manager(team):
    page = login(team.manager).get(CHANGELIST).content.decode()
    assert IMPORT_URL in page
    assert reverse("admin:roadmap_checklistitem_export") in page


def test_an_auditor_may_export_but_not_import(team):
    client = login(team.auditor)
    page = client.get(CHANGELIST).content.decode()
    assert IMPORT_URL not in page
    assert reverse("admin:roadmap_checklistitem_export") in page
    assert client.get(IMPORT_URL).status_code == 403


def test_a_manager_previews_every_row_then_confirms(team):
    client = login(team.manager)
    before = count()
    preview = client.post(IMPORT_URL, {"program": team.program.pk, "file": upload(GOOD), "mapping": ""})
    assert preview.status_code == 200
    assert [row.action for row in preview.context["rows"]] == ["new", "new"]
    assert "Terminate TLS at the edge" in preview.content.decode()
    assert count() == before  # a preview writes nothing

    done = client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})

    run = ImportRun.objects.get()
    assert done.status_code == 302
    assert done.url == reverse("admin:roadmap_importrun_change", args=[run.pk])
    assert run.status == "succeeded"
    assert run.created_by == team.manager
    edge = ChecklistItem.objects.get(program=team.program, key="net-1")
    assert (edge.status, edge.owner, edge.section.parent.title) == ("done", team.manager, "Network")
    assert edge.history.first().history_user == team.manager
    again = client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})
    assert again.url == IMPORT_URL
    assert ChecklistItem.objects.filter(program=team.program, key__startswith="net-").count() == 2
    page = client.get(done.url).content.decode()
    assert "2 of 2 rows" in page


def test_the_preview_shows_invalid_rows_with_their_reason_and_refuses_to_confirm(team):
    client = login(team.manager)
    preview = client.post(IMPORT_URL, {"program": team.program.pk, "file": upload(ONE_BAD)})
    page = preview.content.decode()
    assert preview.context["report"].invalid == 1
    assert "someday" in page and "unknown status" in page
    assert preview.context["can_confirm"] is False
    assert 'name="confirm"' not in page


def test_with_commit_valid_the_valid_rows_are_imported(team):
    client = login(team.manager)
    preview = client.post(
        IMPORT_URL, {"program": team.program.pk, "file": upload(ONE_BAD), "commit_valid": "on"}
    )
    assert preview.context["can_confirm"] is True
    client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})
    run = ImportRun.objects.get()
    assert run.report["items"] == {"added": 2, "changed": 0, "unchanged": 0, "invalid": 1}
    assert run.report["errors"][0]["row"] == 4
    assert ChecklistItem.objects.filter(key__startswith="net-").count() == 2


def test_a_manager_can_only_choose_programs_they_manage(team):
    client = login(team.manager)
    response = client.post(IMPORT_URL, {"program": team.other_program.pk, "file": upload(GOOD)})
    assert response.status_code == 200
    assert "program" in response.context["form"].errors
    assert not ChecklistItem.objects.filter(program=team.other_program, key="net-1").exists()


def test_an_unreadable_file_is_an_error_on_the_form(team):
    response = login(team.manager).post(
        IMPORT_URL, {"program": team.program.pk, "file": upload(b"\x00\x01garbage", name="items.xlsx")}
    )
    assert "not an XLSX spreadsheet" in str(response.context["form"].errors["file"])


def test_the_admin_export_is_scoped_and_escapes_formulas(team):
    team.unowned_item.title = "=HYPERLINK(1)"
    team.unowned_item.save()
    client = login(team.manager)
    export = reverse("admin:roadmap_checklistitem_export")
    form = client.get(export).context["form"]
    # What the browser posts: the format, the resource and every column checkbox (all ticked by default).
    data = {"format": "0", "resource": "0"} | {
        name: "on" for name in form.fields if name.startswith("checklistitem")
    }
    response = client.post(export, data)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    titles = {row["title"] for row in rows}
    assert "'=HYPERLINK(1)" in titles
    assert team.foreign_item.title not in titles
    assert {row["program"] for row in rows} == {"alpha"}


def test_import_runs_are_listed_only_for_members(team):
    login(team.manager).post(IMPORT_URL, {"confirm": "1", "token": "none"})  # nothing to confirm
    client = login(team.manager)
    preview = client.post(IMPORT_URL, {"program": team.program.pk, "file": upload(GOOD)})
    client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})
    run = ImportRun.objects.get()
    assert (
        login(team.auditor).get(reverse("admin:roadmap_importrun_change", args=[run.pk])).status_code == 200
    )
    outsider = login(team.outsider)
    assert outsider.get(reverse("admin:roadmap_importrun_change", args=[run.pk])).status_code in (302, 404)
    assert run.source_name not in outsider.get(reverse("admin:roadmap_importrun_changelist")).content.decode()


# --- API -----------------------------------------------------------------------------------------------------


def test_the_api_imports_and_reports_the_contract(team):
    response = api(team.manager).post(
        API_IMPORT, {"file": upload(GOOD), "program": "alpha"}, format="multipart"
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("program", "dry_run", "rows", "items", "errors")} == {
        "program": "alpha",
        "dry_run": False,
        "rows": 2,
        "items": {"added": 2, "changed": 0, "unchanged": 0, "invalid": 0},
        "errors": [],
    }
    run = api(team.auditor).get(f"/api/v1/import-runs/{body['run']}/").json()
    assert (run["status"], run["rows"], run["progress"], run["created_by"]) == ("succeeded", 2, 2, "maria")


def test_the_api_dry_run_writes_nothing(team):
    before = ChecklistItem.objects.count()
    response = api(team.manager).post(
        API_IMPORT, {"file": upload(GOOD), "program": "alpha", "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 200
    assert response.json()["items"]["added"] == 2
    assert ChecklistItem.objects.count() == before


def test_the_api_rejects_a_file_with_invalid_rows_with_every_error(team):
    response = api(team.manager).post(
        API_IMPORT, {"file": upload(ONE_BAD), "program": "alpha"}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 4, "column": "status", "value": "someday", "message": response.json()["errors"][0]["message"]}
    ]
    assert not ChecklistItem.objects.filter(key__startswith="net-").exists()


def test_the_api_answers_400_for_an_unreadable_file(team):
    response = api(team.manager).post(
        API_IMPORT, {"file": upload("title\nx\n"), "program": "alpha"}, format="multipart"
    )
    assert response.status_code == 400
    assert "section" in response.json()["detail"]


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor"])
def test_members_who_do_not_manage_cannot_import(team, persona):
    response = api(team.user(persona)).post(
        API_IMPORT, {"file": upload(GOOD), "program": "alpha"}, format="multipart"
    )
    assert response.status_code == 403
    assert not ChecklistItem.objects.filter(key__startswith="net-").exists()


def test_an_outsider_gets_404_for_a_program_they_cannot_see(team):
    response = api(team.outsider).post(
        API_IMPORT, {"file": upload(GOOD), "program": "alpha"}, format="multipart"
    )
    assert response.status_code == 404
    assert api(None).post(
        API_IMPORT, {"file": upload(GOOD), "program": "alpha"}, format="multipart"
    ).status_code in (
        401,
        403,
    )


def test_a_large_api_import_is_queued_and_reports_progress(
    team, settings, django_capture_on_commit_callbacks
):
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = api(team.manager).post(
            API_IMPORT, {"file": upload(GOOD), "program": "alpha"}, format="multipart"
        )
    assert response.status_code == 202
    run = ImportRun.objects.get(pk=response.json()["run"])
    assert (run.status, run.progress, run.rows, run.source) == ("succeeded", 2, 2, None)
    assert ChecklistItem.objects.filter(key__startswith="net-").count() == 2


def test_the_api_export_needs_the_permission_and_visibility(team):
    response = api(team.auditor).get("/api/v1/programs/alpha/checklist/?format=json")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="alpha-checklist.json"'
    assert team.unowned_item.key in response.content.decode()
    assert api(team.executive).get("/api/v1/programs/alpha/checklist/").status_code == 403
    assert api(team.outsider).get("/api/v1/programs/alpha/checklist/").status_code == 404
    assert api(team.auditor).get("/api/v1/programs/alpha/checklist/?format=pdf").status_code == 400


def test_import_runs_of_other_programs_do_not_leak_through_the_api(team):
    api(team.manager).post(API_IMPORT, {"file": upload(GOOD), "program": "alpha"}, format="multipart")
    assert api(team.outsider).get("/api/v1/import-runs/").json()["count"] == 0
    assert api(team.executive).get("/api/v1/import-runs/?program=alpha").json()["count"] == 1
