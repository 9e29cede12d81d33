"""Changes to controlled documents. The strategy import and the admin both come through here or the importer."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from cairn.lib.dates import add_months, parse_document_date
from cairn.lib.history import save_with_history
from governance.models import Acknowledgement, Approval, ControlledDocument, DocumentVersion, Review
from roadmap import access

if TYPE_CHECKING:
    from roadmap.models import AnyUser

# Text as written → the date Cairn reads from it, kept in step whenever the text changes.
DATE_COLUMNS = {
    "last_updated": "last_updated_on",
    "review_date": "last_reviewed_on",
    "next_review": "next_review_due",
}


@transaction.atomic
def controlled_document_update(
    *, document: ControlledDocument, by: AnyUser, data: Mapping[str, Any]
) -> ControlledDocument:
    """Change the control fields of a document; the dates are re-read from the text written."""
    if not access.can_manage_program(by, document.program_id):
        raise PermissionDenied("Only the program's managers may change its documents.")
    for name, value in data.items():
        setattr(document, name, value)
    for text_column, date_column in DATE_COLUMNS.items():
        if text_column in data:
            setattr(document, date_column, parse_document_date(getattr(document, text_column)))
    save_with_history(document, by=by, reason="Document control edited")
    return document


# --- the version workflow: draft → in_review → approved → effective → superseded | obsolete ------------------


def _may_decide(user: AnyUser, document: ControlledDocument) -> bool:
    """The document's approver or a manager of its program."""
    if not user.is_authenticated:
        return False
    return user.pk == document.approver_user_id or access.can_manage_program(user, document.program_id)


def _locked(version: DocumentVersion) -> DocumentVersion:
    return DocumentVersion.objects.select_for_update().select_related("document").get(pk=version.pk)


def _require_state(version: DocumentVersion, states: Iterable[str], action: str) -> None:
    states = list(states)
    if version.state not in states:
        expected = " or ".join(DocumentVersion.State(state).label.lower() for state in states)
        raise ValidationError(
            {"state": f"Version {version.label or version.pk} is {version.get_state_display().lower()}; "
             f"only a {expected} version can be {action}."}
        )  # fmt: skip


def _require_manager(user: AnyUser, document: ControlledDocument, action: str) -> None:
    if not access.can_manage_program(user, document.program_id):
        raise PermissionDenied(f"Only the program's managers may {action}.")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@transaction.atomic
def version_create_draft(
    *, document: ControlledDocument, by: AnyUser, source_text: str, label: str, change_summary: str = ""
) -> DocumentVersion:
    _require_manager(by, document, "write new versions")
    version = DocumentVersion(
        document=document,
        label=label,
        source_text=source_text,
        sha256=text_sha256(source_text),
        change_summary=change_summary,
        created_by=by,
    )
    save_with_history(version, by=by, reason="Draft written")
    return version


@transaction.atomic
def version_update_text(*, version: DocumentVersion, by: AnyUser, source_text: str) -> DocumentVersion:
    """Only a draft's text can change: what was reviewed or approved stays exactly as it was."""
    version = _locked(version)
    _require_manager(by, version.document, "edit versions")
    if version.state != DocumentVersion.State.DRAFT:
        raise ValidationError(
            {"source_text": f"Version {version.label} is {version.get_state_display().lower()}; its text can no "
             "longer change. Write a new draft instead."}
        )  # fmt: skip
    version.source_text, version.sha256 = source_text, text_sha256(source_text)
    save_with_history(version, by=by, reason="Draft edited")
    return version


@transaction.atomic
def version_submit(*, version: DocumentVersion, by: AnyUser, due_on: date | None = None) -> DocumentVersion:
    """Send a draft for review; a pre-issue review is opened for it."""
    version = _locked(version)
    if not (access.can_manage_program(by, version.document.program_id) or by.pk == version.created_by_id):
        raise PermissionDenied("Only the author or a manager may submit a version for review.")
    _require_state(version, [DocumentVersion.State.DRAFT], "submitted for review")
    version.state = DocumentVersion.State.IN_REVIEW
    save_with_history(version, by=by, reason="Submitted for review")
    Review.objects.create(
        document=version.document,
        version=version,
        kind=Review.Kind.PRE_ISSUE,
        due_on=due_on or timezone.localdate() + timedelta(days=14),
    )
    return version


@transaction.atomic
def version_decide(*, version: DocumentVersion, by: AnyUser, decision: str, comment: str = "") -> Approval:
    """Record an approval decision (append-only) on a version in review, signed with its exact text's digest.

    Approved: the version becomes approved. Changes requested or rejected: it goes back to draft.
    The version's author can never decide on it; only the document's approver or a manager can.
    """
    version = _locked(version)
    document = version.document
    if decision not in Approval.Decision.values:
        raise ValidationError({"decision": f"Expected one of {', '.join(Approval.Decision.values)}."})
    if version.created_by_id is not None and by.pk == version.created_by_id:
        raise PermissionDenied("The author of a version cannot approve or reject it.")
    if not _may_decide(by, document):
        raise PermissionDenied("Only the document's approver or a program manager may decide on a version.")
    _require_state(version, [DocumentVersion.State.IN_REVIEW], "decided on")
    digest = text_sha256(version.source_text)
    if digest != version.sha256:  # the stored digest is what reviewers saw; the text must still match it
        raise ValidationError(
            {"source_text": "The version's text no longer matches its digest; nothing was signed."}
        )
    approval = Approval.objects.create(
        version=version, decision=decision, signer=by, content_sha256=digest, comment=comment
    )
    approved = decision == Approval.Decision.APPROVED
    version.state = DocumentVersion.State.APPROVED if approved else DocumentVersion.State.DRAFT
    save_with_history(version, by=by, reason=f"{approval.get_decision_display()}: {comment}".strip(": "))
    if approved:
        Review.objects.filter(version=version, kind=Review.Kind.PRE_ISSUE, state=Review.State.OPEN).update(
            state=Review.State.DONE,
            reviewer=by,
            completed_at=timezone.now(),
            outcome=Review.Outcome.NO_CHANGE,
        )
    return approval


@transaction.atomic
def version_publish(
    *, version: DocumentVersion, by: AnyUser, effective_on: date | None = None
) -> DocumentVersion:
    """Put an approved version in force: the previous effective one is superseded, acknowledgements requested."""
    version = _locked(version)
    document = version.document
    _require_manager(by, document, "publish versions")
    _require_state(version, [DocumentVersion.State.APPROVED], "published")
    approved = version.approvals.filter(decision=Approval.Decision.APPROVED).order_by("-created_at").first()
    if approved is None or approved.content_sha256 != text_sha256(version.source_text):
        raise ValidationError({"state": "Only the exact text that was approved can be published."})
    effective_on = effective_on or timezone.localdate()
    for previous in DocumentVersion.objects.select_for_update().filter(
        document=document, state=DocumentVersion.State.EFFECTIVE
    ):
        previous.state = DocumentVersion.State.SUPERSEDED
        save_with_history(previous, by=by, reason=f"Superseded by {version.label}")
    version.state, version.effective_on = DocumentVersion.State.EFFECTIVE, effective_on
    save_with_history(version, by=by, reason="Published")
    document.version_label = version.label
    document.last_reviewed_on = effective_on
    document.next_review_due = add_months(effective_on, document.review_cadence_months)
    save_with_history(document, by=by, reason=f"Version {version.label} in force")
    _request_acknowledgements(version)
    return version


def _request_acknowledgements(version: DocumentVersion) -> int:
    document = version.document
    users = set(document.distribution_users.filter(is_active=True).values_list("pk", flat=True))
    users |= set(
        get_user_model()
        .objects.filter(groups__in=document.distribution_groups.all(), is_active=True)
        .values_list("pk", flat=True)
    )
    Acknowledgement.objects.bulk_create(
        [Acknowledgement(version=version, user_id=user_id) for user_id in sorted(users)],
        ignore_conflicts=True,
    )
    return len(users)


@transaction.atomic
def version_obsolete(*, version: DocumentVersion, by: AnyUser) -> DocumentVersion:
    """Withdraw a version from use; it stays on record."""
    version = _locked(version)
    _require_manager(by, version.document, "withdraw versions")
    _require_state(
        version,
        [DocumentVersion.State.APPROVED, DocumentVersion.State.EFFECTIVE, DocumentVersion.State.SUPERSEDED],
        "marked obsolete",
    )
    version.state = DocumentVersion.State.OBSOLETE
    save_with_history(version, by=by, reason="Marked obsolete")
    return version


@transaction.atomic
def acknowledgement_confirm(*, acknowledgement: Acknowledgement, by: AnyUser) -> Acknowledgement:
    if acknowledgement.user_id != by.pk:
        raise PermissionDenied("Only the person asked can acknowledge a document.")
    Acknowledgement.objects.filter(pk=acknowledgement.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now()
    )
    acknowledgement.refresh_from_db()
    return acknowledgement


@transaction.atomic
def review_open(*, document: ControlledDocument, by: AnyUser, due_on: date, comment: str = "") -> Review:
    """An ad hoc review, opened by a manager or the document's approver."""
    if not _may_decide(by, document):
        raise PermissionDenied("Only the document's approver or a program manager may open a review.")
    review = Review(document=document, kind=Review.Kind.AD_HOC, due_on=due_on, comment=comment)
    save_with_history(review, by=by, reason="Review opened")
    return review


@transaction.atomic
def review_complete(*, review: Review, by: AnyUser, outcome: str, comment: str = "") -> Review:
    """Close a review. No change: the document counts as reviewed today. Minor or major: a new draft opens."""
    review = Review.objects.select_for_update().select_related("document").get(pk=review.pk)
    document = review.document
    if not _may_decide(by, document):
        raise PermissionDenied("Only the document's approver or a program manager may complete a review.")
    if review.state != Review.State.OPEN:
        raise ValidationError({"state": f"This review is {review.get_state_display().lower()} already."})
    if outcome not in Review.Outcome.values:
        raise ValidationError({"outcome": f"Expected one of {', '.join(Review.Outcome.values)}."})
    review.state, review.outcome, review.reviewer = Review.State.DONE, outcome, by
    review.comment, review.completed_at = comment or review.comment, timezone.now()
    save_with_history(review, by=by, reason=f"Review completed: {outcome}")
    today = timezone.localdate()
    if outcome == Review.Outcome.NO_CHANGE:
        document.last_reviewed_on = today
        document.next_review_due = add_months(today, document.review_cadence_months)
        save_with_history(document, by=by, reason="Reviewed, no change")
        return review
    current = (
        document.versions.filter(state=DocumentVersion.State.EFFECTIVE).first() or document.versions.first()
    )
    if current is not None:
        draft = DocumentVersion(
            document=document,
            label=next_label(current.label, major=outcome == Review.Outcome.MAJOR),
            source_text=current.source_text,
            sha256=current.sha256,
            change_summary=f"{review.get_outcome_display()} after the {review.get_kind_display().lower()} review",
            created_by=by,
        )
        save_with_history(draft, by=by, reason="Draft opened by a review")
    return review


def next_label(label: str, *, major: bool) -> str:
    """1.0 → 1.1 (minor) or 2.0 (major); a label Cairn cannot read gets '-rev'."""
    parts = label.split(".")
    if len(parts) >= 1 and all(part.isdigit() for part in parts[:2]) and parts[0]:
        first = int(parts[0])
        second = int(parts[1]) if len(parts) > 1 else 0
        return f"{first + 1}.0" if major else f"{first}.{second + 1}"
    return f"{label}-rev" if label else "1.0"
