"""Who may see and change programs and checklist items in the admin.

Every cell of the persona × action matrix is asserted against the tables below. Executives are not staff; the
outsider is staff (a manager of "beta") but alpha's rows do not exist for them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from roadmap.models import ChecklistItem, Program

PERSONAS = ["manager", "contributor", "executive", "auditor", "outsider", "anonymous"]

SCOPED = "scoped"  # 200, and the list holds exactly the rows of the user's own program
LOGIN = "login"  # 302 to the admin login page
MISSING = "missing"  # 404, or 302 to the admin index saying the object does not exist
EDITABLE = "editable"  # 200 with every field editable
STATUS_ONLY = "status only"  # 200 with status and status_reason editable, nothing else
READONLY = "read-only"  # 200 with no editable field
SAVED = "saved"  # 302 back to the changelist, change stored
FORBIDDEN = "forbidden"  # 403, nothing stored

# (persona, action) -> outcome for team.owned_item (owned by the contributor); change_post sets status in_progress.
ITEM_ADMIN: dict[tuple[str, str], str] = {
    ("manager", "changelist"): SCOPED, ("manager", "change_get"): EDITABLE, ("manager", "change_post"): SAVED,
    ("contributor", "changelist"): SCOPED, ("contributor", "change_get"): STATUS_ONLY,
    ("contributor", "change_post"): SAVED,
    ("executive", "changelist"): LOGIN, ("executive", "change_get"): LOGIN, ("executive", "change_post"): LOGIN,
    ("auditor", "changelist"): SCOPED, ("auditor", "change_get"): READONLY, ("auditor", "change_post"): FORBIDDEN,
    ("outsider", "changelist"): SCOPED, ("outsider", "change_get"): MISSING, ("outsider", "change_post"): MISSING,
    ("anonymous", "changelist"): LOGIN, ("anonymous", "change_get"): LOGIN, ("anonymous", "change_post"): LOGIN,
}  # fmt: skip

# (persona, action) -> outcome for program "alpha"; change_post sets a new subtitle.
PROGRAM_ADMIN: dict[tuple[str, str], str] = {
    ("manager", "changelist"): SCOPED, ("manager", "change_get"): EDITABLE, ("manager", "change_post"): SAVED,
    ("contributor", "changelist"): SCOPED, ("contributor", "change_get"): READONLY,
    ("contributor", "change_post"): FORBIDDEN,
    ("executive", "changelist"): LOGIN, ("executive", "change_get"): LOGIN, ("executive", "change_post"): LOGIN,
    ("auditor", "changelist"): SCOPED, ("auditor", "change_get"): READONLY, ("auditor", "change_post"): FORBIDDEN,
    ("outsider", "changelist"): SCOPED, ("outsider", "change_get"): MISSING, ("outsider", "change_post"): MISSING,
    ("anonymous", "changelist"): LOGIN, ("anonymous", "change_get"): LOGIN, ("anonymous", "change_post"): LOGIN,
}  # fmt: skip

# Editable fields of an existing item for a manager; the program is read-only once the item exists.
ITEM_FIELDS = {"section", "phase", "key", "ref", "title", "description", "kind", "status",
               "status_reason", "owner", "due_date", "weight", "level", "blocking", "valid_for_days", "grace_days",
               "evidence_url", "notes"}  # fmt: skip
ITEM_EDITABLE_FIELDS = {EDITABLE: ITEM_FIELDS, STATUS_ONLY: {"status", "status_reason"}, READONLY: set()}


def client_for(user: Any | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def change_form_data(client: Client, url: str) -> dict[str, Any]:
    """What a browser would post back from the change page: the main form and every inline formset."""
    response = client.get(url)
    assert response.status_code == 200
    all_forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        all_forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in all_forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field, forms.BooleanField):
                value = "on" if value else None
            if value is not None:
                data[form.add_prefix(name)] = value
    return data


def assert_outcome(response: Any, outcome: str, hidden_text: str = "") -> None:
    if outcome == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    elif outcome == MISSING:
        assert response.status_code in (302, 404)
        if response.status_code == 302:
            assert response["Location"] == reverse("admin:index")
            followed = response.client.get(response["Location"]).content.decode()
            assert "doesn’t exist" in followed
            assert not hidden_text or hidden_text not in followed
    elif outcome == FORBIDDEN:
        assert response.status_code == 403
    elif outcome == SAVED:
        assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    else:
        assert response.status_code == 200
    if hidden_text and response.status_code != 200:
        assert hidden_text not in response.content.decode()


def editable_fields(response: Any) -> set[str]:
    # Hidden fields are bookkeeping (the version the form showed), not data a persona edits.
    form = response.context["adminform"].form
    return {name for name, field in form.fields.items() if not field.widget.is_hidden}


def matrix(table: dict[tuple[str, str], str]) -> Any:
    return pytest.mark.parametrize(("persona", "action"), list(table), ids=[f"{p}-{a}" for p, a in table])


@pytest.mark.parametrize("table", [ITEM_ADMIN, PROGRAM_ADMIN], ids=["items", "programs"])
def test_the_tables_cover_every_persona_and_action(table: dict[tuple[str, str], str]) -> None:
    assert set(table) == {(p, a) for p in PERSONAS for a in ("changelist", "change_get", "change_post")}


@matrix(ITEM_ADMIN)
def test_it_scopes_item_admin_pages_by_role(team: Any, superuser: Any, persona: str, action: str) -> None:
    outcome = ITEM_ADMIN[(persona, action)]
    client = client_for(None if persona == "anonymous" else team.user(persona))
    item = team.owned_item
    url = reverse("admin:roadmap_checklistitem_change", args=[item.pk])

    if action == "changelist":
        response = client.get(reverse("admin:roadmap_checklistitem_changelist"))
        assert_outcome(response, outcome)
        if outcome == SCOPED:
            own = {team.foreign_item} if persona == "outsider" else {team.owned_item, team.unowned_item}
            assert set(response.context["cl"].result_list) == own
            hidden = team.owned_item if persona == "outsider" else team.foreign_item
            assert hidden.title not in response.content.decode()
    elif action == "change_get":
        response = client.get(url)
        assert_outcome(response, outcome, hidden_text=item.title)
        if response.status_code == 200:
            expected = ITEM_EDITABLE_FIELDS[outcome]
            assert editable_fields(response) == expected
            assert ('name="title"' in response.content.decode()) is (outcome == EDITABLE)
    else:
        data = change_form_data(client_for(superuser), url) | {"status": "in_progress"}
        response = client.post(url, data)
        assert_outcome(response, outcome, hidden_text=item.title)
        item.refresh_from_db()
        if outcome == SAVED:
            assert response["Location"] == reverse("admin:roadmap_checklistitem_changelist")
            assert item.status == ChecklistItem.Status.IN_PROGRESS
            assert item.history.first().history_user == team.user(persona)
            assert (item.title, item.owner) == ("Owned by carla", team.contributor)
        else:
            assert item.status == ChecklistItem.Status.NOT_STARTED
            assert item.history.count() == 1


@matrix(PROGRAM_ADMIN)
def test_it_scopes_program_admin_pages_by_role(team: Any, superuser: Any, persona: str, action: str) -> None:
    outcome = PROGRAM_ADMIN[(persona, action)]
    client = client_for(None if persona == "anonymous" else team.user(persona))
    program = team.program
    url = reverse("admin:roadmap_program_change", args=[program.pk])

    if action == "changelist":
        response = client.get(reverse("admin:roadmap_program_changelist"))
        assert_outcome(response, outcome)
        if outcome == SCOPED:
            own, hidden = (program, team.other_program)
            if persona == "outsider":
                own, hidden = hidden, own
            assert list(response.context["cl"].result_list) == [own]
            assert reverse("admin:roadmap_program_change", args=[hidden.pk]) not in response.content.decode()
    elif action == "change_get":
        response = client.get(url)
        assert_outcome(response, outcome, hidden_text="Alpha")
        if response.status_code == 200:
            assert ('name="subtitle"' in response.content.decode()) is (outcome == EDITABLE)
            assert bool(editable_fields(response)) is (outcome == EDITABLE)
    else:
        data = change_form_data(client_for(superuser), url) | {"subtitle": f"Edited by {persona}"}
        response = client.post(url, data)
        assert_outcome(response, outcome, hidden_text="Alpha")
        program = Program.objects.get(pk=program.pk)
        if outcome == SAVED:
            assert program.subtitle == f"Edited by {persona}"
            assert program.history.first().history_user == team.user(persona)
        else:
            assert program.subtitle == team.program.subtitle
            assert program.history.count() == 1


def test_it_shows_a_contributor_others_items_read_only(team: Any, superuser: Any) -> None:
    item = team.unowned_item
    url = reverse("admin:roadmap_checklistitem_change", args=[item.pk])
    client = client_for(team.contributor)

    page = client.get(url)
    assert page.status_code == 200
    assert editable_fields(page) == set()
    assert 'name="title"' not in page.content.decode()
    assert 'name="status"' not in page.content.decode()

    data = change_form_data(client_for(superuser), url) | {"status": "done", "title": "Hijacked"}
    assert client.post(url, data).status_code == 403
    item.refresh_from_db()
    assert (item.status, item.title) == (ChecklistItem.Status.NOT_STARTED, "Nobody's item")


def test_it_ignores_fields_a_contributor_posts_beyond_status(team: Any, superuser: Any) -> None:
    item = team.owned_item
    url = reverse("admin:roadmap_checklistitem_change", args=[item.pk])
    data = change_form_data(client_for(superuser), url)
    data |= {"status": "blocked", "status_reason": "Waiting on legal"}
    data |= {"title": "Renamed", "owner": team.manager.pk}

    response = client_for(team.contributor).post(url, data)

    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.status, item.status_reason) == (ChecklistItem.Status.BLOCKED, "Waiting on legal")
    assert (item.title, item.owner) == ("Owned by carla", team.contributor)
    assert item.history.first().history_user == team.contributor


@pytest.mark.parametrize("persona", ["manager", "contributor", "auditor"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_hides_another_programs_item_from_staff(
    team: Any, superuser: Any, persona: str, method: str
) -> None:
    item = team.foreign_item
    url = reverse("admin:roadmap_checklistitem_change", args=[item.pk])
    client = client_for(team.user(persona))
    if method == "get":
        response = client.get(url)
    else:
        response = client.post(url, change_form_data(client_for(superuser), url) | {"status": "done"})

    # Auditors hold no change permission at all, so their POST is refused before the lookup.
    expected = FORBIDDEN if (persona, method) == ("auditor", "post") else MISSING
    assert response.status_code != 200
    assert_outcome(response, expected, hidden_text=item.title)
    item.refresh_from_db()
    assert item.status == ChecklistItem.Status.NOT_STARTED


@pytest.mark.parametrize("persona", ["manager", "contributor", "auditor"])
@pytest.mark.parametrize("page", ["history", "simple_history"])
@pytest.mark.parametrize("model", ["checklistitem", "program"])
def test_it_hides_another_programs_history_from_staff(team: Any, persona: str, page: str, model: str) -> None:
    foreign = team.foreign_item if model == "checklistitem" else team.other_program
    args = [foreign.pk] if page == "history" else [foreign.pk, foreign.history.first().pk]

    response = client_for(team.user(persona)).get(reverse(f"admin:roadmap_{model}_{page}", args=args))

    assert response.status_code in (302, 403, 404)
    assert foreign.title not in response.content.decode()
