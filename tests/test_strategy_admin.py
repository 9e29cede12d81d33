"""Strategy import (upload → preview → confirm) and export on the program admin.

The team fixture gives program "alpha" one member per role; the outsider manages "beta" only. Auditors are staff
but hold no roadmap.add_program and manage nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from governance.models import ControlledDocument, DocumentVersion
from metrics.models import Metric
from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership, Section

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:roadmap_program_import_strategy")
CHANGELIST = reverse("admin:roadmap_program_changelist")
PILOT = (
    "# Pilot Strategy\n\n**Document Version:** 2.0\n\n## Roadmap\n\n### Phase 1: Start (Months 1-3)\n"
    "**Objectives:** Begin\n\n**Setup:**\n- [ ] Buy servers\n- [x] Hire team\n\n---\n\n"
    "**Document Control:**\n- **Owner:** CTO\n- **Approver:** CEO\n"
)


@pytest.fixture
def manager_client(client: Client, team: Any) -> Client:
    client.force_login(team.manager)
    return client


def upload(data: str | bytes, name: str = "s.md") -> SimpleUploadedFile:
    raw = data.encode() if isinstance(data, str) else data
    return SimpleUploadedFile(name, raw, content_type="text/markdown")


def db_state() -> dict[str, int]:
    """Row counts of everything an import writes, to show that a preview or a refused import wrote nothing."""
    models = [
        Program,
        Phase,
        Section,
        ChecklistItem,
        Metric,
        ControlledDocument,
        DocumentVersion,
        ProgramMembership,
    ]
    return {model.__name__: model.objects.count() for model in models}


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def test_the_program_changelist_offers_the_import_to_a_manager(manager_client: Client) -> None:
    response = manager_client.get(CHANGELIST)

    assert response.status_code == 200
    assert "Import strategy" in response.content.decode()
    assert IMPORT_URL in response.content.decode()


def test_the_program_changelist_hides_the_import_from_an_auditor(client: Client, team: Any) -> None:
    client.force_login(team.auditor)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert "Import strategy" not in response.content.decode()


def test_the_upload_previews_the_import_and_writes_nothing(manager_client: Client, team: Any) -> None:
    before = db_state()

    response = manager_client.post(IMPORT_URL, {"file": upload(PILOT), "program": "alpha"})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<th scope="row">Items</th><td>2</td>' in html
    assert 'name="confirm"' in html
    assert response.context["token"]
    assert f'name="token" value="{response.context["token"]}"' in html
    assert db_state() == before


def test_confirming_the_preview_imports_it_once(manager_client: Client, team: Any) -> None:
    preview = manager_client.post(IMPORT_URL, {"file": upload(PILOT), "program": "alpha"})
    token = preview.context["token"]

    confirmed = manager_client.post(IMPORT_URL, {"confirm": "1", "token": token})

    assert confirmed.status_code == 302
    assert confirmed["Location"] == reverse("admin:roadmap_program_change", args=[team.program.pk])
    assert ("success", "Items: 2 added, 0 changed, 0 archived, 0 unchanged.") in messages_of(confirmed)
    imported = ChecklistItem.objects.filter(program=team.program, title__in=["Buy servers", "Hire team"])
    assert imported.count() == 2
    after_first = db_state()

    replayed = manager_client.post(IMPORT_URL, {"confirm": "1", "token": token})

    assert replayed.status_code == 302
    assert replayed["Location"] == IMPORT_URL
    assert any(level == "error" and "already imported" in text for level, text in messages_of(replayed))
    assert db_state() == after_first


def test_a_confirmation_with_a_forged_token_imports_nothing(manager_client: Client, team: Any) -> None:
    manager_client.post(IMPORT_URL, {"file": upload(PILOT), "program": "alpha"})
    before = db_state()

    response = manager_client.post(IMPORT_URL, {"confirm": "1", "token": "forged"})

    assert response.status_code == 302
    assert response["Location"] == IMPORT_URL
    assert db_state() == before


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"# Title\n\n## Part\n- [ ] caf\xe9\n", id="not-utf8"),
        pytest.param(b"Just some prose.\n\nNo headings here.\n", id="no-headings"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_bad_file_shows_the_error_with_its_line_on_the_form(manager_client: Client, data: bytes) -> None:
    before = db_state()

    response = manager_client.post(IMPORT_URL, {"file": upload(data), "program": "alpha"})

    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert any("line" in error for error in errors)
    assert escape(errors[0]) in response.content.decode()
    assert "token" not in response.context
    assert db_state() == before


def test_an_auditor_may_not_open_the_import(client: Client, team: Any) -> None:
    client.force_login(team.auditor)

    assert client.get(IMPORT_URL).status_code == 403
    assert client.post(IMPORT_URL, {"file": upload(PILOT), "program": "alpha"}).status_code == 403


def test_a_manager_cannot_import_into_a_program_they_do_not_manage(manager_client: Client, team: Any) -> None:
    before = db_state()

    response = manager_client.post(IMPORT_URL, {"file": upload(PILOT), "program": "beta"})

    assert response.status_code == 200
    assert "Only managers of beta may import its strategy." in response.context["form"].non_field_errors()
    assert "token" not in response.context
    assert db_state() == before
    assert not ChecklistItem.objects.filter(program=team.other_program, title="Buy servers").exists()


def test_the_export_downloads_a_visible_program_as_markdown(manager_client: Client, team: Any) -> None:
    response = manager_client.get(reverse("admin:roadmap_program_export_strategy", args=[team.program.pk]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"] == 'attachment; filename="alpha.md"'
    assert "Alpha" in response.content.decode()


def test_the_export_of_a_program_the_user_cannot_see_is_404(manager_client: Client, team: Any) -> None:
    response = manager_client.get(
        reverse("admin:roadmap_program_export_strategy", args=[team.other_program.pk])
    )

    assert response.status_code == 404
    assert "Beta" not in response.content.decode()


def test_the_program_change_page_links_to_the_export(manager_client: Client, team: Any) -> None:
    response = manager_client.get(reverse("admin:roadmap_program_change", args=[team.program.pk]))

    assert response.status_code == 200
    assert "Export strategy" in response.content.decode()
    assert (
        reverse("admin:roadmap_program_export_strategy", args=[team.program.pk]) in response.content.decode()
    )
