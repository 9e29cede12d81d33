"""The admin for program managers: the index says what needs attention, sections edit their items in place."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from roadmap.models import ChecklistItem, ProgramMembership, Role
from roadmap.services import membership_save
from tests.factories import ItemFactory, ProgramFactory, SectionFactory, member

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


def _inline_data(section, items, changes):
    data = {
        "title": section.title,
        "program": section.program_id,
        "order": section.order,
        "weight": section.weight,
        "style": section.style,
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": str(len(items)),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    for index, item in enumerate(items):
        row = {
            "id": item.pk,
            "section": section.pk,
            "status": item.status,
            "status_reason": item.status_reason,
            "owner": item.owner_id or "",
            "due_date": item.due_date.isoformat() if item.due_date else "",
            **changes.get(item.pk, {}),
        }
        data.update({f"items-{index}-{name}": value for name, value in row.items()})
    return data


def _join(program, user, role):
    membership_save(membership=ProgramMembership(user=user, program=program, role=Role(role)), by=None)


def _section_items(team):
    return list(ChecklistItem.objects.filter(section=team.section).order_by("order", "id"))


def test_it_shows_each_program_and_what_needs_attention_on_the_admin_index(client, team):
    team.owned_item.due_date = timezone.localdate() - timedelta(days=3)
    team.owned_item.save()
    team.unowned_item.status, team.unowned_item.status_reason = Status.BLOCKED, "waiting for a vendor"
    team.unowned_item.save()
    client.force_login(team.manager)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="program-attention"' in page
    assert "Alpha" in page and "Beta" not in page  # only the user's programs
    assert "1 overdue" in page and "1 blocked" in page
    assert (
        f"{reverse('admin:roadmap_checklistitem_changelist')}?program__id__exact={team.program.pk}&amp;overdue=yes"
        in page
    )


def test_it_edits_a_sections_items_in_place_through_the_item_service(client, team):
    client.force_login(team.manager)
    items = _section_items(team)
    url = reverse("admin:roadmap_section_change", args=[team.section.pk])
    assert "Owned by carla" in client.get(url).content.decode()
    data = _inline_data(team.section, items, {team.unowned_item.pk: {"status": Status.DONE}})
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.DONE
    assert team.unowned_item.completed_at is not None  # the service's doing, not a bare save()
    assert team.unowned_item.history.first().history_user == team.manager


def test_it_refuses_an_inline_block_without_a_reason_and_writes_nothing(client, team):
    client.force_login(team.manager)
    url = reverse("admin:roadmap_section_change", args=[team.section.pk])
    data = _inline_data(
        team.section, _section_items(team), {team.unowned_item.pk: {"status": Status.BLOCKED}}
    )
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Say why the item is blocked" in response.content.decode()
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.NOT_STARTED


def test_it_shows_the_items_read_only_to_an_auditor(client, team):
    client.force_login(team.auditor)
    page = client.get(reverse("admin:roadmap_section_change", args=[team.section.pk])).content.decode()
    assert "Owned by carla" in page
    assert 'name="items-0-status"' not in page


def test_it_offers_only_the_sections_program_members_as_owners(client, team):
    other = ProgramFactory(key="gamma", title="Gamma")
    _join(other, team.manager, "manager")  # the manager runs a second program
    stranger = member(other, "contributor", "gus")
    client.force_login(team.manager)
    url = reverse("admin:roadmap_section_change", args=[team.section.pk])
    data = _inline_data(team.section, _section_items(team), {team.unowned_item.pk: {"owner": stranger.pk}})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.owner is None


def test_it_renders_the_section_inline_in_a_constant_number_of_queries(
    client, team, django_assert_num_queries
):
    client.force_login(team.manager)
    url = reverse("admin:roadmap_section_change", args=[team.section.pk])
    client.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    ItemFactory.create_batch(20, section=team.section, owner=team.contributor)
    with django_assert_num_queries(len(few)):
        page = client.get(url)
    assert page.content.decode().count('name="items-') > 20 * 5


def test_it_renders_the_admin_index_panel_in_a_constant_number_of_queries(
    client, team, django_assert_num_queries
):
    client.force_login(team.manager)
    client.get(reverse("admin:index"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("admin:index"))
    for key in ("p1", "p2", "p3", "p4"):
        program = ProgramFactory(key=key, title=key.upper())
        _join(program, team.manager, "manager")
        ItemFactory.create_batch(3, section=SectionFactory(program=program))
    with django_assert_num_queries(len(few)):
        page = client.get(reverse("admin:index")).content.decode()
    assert page.count('href="/programs/p') == 4
