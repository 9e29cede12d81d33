"""Two people editing one checklist item: the later edit of an old version is refused, never a silent lost update.

Every change raises the item's `version`. The API hands it out as the ETag (and a `version` field); a change sent
with `If-Match` (412) or a body `version` (409) that is no longer current saves nothing and answers with the item's
current state. Admin forms carry the version they showed and refuse the same way.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from roadmap import services
from roadmap.models import ChecklistItem
from tests.factories import member
from tests.test_admin_polish import _inline_data, _section_items

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def two_managers(team: Any) -> tuple[Any, Any]:
    return team.manager, member(team.program, "manager", "mona")


def api_as(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def item_url(item: ChecklistItem) -> str:
    return reverse("item-detail", args=[item.pk])


def test_it_hands_out_the_version_as_an_etag_and_raises_it_on_every_change(team: Any) -> None:
    api = api_as(team.manager)
    first = api.get(item_url(team.unowned_item))
    assert first["ETag"] == '"1"' and first.data["version"] == 1
    changed = api.patch(item_url(team.unowned_item), {"title": "Renamed"}, HTTP_IF_MATCH=first["ETag"])
    assert changed.status_code == 200, changed.data
    assert changed["ETag"] == '"2"' and changed.data["version"] == 2
    assert api.get(item_url(team.unowned_item))["ETag"] == '"2"'


def test_it_refuses_a_second_edit_of_the_same_version_with_412_and_the_current_state(
    team: Any, two_managers: tuple[Any, Any]
) -> None:
    maria, mona = (api_as(user) for user in two_managers)
    etag = maria.get(item_url(team.unowned_item))["ETag"]
    assert mona.get(item_url(team.unowned_item))["ETag"] == etag  # both read version 1

    assert maria.patch(item_url(team.unowned_item), {"status": "done"}, HTTP_IF_MATCH=etag).status_code == 200
    late = mona.patch(item_url(team.unowned_item), {"owner": team.contributor.username}, HTTP_IF_MATCH=etag)

    assert late.status_code == 412
    assert late.data["current"]["status"] == "done" and late.data["current"]["version"] == 2
    assert late["ETag"] == '"2"'
    assert "changed since you read it" in late.data["detail"]
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.owner is None  # mona's edit saved nothing
    assert team.unowned_item.status == Status.DONE  # and did not undo maria's


def test_it_refuses_a_stale_version_in_the_body_with_409(team: Any, two_managers: tuple[Any, Any]) -> None:
    maria, mona = (api_as(user) for user in two_managers)
    assert (
        maria.patch(item_url(team.unowned_item), {"title": "Maria's title", "version": 1}).status_code == 200
    )
    late = mona.patch(item_url(team.unowned_item), {"title": "Mona's title", "version": 1})
    assert late.status_code == 409
    assert late.data["current"]["title"] == "Maria's title"
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.title == "Maria's title" and team.unowned_item.version == 2


@pytest.mark.parametrize("header", ['"abc"', "W/", '"0"', '"99"'])
def test_it_answers_412_to_an_if_match_that_names_no_current_version(team: Any, header: str) -> None:
    response = api_as(team.manager).patch(item_url(team.unowned_item), {"title": "x"}, HTTP_IF_MATCH=header)
    assert response.status_code == 412
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.title != "x" and team.unowned_item.version == 1


@pytest.mark.parametrize("header", ['W/"1"', "*"])
def test_it_accepts_a_weak_or_wildcard_if_match(team: Any, header: str) -> None:
    response = api_as(team.manager).patch(item_url(team.unowned_item), {"title": "x"}, HTTP_IF_MATCH=header)
    assert response.status_code == 200, response.data


def test_it_still_accepts_a_change_without_a_precondition(team: Any) -> None:
    api = api_as(team.manager)
    assert api.patch(item_url(team.unowned_item), {"title": "One"}).status_code == 200
    assert api.patch(item_url(team.unowned_item), {"title": "Two"}).status_code == 200
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.version == 3


def test_it_refuses_an_edit_based_on_the_version_before_a_bulk_change(team: Any) -> None:
    api = api_as(team.manager)
    etag = api.get(item_url(team.unowned_item))["ETag"]
    services.checklist_items_set_status(
        item_ids=[team.unowned_item.pk], status="in_progress", by=team.manager
    )
    response = api.patch(item_url(team.unowned_item), {"status": "not_started"}, HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    assert response.data["current"]["status"] == "in_progress"


def test_it_lets_only_one_of_two_edits_of_one_version_win(team: Any) -> None:
    """The race itself: both callers hold version 1; the conditional update lets exactly one through."""
    first = ChecklistItem.objects.get(pk=team.unowned_item.pk)
    second = ChecklistItem.objects.get(pk=team.unowned_item.pk)
    services.checklist_item_update(item=first, by=team.manager, data={"title": "First"})
    with pytest.raises(services.EditConflict) as conflict:
        services.checklist_item_update(item=second, by=team.manager, data={"title": "Second"})
    assert conflict.value.current.title == "First" and conflict.value.expected_version == 1
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.title == "First" and team.unowned_item.history.count() == 2  # created + first


# --- admin ---------------------------------------------------------------------------------------------------


def posted(form: Any, **changes: Any) -> dict[str, Any]:
    """What a browser would post back for an unchanged admin form, with `changes` applied."""
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        data[name] = "" if value is None else value
    data.update(changes)
    return {name: value for name, value in data.items() if not (name in changes and value is None)}


def test_it_refuses_an_admin_form_posted_after_someone_elses_change(
    client: Any, team: Any, two_managers: tuple[Any, Any]
) -> None:
    maria, mona = two_managers
    url = reverse("admin:roadmap_checklistitem_change", args=[team.unowned_item.pk])
    client.force_login(mona)
    form = client.get(url).context["adminform"].form  # mona opens the item at version 1
    assert form["based_on_version"].value() == 1

    services.checklist_item_update(
        item=ChecklistItem.objects.get(pk=team.unowned_item.pk), by=maria, data={"status": Status.DONE}
    )
    response = client.post(url, posted(form, owner=team.contributor.pk))

    assert response.status_code == 200  # the form again, with the reason
    page = response.content.decode()
    assert "was changed by maria" in page and "now version 2" in page
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.DONE  # mona's form did not put "not started" back
    assert team.unowned_item.owner is None


def test_it_saves_an_admin_form_of_the_current_version(client: Any, team: Any) -> None:
    url = reverse("admin:roadmap_checklistitem_change", args=[team.unowned_item.pk])
    client.force_login(team.manager)
    form = client.get(url).context["adminform"].form
    response = client.post(url, posted(form, owner=team.contributor.pk))
    assert response.status_code == 302, response.content.decode()[:2000]
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.owner == team.contributor and team.unowned_item.version == 2


def test_it_reports_a_conflict_found_while_saving_as_a_message_not_an_error_page(
    client: Any, team: Any
) -> None:
    """Another edit can land between the form's check and the save; the service's refusal is shown the same way."""
    url = reverse("admin:roadmap_checklistitem_change", args=[team.unowned_item.pk])
    client.force_login(team.manager)
    form = client.get(url).context["adminform"].form
    conflict = services.EditConflict(current=team.unowned_item, expected_version=1)
    with mock.patch.object(services, "checklist_item_update", side_effect=conflict):
        response = client.post(url, posted(form, title="Mine"), follow=True)
    assert response.redirect_chain[-1][0].endswith(url)
    assert "Nothing was saved" in response.content.decode()
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.title != "Mine"


def test_it_refuses_a_section_inline_row_posted_after_someone_elses_change(client: Any, team: Any) -> None:
    client.force_login(team.manager)
    items = _section_items(team)
    url = reverse("admin:roadmap_section_change", args=[team.section.pk])
    shown = {item.pk: {"based_on_version": item.version} for item in items}
    services.checklist_item_update(
        item=ChecklistItem.objects.get(pk=team.unowned_item.pk),
        by=team.manager,
        data={"status": Status.IN_PROGRESS},
    )
    shown[team.unowned_item.pk]["status"] = Status.DONE
    response = client.post(url, _inline_data(team.section, items, shown))
    assert response.status_code == 200
    assert "now version 2" in response.content.decode()
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.IN_PROGRESS


def test_it_refuses_a_changelist_row_posted_after_someone_elses_change(client: Any, team: Any) -> None:
    client.force_login(team.manager)
    url = reverse("admin:roadmap_checklistitem_changelist") + f"?program__id__exact={team.program.pk}"
    page = client.get(url)
    forms = {form.instance.pk: form for form in page.context["cl"].formset.forms}
    assert (
        f'name="form-0-based_on_version" value="{forms[next(iter(forms))].instance.version}"'
        in page.content.decode()
    )
    services.checklist_item_update(
        item=ChecklistItem.objects.get(pk=team.unowned_item.pk), by=team.manager, data={"status": Status.DONE}
    )
    data = {"form-TOTAL_FORMS": str(len(forms)), "form-INITIAL_FORMS": str(len(forms)), "_save": "Save"}
    for index, form in enumerate(forms.values()):
        data.update({f"form-{index}-{name}": value for name, value in posted(form).items()})
        data[f"form-{index}-id"] = form.instance.pk
        if form.instance.pk == team.unowned_item.pk:
            data[f"form-{index}-owner"] = team.contributor.pk  # set on the page showing "not started"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "now version 2" in response.content.decode()
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.DONE and team.unowned_item.owner is None
