"""The items list builds its answer from `.values()` rows (issue 11): it must stay, byte for byte, what
ChecklistItemSerializer answers for the same items."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from roadmap.api import row_fields, rows_data
from roadmap.models import ChecklistItem, item_is_overdue
from roadmap.serializers import ChecklistItemSerializer
from tests.factories import ItemFactory, SectionFactory

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


def assert_list_is_serialized(user, query: str) -> list[dict]:
    """The list's body equals the old path's: the same envelope around `ChecklistItemSerializer(items).data`."""
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/items/?{query}")
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    by_id = ChecklistItem.objects.select_related("program", "phase", "owner").in_bulk(
        [row["id"] for row in rows]
    )
    expected = ChecklistItemSerializer([by_id[row["id"]] for row in rows], many=True).data
    assert rows == expected
    body = response.accepted_renderer.render(
        {**response.data, "results": expected}, response.accepted_media_type, response.renderer_context
    )
    assert response.content == body
    return rows


def test_it_answers_what_the_serializer_answers_for_every_field_type(team, settings):
    settings.TIME_ZONE = (
        "America/New_York"  # instants are shown in the current time zone, as the serializer does
    )
    today = timezone.localdate()
    bare_section = SectionFactory(program=team.program, phase=None)
    overdue = ItemFactory(
        section=team.section,
        owner=team.contributor,
        kind=ChecklistItem.Kind.PRACTICE,
        status=Status.IN_PROGRESS,
        due_date=today - timedelta(days=1),
        weight=Decimal("2.5"),
        level=3,
        blocking=False,
        valid_for_days=365,
        grace_days=30,
        description='Line one\nline two — «quoted» "text"',
    )
    done = ItemFactory(
        section=team.section,
        status=Status.DONE,
        due_date=today - timedelta(days=10),
        completed_at=datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        attested_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    blocked = ItemFactory(
        section=team.section, status=Status.BLOCKED, status_reason="Waiting for the vendor."
    )
    bare = ItemFactory(section=bare_section, owner=None, due_date=None, level=None, ref="", key="")
    ChecklistItem.objects.filter(pk=bare.pk).update(version=4)

    rows = {row["id"]: row for row in assert_list_is_serialized(team.manager, "program=alpha&page_size=500")}

    # What the comparison covered: every kind of value, not two empty lists.
    assert len(rows) == 6
    assert rows[overdue.pk]["is_overdue"] is True and rows[overdue.pk]["weight"] == "2.50"
    assert rows[done.pk]["is_overdue"] is False and rows[done.pk]["completed_at"].endswith("-05:00")
    assert rows[blocked.pk]["status_reason"] == "Waiting for the vendor."
    assert (
        rows[bare.pk]["owner"] is None
        and rows[bare.pk]["phase"] is None
        and rows[bare.pk]["due_date"] is None
    )
    assert rows[bare.pk]["version"] == 4


def test_it_answers_what_the_serializer_answers_for_archived_and_filtered_pages(team):
    archived = ItemFactory(section=team.section, archived_at=timezone.now(), owner=team.contributor)
    late = ItemFactory(section=team.section, due_date=timezone.localdate() - timedelta(days=3))

    archived_rows = assert_list_is_serialized(team.contributor, "archived=true")
    assert [row["id"] for row in archived_rows] == [archived.pk]
    assert archived_rows[0]["archived_at"] is not None
    assert [row["id"] for row in assert_list_is_serialized(team.auditor, "overdue=true")] == [late.pk]
    assert len(assert_list_is_serialized(team.manager, "ordering=-due_date&search=item&page_size=2")) == 2


def test_it_follows_a_field_added_to_the_serializer(team):
    class Extended(ChecklistItemSerializer):
        section_title = serializers.CharField(source="section.title")
        owner_email = serializers.EmailField(source="owner.email", allow_null=True)
        created_day = serializers.DateTimeField(source="created_at", format="%Y-%m-%d")

        class Meta(ChecklistItemSerializer.Meta):
            fields = [*ChecklistItemSerializer.Meta.fields, "section_title", "owner_email", "created_day"]

    items = list(ChecklistItem.objects.order_by("pk"))
    today = timezone.localdate()
    computed = {
        "is_overdue": lambda row: item_is_overdue(due_date=row["due_date"], status=row["status"], today=today)
    }
    fields = row_fields(Extended(), computed=computed)
    values = ChecklistItem.objects.order_by("pk").values(
        *{f.column for f in fields if f.column not in computed}, "due_date", "status"
    )

    assert rows_data(list(values), fields, computed) == Extended(items, many=True).data


def test_it_refuses_a_serializer_it_cannot_follow():
    class WithProperty(ChecklistItemSerializer):
        status_label = serializers.CharField(source="get_status_display")

        class Meta(ChecklistItemSerializer.Meta):
            fields = [*ChecklistItemSerializer.Meta.fields, "status_label"]

    class Reshaped(ChecklistItemSerializer):
        def to_representation(self, instance: ChecklistItem) -> dict:
            return {**super().to_representation(instance), "extra": 1}

    with pytest.raises(
        ImproperlyConfigured, match=r"WithProperty.status_label \(source 'get_status_display'\)"
    ):
        row_fields(WithProperty(), computed={"is_overdue"})
    with pytest.raises(ImproperlyConfigured, match="Reshaped overrides to_representation"):
        row_fields(Reshaped(), computed={"is_overdue"})
