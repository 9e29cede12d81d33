from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cairn.lib.dates import add_months, parse_document_date
from roadmap.models import ChecklistItem, Program, levels_problem
from roadmap.roles import GROUP_NAMES, GROUP_PERMISSIONS
from tests.factories import ItemFactory, PhaseFactory, ProgramFactory, SectionFactory

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


def test_it_refuses_two_items_with_one_key_in_a_program():
    section = SectionFactory()
    ItemFactory(section=section, key="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(section=section, key="same")


def test_it_allows_the_same_key_in_another_program():
    ItemFactory(key="same")
    ItemFactory(key="same")
    assert ChecklistItem.objects.filter(key="same").count() == 2


@pytest.mark.parametrize("status", [Status.BLOCKED, Status.NOT_APPLICABLE])
def test_the_database_refuses_blocked_or_not_applicable_without_reason(status):
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(status=status, status_reason="")


def test_the_database_refuses_a_phase_that_ends_before_it_starts():
    with pytest.raises(IntegrityError), transaction.atomic():
        PhaseFactory(start_month=7, end_month=6)


def test_clean_explains_a_phase_window_with_one_end():
    phase = PhaseFactory.build(program=ProgramFactory(), start_month=3, end_month=None)
    with pytest.raises(ValidationError, match="both the start and the end month"):
        phase.clean()


def test_set_status_done_records_completion_and_attestation(django_user_model):
    user = django_user_model.objects.create(username="ann")
    item = ItemFactory()
    item.set_status(Status.DONE, by=user)
    assert item.completed_at is not None
    assert item.attested_by == user

    item.set_status(Status.IN_PROGRESS, by=user)
    assert item.completed_at is None


def test_set_status_requires_a_reason_and_clears_it_afterwards():
    item = ItemFactory()
    with pytest.raises(ValidationError, match="reason is required"):
        item.set_status(Status.BLOCKED, by=None)
    item.set_status(Status.BLOCKED, by=None, reason="Vendor late")
    assert item.status_reason == "Vendor late"
    item.set_status(Status.IN_PROGRESS, by=None)
    assert item.status_reason == ""


def test_set_status_names_the_allowed_values_for_an_unknown_status():
    with pytest.raises(ValidationError, match="expected one of not_started"):
        ItemFactory().set_status("finished", by=None)


def test_items_of_another_program_cannot_be_put_in_a_section():
    item = ItemFactory.build(section=SectionFactory(), program=ProgramFactory(), key="x", title="x")
    with pytest.raises(ValidationError) as error:
        item.full_clean()
    assert "section" in error.value.message_dict


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        ([{"level": 1, "name": "A"}, {"level": 2, "name": "B"}], ""),
        ([], "at least one level"),
        ([{"level": 2, "name": "B"}], "Entry 1"),
        ([{"level": 1, "name": ""}], "Entry 1"),
        ("levels", "at least one level"),
    ],
)
def test_levels_must_be_numbered_from_one_with_names(levels, problem):
    assert (problem in levels_problem(levels)) if problem else levels_problem(levels) == ""


def test_level_name_looks_up_the_program_levels():
    assert Program(levels=[{"level": 1, "name": "Established"}]).level_name(1) == "Established"


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 3, 1), -3, date(2025, 12, 1)),
    ],
)
def test_add_months_clamps_to_the_end_of_short_months(start, months, expected):
    assert add_months(start, months) == expected


def test_role_groups_hold_every_permission_they_name():
    for role, codes in GROUP_PERMISSIONS.items():
        group = Group.objects.get(name=GROUP_NAMES[role])
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert held == set(codes), role


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01", date(2025, 3, 1)),
        ("2025-03", date(2025, 3, 1)),
        ("March 2025", date(2025, 3, 1)),
        ("Mar 2025", date(2025, 3, 1)),
        ("November 23, 2025", date(2025, 11, 23)),
        ("23 November 2025", date(2025, 11, 23)),
        ("To be set", None),
        ("Quarterly (Feb 23, May 23, Aug 23, 2026)", None),
        ("2025-13-45", None),
        ("[Current Date]", None),
    ],
)
def test_document_dates_are_read_as_written_or_not_at_all(text, expected):
    assert parse_document_date(text) == expected
