"""Waivers: who may request, approve and revoke them, how the maturity engine counts them, and the admin/API doors.

Personas come from the `team` fixture: maria manages alpha, carla contributes (owns `owned_item`), eve is an
executive, aude an auditor, and oscar manages beta and sees nothing of alpha. Max is a second manager of alpha,
so that somebody other than the requester can approve.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone
from rest_framework.test import APIClient

import cairn.urls
import governance.admin_waivers  # noqa: F401 - registers WaiverAdmin until governance/admin.py imports it
from governance.models import Waiver
from governance.waivers import (
    WaiverState,
    waiver_approve,
    waiver_request,
    waiver_revoke,
    waiver_state,
    waivers_in_force,
)
from metrics.models import Metric
from roadmap.models import ChecklistItem
from scorecards.selectors import maturity_input
from scorecards.services import program_maturity
from tests.factories import ItemFactory, member

pytestmark = pytest.mark.django_db

RISK = Waiver.Type.RISK_ACCEPTED
NOT_APPLICABLE = Waiver.Type.NOT_APPLICABLE
Status = ChecklistItem.Status


def in_days(days: float) -> datetime:
    return timezone.now() + timedelta(days=days)


@pytest.fixture
def max_manager(team: Any) -> Any:
    return member(team.program, "manager", "max")


def ask(by: Any, item: Any = None, metric: Any = None, **fields: Any) -> Waiver:
    defaults = {"type": RISK, "reason": "Vendor fix due next quarter", "expires_at": in_days(30)}
    return waiver_request(by=by, item=item, metric=metric, **{**defaults, **fields})


def approved(team: Any, approver: Any, item: Any = None, **fields: Any) -> Waiver:
    return waiver_approve(waiver=ask(team.manager, item=item or team.unowned_item, **fields), by=approver)


# --- requesting -------------------------------------------------------------------------------------------


def test_it_lets_a_manager_request_a_waiver_on_any_item_of_the_program(team):
    waiver = ask(team.manager, item=team.unowned_item)
    assert (waiver.program, waiver.requested_by, waiver.approved_by) == (team.program, team.manager, None)
    assert waiver_state(waiver) == WaiverState.PENDING


def test_it_lets_a_contributor_request_a_waiver_on_an_item_they_own(team):
    assert ask(team.contributor, item=team.owned_item).requested_by == team.contributor


def test_it_refuses_a_contributor_a_waiver_on_an_item_they_do_not_own(team):
    with pytest.raises(PermissionDenied):
        ask(team.contributor, item=team.unowned_item)
    assert not Waiver.objects.exists()


@pytest.mark.parametrize("persona", ["executive", "auditor", "outsider"])
def test_it_refuses_a_waiver_to_members_who_neither_manage_nor_own(team, persona):
    with pytest.raises(PermissionDenied):
        ask(team.user(persona), item=team.owned_item)
    assert not Waiver.objects.exists()


def test_the_outsider_requests_waivers_in_their_own_program(team):
    assert ask(team.outsider, item=team.foreign_item).program == team.other_program


def test_it_lets_a_manager_waive_a_metric(team):
    metric = Metric.objects.create(program=team.program, key="uptime", name="Uptime", target=Decimal("99.9"))
    waiver = ask(team.manager, metric=metric, type=NOT_APPLICABLE)
    assert (waiver.program, waiver.metric, waiver.item) == (team.program, metric, None)


@pytest.mark.parametrize("both", [False, True])
def test_it_needs_exactly_one_requirement(team, both):
    metric = Metric.objects.create(program=team.program, key="uptime", name="Uptime", target=Decimal("99.9"))
    with pytest.raises(ValidationError) as caught:
        ask(team.manager, item=team.unowned_item if both else None, metric=metric if both else None)
    assert "item" in caught.value.message_dict


def test_it_needs_a_reason(team):
    with pytest.raises(ValidationError) as caught:
        ask(team.manager, item=team.unowned_item, reason="   ")
    assert set(caught.value.message_dict) == {"reason"}


@pytest.mark.parametrize("expires_at", [None, "past", "now"])
def test_it_needs_an_expiry_in_the_future(team, expires_at):
    moment = {"past": in_days(-1), "now": timezone.now()}.get(expires_at)
    with pytest.raises(ValidationError) as caught:
        ask(team.manager, item=team.unowned_item, expires_at=moment)
    assert set(caught.value.message_dict) == {"expires_at"}
    assert not Waiver.objects.exists()


def test_it_refuses_a_waiver_on_an_archived_item(team):
    archived = ItemFactory(section=team.section, archived_at=timezone.now())
    with pytest.raises(ValidationError) as caught:
        ask(team.manager, item=archived)
    assert set(caught.value.message_dict) == {"item"}


def test_it_keeps_one_pending_or_active_waiver_per_requirement(team, max_manager):
    first = ask(team.manager, item=team.unowned_item)
    with pytest.raises(ValidationError) as caught:
        ask(max_manager, item=team.unowned_item, type=NOT_APPLICABLE)
    assert "pending or active" in caught.value.message_dict["item"][0]
    waiver_approve(waiver=first, by=max_manager)
    with pytest.raises(ValidationError):
        ask(max_manager, item=team.unowned_item)
    waiver_revoke(waiver=first, by=team.manager)
    assert ask(max_manager, item=team.unowned_item).pk != first.pk


def test_an_expired_waiver_makes_room_for_a_new_request(team):
    first = ask(team.manager, item=team.unowned_item)
    Waiver.objects.filter(pk=first.pk).update(expires_at=in_days(-1))  # as if its expiry had passed
    assert ask(team.manager, item=team.unowned_item).pk != first.pk


# --- approving: separation of duties ----------------------------------------------------------------------


def test_another_manager_approves_a_waiver(team, max_manager):
    waiver = waiver_approve(waiver=ask(team.contributor, item=team.owned_item), by=team.manager)
    assert waiver.approved_by == team.manager
    assert waiver.approved_at is not None
    assert waiver_state(waiver) == WaiverState.ACTIVE


def test_the_requester_cannot_approve_their_own_waiver(team):
    waiver = ask(team.manager, item=team.unowned_item)
    with pytest.raises(PermissionDenied, match="separation of duties"):
        waiver_approve(waiver=waiver, by=team.manager)
    waiver.refresh_from_db()
    assert (waiver.approved_by, waiver.approved_at) == (None, None)


def test_not_even_a_superuser_approves_their_own_waiver(team, superuser):
    waiver = ask(superuser, item=team.unowned_item)
    with pytest.raises(PermissionDenied, match="separation of duties"):
        waiver_approve(waiver=waiver, by=superuser)


def test_the_database_refuses_an_approver_who_is_the_requester(team):
    waiver = ask(team.manager, item=team.unowned_item)
    waiver.approved_by, waiver.approved_at = team.manager, timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        waiver.save()


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor", "outsider"])
def test_only_managers_of_the_program_approve(team, persona):
    waiver = ask(team.manager, item=team.unowned_item)
    with pytest.raises(PermissionDenied):
        waiver_approve(waiver=waiver, by=team.user(persona))
    waiver.refresh_from_db()
    assert waiver.approved_by is None


def test_it_does_not_approve_a_revoked_an_expired_or_an_approved_waiver(team, max_manager):
    revoked = waiver_revoke(waiver=ask(team.manager, item=team.unowned_item), by=team.manager)
    with pytest.raises(ValidationError) as caught:
        waiver_approve(waiver=revoked, by=max_manager)
    assert set(caught.value.message_dict) == {"revoked_at"}

    expired = ask(team.manager, item=team.unowned_item)
    Waiver.objects.filter(pk=expired.pk).update(expires_at=in_days(-1))
    expired.refresh_from_db()
    with pytest.raises(ValidationError) as caught:
        waiver_approve(waiver=expired, by=max_manager)
    assert set(caught.value.message_dict) == {"expires_at"}

    done = approved(team, max_manager, item=team.owned_item)
    with pytest.raises(ValidationError) as caught:
        waiver_approve(waiver=done, by=max_manager)
    assert set(caught.value.message_dict) == {"approved_by"}


def test_an_approval_racing_another_claims_the_waiver_once(team, max_manager):
    waiver = ask(team.contributor, item=team.owned_item)
    stale = Waiver.objects.get(pk=waiver.pk)  # loaded by a second approver before the first one saved
    waiver_approve(waiver=waiver, by=team.manager)
    with pytest.raises(ValidationError):
        waiver_approve(waiver=stale, by=max_manager)
    assert Waiver.objects.get(pk=waiver.pk).approved_by == team.manager
    assert Waiver.history.filter(id=waiver.pk, history_type="~").count() == 1


# --- revoking ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["manager", "contributor"])
def test_a_manager_or_the_requester_revokes(team, max_manager, persona):
    waiver = waiver_approve(waiver=ask(team.contributor, item=team.owned_item), by=max_manager)
    revoked = waiver_revoke(waiver=waiver, by=team.user(persona), reason="fixed after all")
    assert revoked.revoked_at is not None
    assert waiver_state(revoked) == WaiverState.REVOKED


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor", "outsider"])
def test_other_people_cannot_revoke(team, persona):
    waiver = ask(team.manager, item=team.unowned_item)
    with pytest.raises(PermissionDenied):
        waiver_revoke(waiver=waiver, by=team.user(persona))
    waiver.refresh_from_db()
    assert waiver.revoked_at is None


def test_it_revokes_a_waiver_once(team):
    waiver = waiver_revoke(waiver=ask(team.manager, item=team.unowned_item), by=team.manager)
    with pytest.raises(ValidationError) as caught:
        waiver_revoke(waiver=waiver, by=team.manager)
    assert set(caught.value.message_dict) == {"revoked_at"}


# --- history ----------------------------------------------------------------------------------------------


def test_history_records_the_requester_the_approver_and_the_revoker(team, max_manager):
    waiver = waiver_approve(waiver=ask(team.contributor, item=team.owned_item), by=team.manager)
    waiver_revoke(waiver=waiver, by=max_manager, reason="control in place")
    rows = [
        (
            row.history_type,
            row.history_user,
            row.history_change_reason,
            row.approved_by_id,
            row.revoked_at is None,
        )
        for row in waiver.history.order_by("history_id")
    ]
    assert rows == [
        ("+", team.contributor, "Waiver requested", None, True),
        ("~", team.manager, "Waiver approved", team.manager.pk, True),
        ("~", max_manager, "Waiver revoked: control in place", team.manager.pk, False),
    ]


# --- maturity ---------------------------------------------------------------------------------------------


@pytest.fixture
def level_one(team: Any) -> Any:
    """Level 1 of alpha: four blocking items done yesterday and one failing item, worth 10 % of the level."""
    done = [
        ItemFactory(
            section=team.section, level=1, status=Status.DONE, completed_at=in_days(-1), weight=Decimal("1")
        )
        for _ in range(4)
    ]
    failing = ItemFactory(section=team.section, level=1, weight=Decimal("0.5"), title="Failing control")
    return done, failing


def row(result: dict[str, Any], item: Any) -> dict[str, Any]:
    return next(entry for entry in result["requirements"] if entry["id"] == f"item:{item.key}")


def test_a_pending_waiver_does_not_count(team, level_one):
    _, failing = level_one
    ask(team.manager, item=failing)
    requirement = row(maturity_input(team.program, timezone.now()).data, failing)
    assert "waiver" not in requirement
    result = program_maturity(program=team.program).result
    assert (result["level"], result["level_waived"]) == (0, False)


def test_a_risk_waiver_lets_the_program_reach_the_level_without_raising_the_score(
    team, level_one, max_manager
):
    _, failing = level_one
    before = program_maturity(program=team.program).result
    assert before["level"] == 0
    approved(team, max_manager, item=failing, type=RISK)
    after = program_maturity(program=team.program).result
    assert (after["level"], after["level_waived"]) == (1, True)
    assert after["score"] == before["score"]
    assert row(after, failing)["gate"] == 1


def test_a_not_applicable_waiver_takes_the_item_out_of_the_score(team, level_one, max_manager):
    _, failing = level_one
    before = program_maturity(program=team.program).result
    approved(team, max_manager, item=failing, type=NOT_APPLICABLE)
    after = program_maturity(program=team.program).result
    assert row(after, failing)["state"] == "not_applicable"
    assert after["score"] > before["score"]
    assert after["level"] == 1


def test_a_waiver_stops_counting_once_it_expires(team, level_one, max_manager):
    _, failing = level_one
    waiver = approved(team, max_manager, item=failing, expires_at=in_days(10))
    assert program_maturity(program=team.program, as_of=in_days(9)).result["level"] == 1
    after_expiry = program_maturity(
        program=team.program, as_of=waiver.expires_at + timedelta(seconds=1)
    ).result
    assert (after_expiry["level"], after_expiry["level_waived"]) == (0, False)
    assert not waivers_in_force(team.program.pk, waiver.expires_at).exists()


def test_a_revoked_waiver_stops_counting_from_its_revocation(team, level_one, max_manager):
    _, failing = level_one
    waiver = approved(team, max_manager, item=failing)
    while_in_force = timezone.now()
    waiver_revoke(waiver=waiver, by=team.manager)
    assert program_maturity(program=team.program).result["level"] == 0
    # A date before the revocation keeps the answer it had then, so a rebuilt snapshot does not change.
    assert program_maturity(program=team.program, as_of=while_in_force).result["level"] == 1


def test_the_engine_input_carries_the_waiver_on_its_item_and_metric(team, max_manager):
    metric = Metric.objects.create(program=team.program, key="uptime", name="Uptime", target=Decimal("99.9"))
    item_waiver = approved(team, max_manager, item=team.unowned_item)
    metric_waiver = waiver_approve(
        waiver=ask(team.manager, metric=metric, type=NOT_APPLICABLE), by=max_manager
    )
    requirements = {
        entry["id"]: entry for entry in maturity_input(team.program, timezone.now()).data["requirements"]
    }
    assert requirements[f"item:{team.unowned_item.key}"]["waiver"] == {
        "type": "risk_accepted",
        "expires_at": item_waiver.expires_at.isoformat(),
        "created_at": item_waiver.approved_at.isoformat(),
    }
    assert requirements["metric:uptime"]["waiver"]["type"] == "not_applicable"
    assert requirements["metric:uptime"]["waiver"]["created_at"] == metric_waiver.approved_at.isoformat()
    assert "waiver" not in requirements[f"item:{team.owned_item.key}"]


def test_waivers_add_the_same_queries_to_the_engine_input_for_one_or_many(team, max_manager):
    approved(team, max_manager, item=team.unowned_item)
    with CaptureQueriesContext(connection) as one:
        maturity_input(team.program, timezone.now())
    for _ in range(5):
        approved(team, max_manager, item=ItemFactory(section=team.section, level=1))
    with CaptureQueriesContext(connection) as many:
        inputs = maturity_input(team.program, timezone.now()).data["requirements"]
    assert sum("waiver" in entry for entry in inputs) == 6
    assert len(many.captured_queries) == len(one.captured_queries)


# --- the API ----------------------------------------------------------------------------------------------

URL = "/api/v1/waivers/"


def api_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_lists_only_the_waivers_of_the_callers_programs(team):
    alpha = ask(team.manager, item=team.unowned_item)
    beta = ask(team.outsider, item=team.foreign_item)
    assert [row["id"] for row in api_for(team.auditor).get(URL).json()["results"]] == [alpha.pk]
    assert [row["id"] for row in api_for(team.outsider).get(URL).json()["results"]] == [beta.pk]
    assert api_for(team.outsider).get(f"{URL}{alpha.pk}/").status_code == 404


def test_the_api_filters_by_program_and_state(team, max_manager):
    pending = ask(team.manager, item=team.unowned_item)
    active = waiver_approve(waiver=ask(team.contributor, item=team.owned_item), by=team.manager)
    client = api_for(max_manager)
    assert [r["id"] for r in client.get(URL, {"state": "pending"}).json()["results"]] == [pending.pk]
    assert [r["id"] for r in client.get(URL, {"state": "active"}).json()["results"]] == [active.pk]
    assert len(client.get(URL, {"program": "alpha"}).json()["results"]) == 2
    assert client.get(URL, {"program": "beta"}).json()["results"] == []


def test_a_contributor_requests_a_waiver_on_their_item_over_the_api(team):
    body = {"item": team.owned_item.pk, "type": "risk_accepted", "reason": "Pending vendor fix"}
    response = api_for(team.contributor).post(URL, {**body, "expires_at": in_days(20).isoformat()})
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["program"], data["requested_by"], data["state"]) == ("alpha", "carla", "pending")
    assert data["requirement"] == f"item:{team.owned_item.key}"


def test_the_api_answers_no_such_item_for_another_programs_item(team):
    body = {"item": team.foreign_item.pk, "type": "risk_accepted", "reason": "x", "expires_at": in_days(5)}
    response = api_for(team.manager).post(URL, body)
    assert response.status_code == 400
    assert response.json() == {"item": ["No such item."]}
    assert not Waiver.objects.exists()


@pytest.mark.parametrize("persona", ["executive", "auditor"])
def test_the_api_refuses_requests_from_members_who_neither_manage_nor_own(team, persona):
    body = {"item": team.owned_item.pk, "type": "risk_accepted", "reason": "x", "expires_at": in_days(5)}
    assert api_for(team.user(persona)).post(URL, body).status_code == 403


def test_the_api_names_the_field_of_a_past_expiry(team):
    body = {"item": team.owned_item.pk, "type": "risk_accepted", "reason": "x", "expires_at": in_days(-5)}
    response = api_for(team.manager).post(URL, body)
    assert response.status_code == 400
    assert set(response.json()) == {"expires_at"}


def test_the_api_refuses_to_let_the_requester_approve_their_own_waiver(team, max_manager):
    waiver = ask(team.manager, item=team.unowned_item)
    response = api_for(team.manager).post(f"{URL}{waiver.pk}/approve/")
    assert response.status_code == 403
    assert "separation of duties" in response.json()["detail"]
    assert api_for(team.contributor).post(f"{URL}{waiver.pk}/approve/").status_code == 403
    assert api_for(team.outsider).post(f"{URL}{waiver.pk}/approve/").status_code == 404
    response = api_for(max_manager).post(f"{URL}{waiver.pk}/approve/")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["approved_by"]) == ("active", "max")
    assert api_for(max_manager).post(f"{URL}{waiver.pk}/approve/").status_code == 400


def test_the_api_revokes_a_waiver(team):
    waiver = ask(team.contributor, item=team.owned_item)
    assert api_for(team.auditor).post(f"{URL}{waiver.pk}/revoke/").status_code == 403
    response = api_for(team.contributor).post(f"{URL}{waiver.pk}/revoke/", {"reason": "fixed"})
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    assert waiver.history.latest("history_id").history_change_reason == "Waiver revoked: fixed"


def test_the_api_list_runs_a_constant_number_of_queries(team, max_manager, django_assert_num_queries):
    approved(team, max_manager, item=team.unowned_item)
    client = api_for(team.auditor)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(URL).json()["results"]) == 1
    for _ in range(5):
        approved(team, max_manager, item=ItemFactory(section=team.section))
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(client.get(URL).json()["results"]) == 6


# --- the admin --------------------------------------------------------------------------------------------

# The project's admin URLs are fixed when cairn.urls is first loaded, which another test module may do before
# this one registers WaiverAdmin; the admin tests run on this URLconf, built after the registration.
urlpatterns = [path("admin/", admin.site.urls), *cairn.urls.urlpatterns]
admin_urls = pytest.mark.urls(__name__)


def admin_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


CHANGELIST = "admin:governance_waiver_changelist"


@admin_urls
def test_the_admin_changelist_shows_only_the_users_programs(team):
    ask(team.manager, item=team.unowned_item)
    ask(team.outsider, item=team.foreign_item)
    response = admin_for(team.auditor).get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert [w.item for w in response.context["cl"].result_list] == [team.unowned_item]
    assert "Pending approval" in response.content.decode()
    response = admin_for(team.outsider).get(reverse(CHANGELIST))
    assert [w.item for w in response.context["cl"].result_list] == [team.foreign_item]


@admin_urls
def test_the_admin_changelist_runs_a_constant_number_of_queries(team, max_manager, django_assert_num_queries):
    approved(team, max_manager, item=team.unowned_item)
    client = admin_for(team.manager)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse(CHANGELIST))
    for _ in range(5):
        approved(team, max_manager, item=ItemFactory(section=team.section))
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(client.get(reverse(CHANGELIST)).context["cl"].result_list) == 6


def approve_in_admin(user: Any, *waivers: Waiver) -> Any:
    data = {"action": "approve_selected", ACTION_CHECKBOX_NAME: [w.pk for w in waivers]}
    return admin_for(user).post(reverse(CHANGELIST), data, follow=True)


@admin_urls
def test_the_admin_approve_action_refuses_the_requesters_own_waivers(team):
    own = ask(team.manager, item=team.unowned_item)
    others = ask(team.contributor, item=team.owned_item)
    response = approve_in_admin(team.manager, own, others)
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert "1 waiver(s) approved." in texts
    assert any("Not approved" in text and "separation of duties" in text for text in texts)
    own.refresh_from_db()
    others.refresh_from_db()
    assert (own.approved_by, others.approved_by) == (None, team.manager)


@admin_urls
def test_the_admin_offers_no_approve_action_to_contributors(team):
    waiver = ask(team.manager, item=team.unowned_item)
    response = admin_for(team.contributor).get(reverse(CHANGELIST))
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "approve_selected" not in actions
    assert "revoke_selected" in actions
    assert "delete_selected" not in actions
    approve_in_admin(team.contributor, waiver)
    waiver.refresh_from_db()
    assert waiver.approved_by is None


@admin_urls
def test_the_admin_revoke_action_revokes_a_managers_selection(team):
    waiver = ask(team.contributor, item=team.owned_item)
    data = {"action": "revoke_selected", ACTION_CHECKBOX_NAME: [waiver.pk]}
    admin_for(team.manager).post(reverse(CHANGELIST), data)
    waiver.refresh_from_db()
    assert waiver.revoked_at is not None


def add_form(user: Any, **fields: Any) -> Any:
    later = in_days(30)
    data = {
        "type": "risk_accepted",
        "reason": "Vendor fix due next quarter",
        "expires_at_0": later.date().isoformat(),
        "expires_at_1": later.time().strftime("%H:%M:%S"),
        **fields,
    }
    return admin_for(user).post(reverse("admin:governance_waiver_add"), data)


@admin_urls
def test_a_manager_requests_a_waiver_in_the_admin(team):
    response = add_form(team.manager, item=team.unowned_item.pk)
    assert response.status_code == 302, response.context["adminform"].form.errors
    waiver = Waiver.objects.get()
    assert (waiver.item, waiver.requested_by, waiver.program) == (
        team.unowned_item,
        team.manager,
        team.program,
    )
    assert waiver.history.get().history_user == team.manager


@admin_urls
def test_the_admin_offers_contributors_only_the_items_they_own(team):
    response = admin_for(team.contributor).get(reverse("admin:governance_waiver_add"))
    assert list(response.context["adminform"].form.fields["item"].queryset) == [team.owned_item]
    response = add_form(team.contributor, item=team.unowned_item.pk)
    assert response.status_code == 200
    assert "item" in response.context["adminform"].form.errors
    assert not Waiver.objects.exists()


@admin_urls
def test_the_admin_shows_refusals_next_to_their_fields(team):
    ask(team.manager, item=team.unowned_item)
    response = add_form(team.manager, item=team.unowned_item.pk, expires_at_0="2001-01-01")
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"item", "expires_at"}
    assert Waiver.objects.count() == 1


@admin_urls
def test_the_admin_does_not_let_executives_or_the_outsider_request_on_alpha(team):
    assert (
        admin_for(team.executive).get(reverse("admin:governance_waiver_add")).status_code == 302
    )  # not staff
    response = add_form(team.outsider, item=team.owned_item.pk)
    assert "item" in response.context["adminform"].form.errors
    assert not Waiver.objects.exists()


@admin_urls
def test_the_admin_shows_a_waiver_read_only_and_never_deletes_it(team):
    waiver = ask(team.contributor, item=team.owned_item)
    client = admin_for(team.manager)
    page = client.get(reverse("admin:governance_waiver_change", args=[waiver.pk]))
    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields) == []
    assert client.post(reverse("admin:governance_waiver_delete", args=[waiver.pk])).status_code == 403
    assert Waiver.objects.filter(pk=waiver.pk).exists()


@admin_urls
def test_the_admin_history_shows_the_approver_and_hides_other_programs(team, max_manager):
    waiver = approved(team, max_manager, item=team.unowned_item)
    history = reverse("admin:governance_waiver_history", args=[waiver.pk])
    page = admin_for(team.auditor).get(history)
    assert page.status_code == 200
    assert "max" in page.content.decode()
    assert admin_for(team.outsider).get(history).status_code == 404
    version = waiver.history.earliest("history_id").history_id
    revert = reverse("admin:governance_waiver_simple_history", args=[waiver.pk, version])
    assert admin_for(team.manager).post(revert, {}).status_code == 403
    waiver.refresh_from_db()
    assert waiver.approved_by == max_manager
