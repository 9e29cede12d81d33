from datetime import date

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from roadmap.models import ChecklistItem, Program
from tests.factories import ItemFactory, PhaseFactory, SectionFactory

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:roadmap_checklistitem_changelist")


@pytest.fixture
def manager_client(client, team):
    client.force_login(team.manager)
    return client


def test_mark_done_goes_through_the_service_and_records_history(manager_client, team):
    response = manager_client.post(
        CHANGELIST,
        {"action": "mark_done", ACTION_CHECKBOX_NAME: [team.owned_item.pk, team.unowned_item.pk]},
        follow=True,
    )
    assert "2 item(s) marked done." in response.content.decode()
    for item in (team.owned_item, team.unowned_item):
        item.refresh_from_db()
        assert item.status == Status.DONE
        assert item.history.first().history_user == team.manager


def test_mark_blocked_asks_for_a_reason_first(manager_client, team):
    selection = {"action": "mark_blocked", ACTION_CHECKBOX_NAME: [team.unowned_item.pk]}
    prompt = manager_client.post(CHANGELIST, selection)
    assert prompt.status_code == 200
    assert 'name="reason"' in prompt.content.decode()
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.NOT_STARTED

    without_reason = manager_client.post(CHANGELIST, {**selection, "apply": "1", "reason": ""})
    assert "This field is required" in without_reason.content.decode()

    manager_client.post(CHANGELIST, {**selection, "apply": "1", "reason": "Supplier strike"}, follow=True)
    team.unowned_item.refresh_from_db()
    assert (team.unowned_item.status, team.unowned_item.status_reason) == (Status.BLOCKED, "Supplier strike")


def test_a_contributor_bulk_action_on_items_they_do_not_own_changes_nothing(client, team):
    client.force_login(team.contributor)
    response = client.post(
        CHANGELIST,
        {"action": "mark_in_progress", ACTION_CHECKBOX_NAME: [team.owned_item.pk, team.unowned_item.pk]},
        follow=True,
    )
    assert "Nothing was changed" in response.content.decode()
    assert not ChecklistItem.objects.filter(status=Status.IN_PROGRESS).exists()


def test_managers_edit_status_owner_and_due_date_in_the_list(manager_client, team):
    items = list(ChecklistItem.objects.filter(program=team.program).order_by("program", "order", "id"))
    data = {
        "form-TOTAL_FORMS": str(len(items)),
        "form-INITIAL_FORMS": str(len(items)),
        "_save": "Save",
    }
    for index, item in enumerate(items):
        data[f"form-{index}-id"] = str(item.pk)
        data[f"form-{index}-status"] = item.status
        data[f"form-{index}-owner"] = str(item.owner_id or "")
        data[f"form-{index}-due_date"] = ""
    target = items.index(team.unowned_item)
    data[f"form-{target}-status"] = Status.IN_PROGRESS
    data[f"form-{target}-owner"] = str(team.contributor.pk)
    data[f"form-{target}-due_date"] = "2026-12-24"
    response = manager_client.post(CHANGELIST, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    team.unowned_item.refresh_from_db()
    assert (team.unowned_item.status, team.unowned_item.owner, team.unowned_item.due_date) == (
        Status.IN_PROGRESS,
        team.contributor,
        date(2026, 12, 24),
    )
    assert team.unowned_item.history.first().history_user == team.manager


def test_contributors_get_no_list_editing(client, team):
    client.force_login(team.contributor)
    html = client.get(CHANGELIST).content.decode()
    assert 'name="form-0-status"' not in html


def queries_for(client, url):
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context), response.content.decode()


def test_the_item_changelist_runs_the_same_queries_for_10_and_200_items(manager_client, team):
    def add(count):
        for n in range(count):
            ItemFactory(section=team.section, owner=team.contributor, due_date=date(2026, 1, 1 + n % 28))

    add(8)  # 10 with the team's two
    with_10, html_10 = queries_for(manager_client, CHANGELIST)
    assert html_10.count('name="form-9-status"') == 1
    add(190)
    with_200, html_200 = queries_for(manager_client, CHANGELIST + "?all=")
    assert html_200.count('name="form-199-status"') == 1  # all 200 rows rendered and editable
    assert with_10 == with_200


def test_phase_and_section_changelists_show_progress_in_constant_queries(manager_client, team):
    phases = [team.phase, PhaseFactory(program=team.program, code="P2", start_month=7, end_month=12)]
    sections = [SectionFactory(program=team.program, phase=phase) for phase in phases]

    def add(count):
        for n in range(count):
            ItemFactory(section=sections[n % 2], status=Status.DONE if n % 3 == 0 else Status.NOT_STARTED)

    add(8)
    phase_10, phase_html = queries_for(manager_client, reverse("admin:roadmap_phase_changelist"))
    section_10, section_html = queries_for(manager_client, reverse("admin:roadmap_section_changelist"))
    add(190)
    assert queries_for(manager_client, reverse("admin:roadmap_phase_changelist"))[0] == phase_10
    assert queries_for(manager_client, reverse("admin:roadmap_section_changelist"))[0] == section_10
    assert "done (" in phase_html
    assert "done (" in section_html
    assert "cairn-rag" in phase_html


def test_the_overdue_filter_lists_late_open_items(manager_client, team):
    late = ItemFactory(section=team.section, title="Late and open", due_date=date(2020, 1, 1))
    ItemFactory(section=team.section, title="Late but done", due_date=date(2020, 1, 1), status=Status.DONE)
    html = manager_client.get(CHANGELIST + "?overdue=yes").content.decode()
    assert late.title in html
    assert "Late but done" not in html


def test_the_item_history_shows_who_changed_what(manager_client, team):
    manager_client.post(CHANGELIST, {"action": "mark_done", ACTION_CHECKBOX_NAME: [team.unowned_item.pk]})
    url = reverse("admin:roadmap_checklistitem_history", args=[team.unowned_item.pk])
    html = manager_client.get(url).content.decode()
    assert "maria" in html
    assert "Bulk status change to done" in html


def test_a_manager_adds_an_item_through_the_admin(manager_client, team):
    response = manager_client.post(
        reverse("admin:roadmap_checklistitem_add"),
        {
            "program": team.program.pk,
            "section": team.section.pk,
            "title": "Write the disaster recovery runbook",
            "kind": "task",
            "status": "not_started",
            "weight": "2",
            "blocking": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    item = ChecklistItem.objects.get(title="Write the disaster recovery runbook")
    assert item.key.startswith("write-the-disaster-recovery-runbook-")
    assert item.phase == team.phase
    assert item.history.first().history_user == team.manager


def test_nothing_can_be_deleted_from_an_item(manager_client, team):
    url = reverse("admin:roadmap_checklistitem_delete", args=[team.unowned_item.pk])
    assert manager_client.get(url).status_code == 403


def program_form(key, levels='[{"level": 1, "name": "Basic"}]', level_rules="[]"):
    """What the admin's add-program form posts: the key, the title and the default settings."""
    return {
        "key": key,
        "title": key.title(),
        "status": "draft",
        "levels": levels,
        "level_rules": level_rules,
        "area_depth": "2",
        "in_progress_credit": "0.5",
        "rag_red_below": "0.4",
        "rag_amber_below": "0.7",
    }


def test_a_manager_creates_a_program_and_becomes_its_manager(manager_client, team):
    response = manager_client.post(reverse("admin:roadmap_program_add"), program_form("gamma"))
    assert response.status_code == 302, response.content.decode()[:3000]
    gamma = Program.objects.get(key="gamma")
    assert gamma.memberships.get().user == team.manager
    assert gamma.memberships.get().role == "manager"


def test_program_levels_must_be_numbered_from_one(manager_client, team):
    response = manager_client.post(
        reverse("admin:roadmap_program_add"), program_form("delta", levels='[{"level": 2, "name": "B"}]')
    )
    assert response.status_code == 200
    assert "Entry 1 must be" in response.content.decode()
    assert not Program.objects.filter(key="delta").exists()


def test_level_rules_must_name_a_pattern_and_a_level(manager_client, team):
    response = manager_client.post(
        reverse("admin:roadmap_program_add"),
        program_form("delta", level_rules='[{"pattern": "", "level": 0}]'),
    )
    assert response.status_code == 200
    assert "Rule 1 must be" in response.content.decode()
    assert not Program.objects.filter(key="delta").exists()


def test_a_manager_adds_a_section_only_to_programs_they_manage(manager_client, team):
    add = reverse("admin:roadmap_section_add")
    form = manager_client.get(add).context["adminform"].form
    assert list(form.fields["program"].queryset) == [team.program]
    assert team.foreign_item.section not in form.fields["parent"].queryset
    fields = {"title": "Observability", "order": "9", "weight": "1", "style": "heading"}
    refused = manager_client.post(add, {**fields, "program": team.other_program.pk})
    assert refused.status_code == 200  # "select a valid choice"
    accepted = manager_client.post(add, {**fields, "program": team.program.pk, "parent": team.section.pk})
    assert accepted.status_code == 302
    assert team.section.children.get().title == "Observability"


@pytest.mark.parametrize("object_id", ["abc", "999999"])
def test_history_of_an_id_that_is_not_an_item_is_404(manager_client, object_id):
    assert manager_client.get(f"/admin/roadmap/checklistitem/{object_id}/history/").status_code == 404
    assert manager_client.get(f"/admin/roadmap/checklistitem/{object_id}/history/1/").status_code == 404
