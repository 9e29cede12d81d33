"""Who may read and change programs and checklist items through the REST API.

Every cell of the persona × action matrix is asserted against the tables below. The team fixture gives program
"alpha" one member per role; the outsider manages "beta" only and must not learn that alpha exists.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from roadmap.models import ChecklistItem, Program, ProgramMembership, Role
from roadmap.services import membership_save

PERSONAS = ["manager", "contributor", "executive", "auditor", "outsider", "anonymous"]
MEMBERS = ["manager", "contributor", "executive", "auditor"]

# Anonymous calls answer 401 or 403 depending on the first authentication class; both mean "sign in first".
DENIED = "denied"
# Lists: "listed" when alpha's objects are in the list, "absent" when they are not (the call itself succeeds).
LISTED, ABSENT = "listed", "absent"

# (persona, action) -> expected outcome for program "alpha" at /api/v1/programs/.
# update = PATCH {"subtitle": ...}.
PROGRAM_API: dict[tuple[str, str], Any] = {
    ("manager", "list"): LISTED, ("manager", "retrieve"): 200, ("manager", "update"): 200,
    ("contributor", "list"): LISTED, ("contributor", "retrieve"): 200, ("contributor", "update"): 403,
    ("executive", "list"): LISTED, ("executive", "retrieve"): 200, ("executive", "update"): 403,
    ("auditor", "list"): LISTED, ("auditor", "retrieve"): 200, ("auditor", "update"): 403,
    ("outsider", "list"): ABSENT, ("outsider", "retrieve"): 404, ("outsider", "update"): 404,
    ("anonymous", "list"): DENIED, ("anonymous", "retrieve"): DENIED, ("anonymous", "update"): DENIED,
}  # fmt: skip

# (persona, action) -> expected outcome for team.owned_item (owned by the contributor) at /api/v1/items/.
# update = PATCH {"status": "in_progress"}; delete = DELETE, which the API does not offer at all.
ITEM_API: dict[tuple[str, str], Any] = {
    ("manager", "list"): LISTED, ("manager", "retrieve"): 200, ("manager", "update"): 200,
    ("manager", "delete"): 405,
    ("contributor", "list"): LISTED, ("contributor", "retrieve"): 200, ("contributor", "update"): 200,
    ("contributor", "delete"): 405,
    ("executive", "list"): LISTED, ("executive", "retrieve"): 200, ("executive", "update"): 403,
    ("executive", "delete"): 405,
    ("auditor", "list"): LISTED, ("auditor", "retrieve"): 200, ("auditor", "update"): 403,
    ("auditor", "delete"): 405,
    ("outsider", "list"): ABSENT, ("outsider", "retrieve"): 404, ("outsider", "update"): 404,
    ("outsider", "delete"): 405,
    ("anonymous", "list"): DENIED, ("anonymous", "retrieve"): DENIED, ("anonymous", "update"): DENIED,
    ("anonymous", "delete"): DENIED,
}  # fmt: skip


def client_for(team: Any, persona: str) -> APIClient:
    client = APIClient()
    if persona != "anonymous":
        client.force_login(team.user(persona))
    return client


def assert_status(response: Any, expected: Any) -> None:
    if expected == DENIED:
        assert response.status_code in (401, 403), response.content
    else:
        assert response.status_code == expected, response.content


def results(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    return body["results"] if isinstance(body, dict) else body


def matrix(table: dict[tuple[str, str], Any]) -> Any:
    return pytest.mark.parametrize(("persona", "action"), list(table), ids=[f"{p}-{a}" for p, a in table])


def test_the_tables_cover_every_persona_and_action() -> None:
    assert {p for p, _ in PROGRAM_API} == set(PERSONAS) == {p for p, _ in ITEM_API}
    assert len(PROGRAM_API) == len(PERSONAS) * 3
    assert len(ITEM_API) == len(PERSONAS) * 4


@matrix(PROGRAM_API)
def test_it_scopes_program_endpoints_by_membership_and_role(team: Any, persona: str, action: str) -> None:
    expected = PROGRAM_API[(persona, action)]
    client = client_for(team, persona)
    url = f"/api/v1/programs/{team.program.key}/"

    if action == "list":
        response = client.get("/api/v1/programs/")
        assert_status(response, 200 if expected != DENIED else DENIED)
        if expected != DENIED:
            keys = {row["key"] for row in results(response)}
            assert ("alpha" in keys) is (expected == LISTED)
            assert ("beta" in keys) is (persona == "outsider")
    elif action == "retrieve":
        response = client.get(url)
        assert_status(response, expected)
        if expected == 200:
            assert response.json()["key"] == "alpha"
        else:
            assert b"Alpha" not in response.content
    else:
        response = client.patch(url, {"subtitle": f"Changed by {persona}"}, format="json")
        assert_status(response, expected)
        program = Program.objects.get(pk=team.program.pk)
        if expected == 200:
            assert program.subtitle == f"Changed by {persona}"
            assert program.history.first().history_user == team.user(persona)
        else:
            assert program.subtitle == team.program.subtitle
            assert program.history.count() == 1  # only the creation


@matrix(ITEM_API)
def test_it_scopes_item_endpoints_by_membership_role_and_ownership(
    team: Any, persona: str, action: str
) -> None:
    expected = ITEM_API[(persona, action)]
    client = client_for(team, persona)
    item = team.owned_item
    url = f"/api/v1/items/{item.pk}/"

    if action == "list":
        response = client.get("/api/v1/items/")
        assert_status(response, 200 if expected != DENIED else DENIED)
        if expected != DENIED:
            ids = {row["id"] for row in results(response)}
            alpha = {team.owned_item.pk, team.unowned_item.pk}
            assert (alpha <= ids) is (expected == LISTED)
            assert not (alpha & ids) or expected == LISTED
            assert (team.foreign_item.pk in ids) is (persona == "outsider")
    elif action == "retrieve":
        response = client.get(url)
        assert_status(response, expected)
        if expected == 200:
            assert response.json()["title"] == item.title
        else:
            assert item.title.encode() not in response.content
    elif action == "update":
        response = client.patch(url, {"status": "in_progress"}, format="json")
        assert_status(response, expected)
        item.refresh_from_db()
        if expected == 200:
            assert item.status == ChecklistItem.Status.IN_PROGRESS
            assert item.history.first().history_user == team.user(persona)
        else:
            assert item.status == ChecklistItem.Status.NOT_STARTED
            assert item.history.count() == 1
    else:
        response = client.delete(url)
        assert_status(response, expected)
        assert ChecklistItem.objects.filter(pk=item.pk).exists()


@pytest.mark.parametrize("persona", MEMBERS)
def test_it_hides_another_programs_item_from_every_member(team: Any, persona: str) -> None:
    client = client_for(team, persona)
    foreign = team.foreign_item

    assert client.get(f"/api/v1/items/{foreign.pk}/").status_code == 404
    assert client.get("/api/v1/programs/beta/").status_code == 404
    assert results(client.get("/api/v1/items/", {"program": "beta"})) == []
    assert results(client.get("/api/v1/programs/", {"search": "beta"})) == []
    assert client.patch(f"/api/v1/items/{foreign.pk}/", {"status": "done"}, format="json").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == ChecklistItem.Status.NOT_STARTED


@pytest.mark.parametrize("persona", MEMBERS)
def test_it_lists_every_item_of_the_program_to_every_member(team: Any, persona: str) -> None:
    response = client_for(team, persona).get("/api/v1/items/", {"program": "alpha"})

    assert response.status_code == 200
    assert {row["id"] for row in results(response)} == {team.owned_item.pk, team.unowned_item.pk}


def test_it_lets_a_manager_change_any_field_of_an_item_and_records_who(team: Any) -> None:
    item = team.unowned_item
    response = client_for(team, "manager").patch(
        f"/api/v1/items/{item.pk}/", {"title": "Renamed", "owner": "carla", "status": "done"}, format="json"
    )

    assert response.status_code == 200, response.content
    item.refresh_from_db()
    assert (item.title, item.owner, item.status) == ("Renamed", team.contributor, ChecklistItem.Status.DONE)
    assert item.attested_by == team.manager
    assert item.history.first().history_user == team.manager


def test_it_lets_a_contributor_block_their_own_item_with_a_reason(team: Any) -> None:
    item = team.owned_item
    response = client_for(team, "contributor").patch(
        f"/api/v1/items/{item.pk}/",
        {"status": "blocked", "status_reason": "Waiting for vendor"},
        format="json",
    )

    assert response.status_code == 200, response.content
    item.refresh_from_db()
    assert (item.status, item.status_reason) == (ChecklistItem.Status.BLOCKED, "Waiting for vendor")
    assert item.history.first().history_user == team.contributor


@pytest.mark.parametrize(
    ("item_name", "payload"),
    [
        ("owned_item", {"owner": "maria"}),
        ("owned_item", {"title": "Quietly renamed"}),
        ("owned_item", {"status": "done", "title": "Quietly renamed"}),
        ("unowned_item", {"status": "in_progress"}),
        ("unowned_item", {"owner": "carla"}),
    ],
    ids=["own-owner", "own-title", "own-status-and-title", "unowned-status", "unowned-take-ownership"],
)
def test_it_refuses_a_contributor_anything_but_the_status_of_their_own_items(
    team: Any, item_name: str, payload: dict[str, str]
) -> None:
    item = getattr(team, item_name)
    before = (item.title, item.owner_id, item.status)

    response = client_for(team, "contributor").patch(f"/api/v1/items/{item.pk}/", payload, format="json")

    assert response.status_code == 403, response.content
    item.refresh_from_db()
    assert (item.title, item.owner_id, item.status) == before
    assert item.history.count() == 1


@pytest.mark.parametrize("role", ["contributor", "executive", "auditor"])
@pytest.mark.parametrize("endpoint", ["phases", "sections"])
def test_it_refuses_moving_a_programs_phase_or_section_to_another_program_the_user_manages(
    team: Any, role: str, endpoint: str
) -> None:
    """Managing beta gives no say over alpha: a non-manager of alpha cannot take alpha's rows away with them."""
    user = team.user(role)
    membership_save(
        membership=ProgramMembership(user=user, program=team.other_program, role=Role.MANAGER), by=None
    )
    obj = team.phase if endpoint == "phases" else team.section
    # A section also leaves its phase behind, or the model's clean() would refuse the cross-program phase.
    payload = {"program": "beta"} if endpoint == "phases" else {"program": "beta", "phase": None}

    response = client_for(team, role).patch(f"/api/v1/{endpoint}/{obj.pk}/", payload, format="json")

    assert response.status_code == 403, response.content
    obj.refresh_from_db()
    assert obj.program_id == team.program.pk
