import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from roadmap import services
from roadmap.models import ChecklistItem, Program, ProgramMembership
from tests.factories import UserFactory

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


def test_a_manager_changes_any_field_and_history_names_them(team):
    item = services.checklist_item_update(
        item=team.unowned_item, by=team.manager, data={"title": "Renamed", "owner": team.contributor}
    )
    item.refresh_from_db()
    assert (item.title, item.owner) == ("Renamed", team.contributor)
    latest = item.history.first()
    assert latest.history_user == team.manager
    assert latest.prev_record.title != "Renamed"


def test_a_contributor_reports_status_on_their_own_item(team):
    services.checklist_item_update(
        item=team.owned_item,
        by=team.contributor,
        data={"status": Status.BLOCKED, "status_reason": "Waiting on DNS"},
    )
    team.owned_item.refresh_from_db()
    assert (team.owned_item.status, team.owned_item.status_reason) == (Status.BLOCKED, "Waiting on DNS")


def test_a_contributor_cannot_reassign_their_item(team):
    with pytest.raises(PermissionDenied, match="may change only status, status_reason"):
        services.checklist_item_update(item=team.owned_item, by=team.contributor, data={"owner": None})


@pytest.mark.parametrize("persona", ["executive", "auditor", "outsider"])
def test_readers_and_outsiders_cannot_change_items(team, persona):
    with pytest.raises(PermissionDenied):
        services.checklist_item_update(
            item=team.owned_item, by=team.user(persona), data={"status": Status.DONE}
        )
    team.owned_item.refresh_from_db()
    assert team.owned_item.status == Status.NOT_STARTED


def test_an_owner_must_be_a_member_of_the_program(team):
    with pytest.raises(ValidationError, match="not a member"):
        services.checklist_item_update(item=team.unowned_item, by=team.manager, data={"owner": team.outsider})


def test_bulk_status_changes_every_item_with_its_own_history(team):
    changed = services.checklist_items_set_status(
        item_ids=[team.owned_item.pk, team.unowned_item.pk], status=Status.DONE, by=team.manager
    )
    assert changed == 2
    for item in (team.owned_item, team.unowned_item):
        item.refresh_from_db()
        assert item.status == Status.DONE
        assert item.history.first().history_user == team.manager
        assert item.history.first().history_change_reason == "Bulk status change to done"


def test_bulk_status_is_all_or_nothing(team):
    with pytest.raises(PermissionDenied):
        services.checklist_items_set_status(
            item_ids=[team.owned_item.pk, team.unowned_item.pk], status=Status.DONE, by=team.contributor
        )
    team.owned_item.refresh_from_db()
    assert team.owned_item.status == Status.NOT_STARTED


def test_bulk_status_needs_a_reason_for_blocked(team):
    with pytest.raises(ValidationError, match="reason is required"):
        services.checklist_items_set_status(
            item_ids=[team.owned_item.pk], status=Status.BLOCKED, by=team.manager
        )


def test_bulk_status_again_changes_nothing(team):
    ids = [team.owned_item.pk]
    services.checklist_items_set_status(item_ids=ids, status=Status.DONE, by=team.manager)
    assert services.checklist_items_set_status(item_ids=ids, status=Status.DONE, by=team.manager) == 0
    assert team.owned_item.history.count() == 2  # created + one change


def test_bulk_status_names_missing_items(team):
    with pytest.raises(ValidationError, match="No checklist items with id 999999"):
        services.checklist_items_set_status(item_ids=[999999], status=Status.DONE, by=team.manager)


def test_creating_an_item_derives_a_stable_key_and_the_phase_of_its_section(team):
    item = services.checklist_item_create(
        by=team.manager, program=team.program, section=team.section, title="Enable MFA for all administrators"
    )
    assert item.key.startswith("enable-mfa-for-all-administrators-")
    assert item.phase == team.phase
    with pytest.raises(ValidationError, match="already exists"):
        services.checklist_item_create(
            by=team.manager,
            program=team.program,
            section=team.section,
            title="Enable  MFA for all administrators.",
        )


def test_the_creator_of_a_program_becomes_its_manager(django_user_model):
    creator = UserFactory(username="founder", is_superuser=True)
    program = services.program_create(by=creator, key="gamma", title="Gamma")
    assert ProgramMembership.objects.get(program=program).user == creator
    assert Program.objects.managed_by(creator).filter(pk=program.pk).exists()


def test_users_without_the_permission_cannot_create_programs(team):
    with pytest.raises(PermissionDenied):
        services.program_create(by=team.contributor, key="delta", title="Delta")


def test_a_membership_grants_the_role_group_and_admin_access(team):
    newcomer = UserFactory(username="newcomer")
    services.membership_save(
        membership=ProgramMembership(user=newcomer, program=team.program, role="auditor"), by=team.manager
    )
    newcomer.refresh_from_db()
    assert newcomer.is_staff
    assert newcomer.has_perm("roadmap.view_checklistitem")
    assert not newcomer.has_perm("roadmap.change_checklistitem")


def test_executives_get_no_admin_access(team):
    assert not team.executive.is_staff


def test_only_managers_add_members(team):
    with pytest.raises(PermissionDenied):
        services.membership_save(
            membership=ProgramMembership(user=UserFactory(), program=team.program, role="manager"),
            by=team.contributor,
        )


def test_a_manager_of_both_programs_still_cannot_move_a_phase_between_them(team):
    services.membership_save(
        membership=ProgramMembership(user=team.manager, program=team.other_program, role="manager"), by=None
    )
    team.phase.program = team.other_program
    with pytest.raises(ValidationError, match="cannot move to another program"):
        services.phase_save(phase=team.phase, by=team.manager)
    team.phase.refresh_from_db()
    assert team.phase.program == team.program
