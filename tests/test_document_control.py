"""The document version workflow: every allowed and every refused transition, through services, API and admin.

Program alpha (team fixture): maria manages it, eve is an executive, aude an auditor; oscar manages beta only.
A second manager, mona, writes drafts so maria (not the author) may approve them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from governance import services
from governance.models import Acknowledgement, Approval, ControlledDocument, DocumentVersion, Review
from strategy.services import strategy_import
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db
STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)
State = DocumentVersion.State


@pytest.fixture
def document(team: Any) -> ControlledDocument:
    return ControlledDocument.objects.create(
        program=team.program,
        doc_type="policy",
        title="Access policy",
        version_label="1.0",
        review_cadence_months=12,
    )


@pytest.fixture
def author(team: Any) -> Any:
    return member(team.program, "manager", "mona")


@pytest.fixture
def draft(document: ControlledDocument, author: Any) -> DocumentVersion:
    return services.version_create_draft(
        document=document, by=author, source_text="# Access\n\nv2\n", label="2.0"
    )


def in_review(draft: DocumentVersion, author: Any) -> DocumentVersion:
    return services.version_submit(version=draft, by=author)


def approved(draft: DocumentVersion, author: Any, approver: Any) -> DocumentVersion:
    services.version_decide(version=in_review(draft, author), by=approver, decision="approved")
    draft.refresh_from_db()
    return draft


# --- allowed transitions -------------------------------------------------------------------------------------


def test_a_draft_goes_through_review_approval_and_publication(team, document, author, draft):
    assert in_review(draft, author).state == State.IN_REVIEW
    assert Review.objects.get(version=draft).kind == "pre_issue"

    approval = services.version_decide(version=draft, by=team.manager, decision="approved", comment="Fine")
    draft.refresh_from_db()
    assert draft.state == State.APPROVED
    assert approval.content_sha256 == draft.sha256
    assert Review.objects.get(version=draft).state == "done"

    services.version_publish(version=draft, by=team.manager, effective_on=date(2026, 11, 28))
    draft.refresh_from_db()
    document.refresh_from_db()
    assert (draft.state, draft.effective_on) == (State.EFFECTIVE, date(2026, 11, 28))
    assert (document.version_label, document.last_reviewed_on, document.next_review_due) == (
        "2.0",
        date(2026, 11, 28),
        date(2027, 11, 28),
    )


def test_publishing_supersedes_the_version_in_force(team, document, author, draft):
    services.version_publish(version=approved(draft, author, team.manager), by=team.manager)
    second = services.version_create_draft(document=document, by=author, source_text="v3", label="3.0")
    services.version_publish(version=approved(second, author, team.manager), by=team.manager)
    draft.refresh_from_db()
    assert draft.state == State.SUPERSEDED
    assert list(document.versions.filter(state=State.EFFECTIVE)) == [second]


def test_changes_requested_send_the_version_back_to_draft_and_are_recorded(team, author, draft):
    services.version_decide(
        version=in_review(draft, author), by=team.manager, decision="changes_requested", comment="Typo"
    )
    draft.refresh_from_db()
    assert draft.state == State.DRAFT
    assert list(Approval.objects.values_list("decision", "comment")) == [("changes_requested", "Typo")]
    services.version_update_text(version=draft, by=author, source_text="fixed")  # a draft may change again


def test_the_documents_approver_may_decide_without_being_a_manager(team, document, author, draft):
    approver = UserFactory(username="cfo")
    document.approver_user = approver
    document.save()
    services.version_decide(version=in_review(draft, author), by=approver, decision="approved")
    draft.refresh_from_db()
    assert draft.state == State.APPROVED


def test_obsolete_withdraws_an_effective_version(team, author, draft):
    services.version_publish(version=approved(draft, author, team.manager), by=team.manager)
    services.version_obsolete(version=draft, by=team.manager)
    draft.refresh_from_db()
    assert draft.state == State.OBSOLETE


def test_every_state_change_is_in_the_history_with_who_and_from_to(team, author, draft):
    services.version_publish(version=approved(draft, author, team.manager), by=team.manager)
    records = list(draft.history.order_by("history_date").values_list("state", "history_user__username"))
    assert records == [
        ("draft", "mona"),
        ("in_review", "mona"),
        ("approved", "maria"),
        ("effective", "maria"),
    ]


# --- refused transitions -------------------------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_version(author, draft):
    in_review(draft, author)
    with pytest.raises(PermissionDenied, match="author"):
        services.version_decide(version=draft, by=author, decision="approved")
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW
    assert not Approval.objects.exists()


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor", "outsider"])
def test_only_the_approver_or_a_manager_decides(team, author, draft, persona):
    in_review(draft, author)
    with pytest.raises(PermissionDenied):
        services.version_decide(version=draft, by=team.user(persona), decision="approved")


def test_an_unapproved_version_cannot_be_published(team, author, draft):
    with pytest.raises(ValidationError, match="only a approved version"):
        services.version_publish(version=draft, by=team.manager)
    in_review(draft, author)
    with pytest.raises(ValidationError):
        services.version_publish(version=draft, by=team.manager)
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_the_text_of_a_version_that_left_draft_cannot_change(team, author, draft):
    in_review(draft, author)
    with pytest.raises(ValidationError, match="can no longer change"):
        services.version_update_text(version=draft, by=author, source_text="sneaky")
    services.version_decide(version=draft, by=team.manager, decision="approved")
    with pytest.raises(ValidationError, match="can no longer change"):
        services.version_update_text(version=draft, by=team.manager, source_text="sneaky")
    draft.refresh_from_db()
    assert draft.source_text == "# Access\n\nv2\n"


def test_a_text_changed_behind_the_services_back_cannot_be_published(team, author, draft):
    approved(draft, author, team.manager)
    DocumentVersion.objects.filter(pk=draft.pk).update(source_text="tampered")
    with pytest.raises(ValidationError, match="exact text that was approved"):
        services.version_publish(version=draft, by=team.manager)


def test_the_database_refuses_two_effective_versions(document, author, draft):
    DocumentVersion.objects.filter(pk=draft.pk).update(state=State.EFFECTIVE)
    other = services.version_create_draft(document=document, by=author, source_text="x", label="9")
    with pytest.raises(IntegrityError), transaction.atomic():
        DocumentVersion.objects.filter(pk=other.pk).update(state=State.EFFECTIVE)


def test_a_draft_cannot_be_submitted_twice_or_marked_obsolete(team, author, draft):
    in_review(draft, author)
    with pytest.raises(ValidationError):
        services.version_submit(version=draft, by=author)
    with pytest.raises(ValidationError):
        services.version_obsolete(version=draft, by=team.manager)


# --- reviews and acknowledgements ----------------------------------------------------------------------------


def test_a_review_without_change_moves_the_next_review_by_the_cadence(team, document):
    review = services.review_open(document=document, by=team.manager, due_on=date(2026, 12, 1))
    services.review_complete(review=review, by=team.manager, outcome="no_change")
    document.refresh_from_db()
    assert document.next_review_due is not None
    assert (document.next_review_due - document.last_reviewed_on).days in (365, 366)
    with pytest.raises(ValidationError, match="done already"):
        services.review_complete(review=review, by=team.manager, outcome="no_change")


@pytest.mark.parametrize(("outcome", "label"), [("minor", "2.1"), ("major", "3.0")])
def test_a_revision_opens_a_new_draft_from_the_text_in_force(team, author, draft, outcome, label):
    services.version_publish(version=approved(draft, author, team.manager), by=team.manager)
    review = services.review_open(document=draft.document, by=team.manager, due_on=date(2026, 12, 1))
    services.review_complete(review=review, by=team.manager, outcome=outcome)
    new = draft.document.versions.get(state=State.DRAFT)
    assert (new.label, new.source_text) == (label, draft.source_text)


def test_publishing_asks_the_distribution_to_acknowledge(team, document, author, draft):
    readers = Group.objects.create(name="Readers")
    reader = UserFactory(username="reader")
    reader.groups.add(readers)
    document.distribution_users.add(team.executive)
    document.distribution_groups.add(readers)
    services.version_publish(version=approved(draft, author, team.manager), by=team.manager)
    asked = set(Acknowledgement.objects.filter(version=draft).values_list("user__username", flat=True))
    assert asked == {"eve", "reader"}

    acknowledgement = Acknowledgement.objects.get(user=reader)
    with pytest.raises(PermissionDenied):
        services.acknowledgement_confirm(acknowledgement=acknowledgement, by=team.executive)
    services.acknowledgement_confirm(acknowledgement=acknowledgement, by=reader)
    acknowledgement.refresh_from_db()
    assert acknowledgement.acknowledged_at is not None
    # The reader is no member of alpha, yet sees and acknowledges their own request through the API.
    client = APIClient()
    client.force_authenticate(reader)
    assert [row["user"] for row in client.get("/api/v1/acknowledgements/?mine=true").json()["results"]] == [
        "reader"
    ]


# --- the strategy as a controlled document -------------------------------------------------------------------


def test_an_edited_strategy_reimported_becomes_a_draft_not_the_version_in_force(tmp_path):
    strategy_import(data=STRATEGY.read_bytes(), by=None)
    document = ControlledDocument.objects.get(doc_type="strategy")
    first = document.versions.get()
    assert first.state == State.EFFECTIVE
    edited = STRATEGY.read_text(encoding="utf-8").replace(
        "**Document Version:** 1.0", "**Document Version:** 1.1"
    )
    edited = edited.replace("- **Owner:** Chief Cloud Officer", "- **Owner:** Chief Technology Officer")
    report = strategy_import(data=edited, by=None)
    draft = document.versions.get(state=State.DRAFT)
    assert (draft.label, draft.sha256) == ("1.1", services.text_sha256(edited))
    document.refresh_from_db()
    assert (document.version_label, document.owner) == ("1.0", "Chief Cloud Officer")  # the effective one's
    assert any("new draft" in warning for warning in report.warnings)
    ticked = edited.replace("- [ ] Container orchestration", "- [x] Container orchestration")
    strategy_import(data=ticked, by=None)
    assert document.versions.count() == 2  # progress ticks are not a new version


# --- API and admin -------------------------------------------------------------------------------------------


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_runs_the_workflow_and_refuses_the_author(team, document, author):
    created = api(author).post(
        "/api/v1/document-versions/", {"document": document.pk, "label": "2.0", "source_text": "v2"}
    )
    assert created.status_code == 201
    version = created.json()["id"]
    assert api(author).post(f"/api/v1/document-versions/{version}/submit/").json()["state"] == "in_review"
    refused = api(author).post(f"/api/v1/document-versions/{version}/approve/")
    assert refused.status_code == 403
    assert (
        api(team.manager)
        .post(f"/api/v1/document-versions/{version}/approve/", {"comment": "ok"})
        .json()["state"]
        == "approved"
    )
    assert (
        api(team.manager).patch(f"/api/v1/document-versions/{version}/", {"source_text": "x"}).status_code
        == 400
    )
    published = api(team.manager).post(
        f"/api/v1/document-versions/{version}/publish/", {"effective_on": "2026-11-28"}
    )
    assert published.json()["state"] == "effective"
    approvals = api(team.auditor).get("/api/v1/approvals/").json()["results"]
    assert [(a["decision"], a["signer"]) for a in approvals] == [("approved", "maria")]
    assert api(team.outsider).get(f"/api/v1/document-versions/{version}/").status_code == 404
    assert api(team.outsider).get("/api/v1/documents/").json()["count"] == 0


def test_the_api_reports_the_imported_strategy_overdue_for_review(team):
    strategy_import(data=STRATEGY.read_bytes(), by=None, program_key="alpha")
    rows = api(team.executive).get("/api/v1/documents/?program=alpha").json()["results"]
    strategy = next(row for row in rows if row["doc_type"] == "strategy")
    assert strategy["next_review_due"] == "2025-03-01"
    assert strategy["overdue_days"] > 600


def test_the_admin_refuses_an_author_approving_and_shows_the_history(team, author, draft):
    in_review(draft, author)
    client = Client()
    client.force_login(author)
    changelist = reverse("admin:governance_documentversion_changelist")
    response = client.post(changelist, {"action": "approve", "_selected_action": [draft.pk]}, follow=True)
    assert "cannot approve" in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW
    history = client.get(reverse("admin:governance_documentversion_history", args=[draft.pk]))
    assert history.status_code == 200
    outsider = Client()
    outsider.force_login(team.outsider)
    assert (
        outsider.get(reverse("admin:governance_documentversion_history", args=[draft.pk])).status_code == 404
    )
