"""Document-control reminders and the daily review bookkeeping behind them.

Reminders are idempotent: `ReminderLog` is keyed by (object, kind, offset, recipient) and the daily job selects
every reminder whose `due - offset <= today` that has no log row yet, so a day the worker missed is caught up on
the next run instead of skipped. A log row remembers the date its reminder became due; when that date moves (the
document was reviewed and its next review set, an item was re-dated, a waiver renewed) the reminder is due again
for the new date and the same row is claimed for it.

The Celery task (`governance.tasks.document_control_daily`) and the `send_reminders` command both call these.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, Model, OuterRef, QuerySet, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from governance.models import (
    Acknowledgement,
    ControlledDocument,
    DocumentVersion,
    ReminderLog,
    Review,
    Waiver,
)
from roadmap.models import ChecklistItem, Program, ProgramMembership, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

logger = logging.getLogger(__name__)

QS = TypeVar("QS", bound=QuerySet[Any])

REVIEW_DUE_SOON = "review_due_soon"
REVIEW_OVERDUE = "review_overdue"
REVIEW_ESCALATION = "review_escalation"
ACKNOWLEDGEMENT_OVERDUE = "acknowledgement_overdue"
WAIVER_EXPIRING = "waiver_expiring"
ITEM_PAST_DUE = "item_past_due"

SUBJECT_PREFIX = "[Cairn]"
SUBJECT_MAX_CHARS = 200


@dataclass
class Reminder:
    object_key: str
    kind: str
    offset_days: int
    recipient: AbstractUser
    due_on: date
    subject: str
    body: str

    @property
    def log_key(self) -> tuple[str, str, int, int]:
        return (self.object_key, self.kind, self.offset_days, self.recipient.pk)


# --- what is due -----------------------------------------------------------------------------------------


def reminders_due(*, today: date) -> list[Reminder]:
    """Every reminder due on or before `today` that has not been sent for its due date yet.

    Six queries whatever the number of objects: documents, acknowledgements, waivers, items, the memberships of
    their programs and the sent-log. Recipients are active users with an e-mail address who can see the
    program (members of any role, or superusers); nobody else hears about it.
    """
    documents = list(
        ControlledDocument.objects.due_for_review(
            today + timedelta(days=settings.CAIRN_REVIEW_DUE_SOON_DAYS)
        ).select_related("program", "approver_user")
    )
    acknowledgements = list(
        _live(Acknowledgement.objects.all(), "version__document__program")
        .filter(
            acknowledged_at__isnull=True,
            version__state=DocumentVersion.State.EFFECTIVE,
            requested_at__date__lte=today - timedelta(days=settings.CAIRN_ACKNOWLEDGEMENT_DAYS),
        )
        .select_related("user", "version__document__program")
    )
    waivers = list(
        _live(Waiver.objects.all(), "program")
        .filter(
            approved_at__isnull=False,
            approved_by__isnull=False,
            revoked_at__isnull=True,
            expires_at__date__gt=today,
            expires_at__date__lte=today + timedelta(days=settings.CAIRN_WAIVER_EXPIRY_NOTICE_DAYS),
        )
        .select_related("program", "requested_by", "approved_by", "item", "metric")
    )
    items = list(
        _live(ChecklistItem.objects.active(), "program")
        .filter(owner__isnull=False, due_date__lte=today)
        .exclude(status__in=[ChecklistItem.Status.DONE, ChecklistItem.Status.NOT_APPLICABLE])
        .select_related("program", "owner")
    )

    program_ids = {document.program_id for document in documents}
    program_ids |= {ack.version.document.program_id for ack in acknowledgements}
    program_ids |= {waiver.program_id for waiver in waivers}
    program_ids |= {item.program_id for item in items}
    audience = _Audience(
        ProgramMembership.objects.filter(program_id__in=program_ids)
        .select_related("user")
        .order_by("user_id")
    )

    candidates: list[Reminder] = []
    for document in documents:
        candidates += _document_reminders(document, today=today, audience=audience)
    for ack in acknowledgements:
        candidates += _acknowledgement_reminders(ack, audience=audience)
    for waiver in waivers:
        candidates += _waiver_reminders(waiver, audience=audience)
    for item in items:
        candidates += _item_reminders(item, audience=audience)

    sent_for = _sent_due_dates({reminder.object_key for reminder in candidates})
    due = [reminder for reminder in candidates if sent_for.get(reminder.log_key) != reminder.due_on]
    due.sort(
        key=lambda reminder: (reminder.due_on, reminder.kind, reminder.object_key, reminder.recipient.pk)
    )
    return due


def _live(queryset: QS, program_path: str) -> QS:
    """Leaves out what belongs to closed programs: they open no reviews and send no reminders."""
    return queryset.exclude(**{f"{program_path}__status": Program.Status.CLOSED})


def _sent_due_dates(object_keys: set[str]) -> dict[tuple[str, str, int, int], date]:
    rows = ReminderLog.objects.filter(object_key__in=object_keys).values_list(
        "object_key", "kind", "offset_days", "recipient_id", "due_on"
    )
    return {(key, kind, offset, recipient_id): due_on for key, kind, offset, recipient_id, due_on in rows}


class _Audience:
    """Who may hear about a program: built from one query of the memberships of every program concerned."""

    def __init__(self, memberships: Iterable[ProgramMembership]) -> None:
        self.members: set[tuple[int, int]] = set()
        self.managers: dict[int, list[AbstractUser]] = {}
        for membership in memberships:
            self.members.add((membership.program_id, membership.user_id))
            if membership.role == Role.MANAGER and self.may_receive(membership.user, membership.program_id):
                self.managers.setdefault(membership.program_id, []).append(membership.user)

    def may_receive(self, user: AbstractUser | None, program_id: int) -> bool:
        if user is None or not user.is_active or not user.email:
            return False
        return user.is_superuser or (program_id, user.pk) in self.members

    def eligible(self, users: list[AbstractUser | None], program_id: int) -> list[AbstractUser]:
        """Those of `users` who may receive reminders about the program, each once, in the order given."""
        chosen: dict[int, AbstractUser] = {}
        for user in users:
            if user is not None and user.pk not in chosen and self.may_receive(user, program_id):
                chosen[user.pk] = user
        return list(chosen.values())


# --- one object's reminders ------------------------------------------------------------------------------


def _document_reminders(document: ControlledDocument, *, today: date, audience: _Audience) -> list[Reminder]:
    due = document.next_review_due
    assert due is not None  # selected by next_review_due__lte
    program = document.program
    managers = audience.managers.get(program.pk, [])
    everyone = audience.eligible([*managers, document.approver_user], program.pk)
    soon_days = settings.CAIRN_REVIEW_DUE_SOON_DAYS
    escalation_days = settings.CAIRN_REVIEW_ESCALATION_DAYS
    key = f"document:{document.pk}"
    link = _admin_path(document)
    last = document.last_reviewed_on.isoformat() if document.last_reviewed_on else "never recorded"
    facts = (
        f"Document: {document.title} {document.version_label}".rstrip()
        + f"\nProgram: {program.title}\nNext review due: {due.isoformat()}\nLast reviewed: {last}"
    )
    planned: list[tuple[str, int, date, list[AbstractUser], str, str]] = []
    # Once the review date has passed the overdue reminder says more than "due soon", which is then not sent.
    if today < due:
        planned.append((
            REVIEW_DUE_SOON, -soon_days, due - timedelta(days=soon_days), everyone,
            f"Review due {due.isoformat()}: {document.title} ({program.title})",
            f"The periodic review of this document is due on {due.isoformat()}.",
        ))  # fmt: skip
    if due <= today:
        planned.append((
            REVIEW_OVERDUE, 0, due, everyone,
            f"Review overdue since {due.isoformat()}: {document.title} ({program.title})",
            f"The periodic review of this document was due on {due.isoformat()} and has not been recorded.",
        ))  # fmt: skip
    escalate_on = due + timedelta(days=escalation_days)
    if escalate_on <= today:
        approver = audience.eligible([document.approver_user], program.pk)
        planned.append((
            REVIEW_ESCALATION, escalation_days, escalate_on, approver or managers,
            f"Escalation: review overdue since {due.isoformat()}: {document.title} ({program.title})",
            f"The periodic review of this document was due on {due.isoformat()} and is still not recorded "
            f"{escalation_days} days later.",
        ))  # fmt: skip
    return [
        _reminder(key, kind, offset, user, due_on, subject=subject, lead=lead, facts=facts, link=link)
        for kind, offset, due_on, recipients, subject, lead in planned
        for user in recipients
    ]


def _acknowledgement_reminders(ack: Acknowledgement, *, audience: _Audience) -> list[Reminder]:
    version = ack.version
    document = version.document
    days = settings.CAIRN_ACKNOWLEDGEMENT_DAYS
    requested_on = timezone.localdate(ack.requested_at)
    due_on = requested_on + timedelta(days=days)
    label = f"{document.title} {version.label}".rstrip()
    return [
        _reminder(
            f"acknowledgement:{ack.pk}",
            ACKNOWLEDGEMENT_OVERDUE,
            days,
            user,
            due_on,
            subject=f"Please acknowledge {label} ({document.program.title})",
            lead=f"You were asked on {requested_on.isoformat()} to read and acknowledge this document; "
            f"the acknowledgement was expected within {days} days.",
            facts=f"Document: {label}\nProgram: {document.program.title}\n"
            f"Requested: {requested_on.isoformat()}\nExpected by: {due_on.isoformat()}",
            link=_admin_path(document),
        )
        for user in audience.eligible([ack.user], document.program_id)
    ]


def _waiver_reminders(waiver: Waiver, *, audience: _Audience) -> list[Reminder]:
    days = settings.CAIRN_WAIVER_EXPIRY_NOTICE_DAYS
    expires_on = timezone.localdate(waiver.expires_at)
    target = waiver.item or waiver.metric
    return [
        _reminder(
            f"waiver:{waiver.pk}",
            WAIVER_EXPIRING,
            -days,
            user,
            expires_on - timedelta(days=days),
            subject=f"Waiver expires {expires_on.isoformat()}: {target} ({waiver.program.title})",
            lead=f"The {waiver.get_type_display().lower()} waiver on this requirement expires on "
            f"{expires_on.isoformat()}. Renew it or meet the requirement before then.",
            facts=f"Requirement: {target}\nProgram: {waiver.program.title}\nExpires: {expires_on.isoformat()}",
            link=_admin_path(target) if target is not None else _admin_path(waiver.program),
        )
        for user in audience.eligible([waiver.requested_by, waiver.approved_by], waiver.program_id)
    ]


def _item_reminders(item: ChecklistItem, *, audience: _Audience) -> list[Reminder]:
    assert item.due_date is not None  # selected by due_date__lte
    due = item.due_date.isoformat()
    return [
        _reminder(
            f"item:{item.pk}",
            ITEM_PAST_DUE,
            0,
            user,
            item.due_date,
            subject=f"Item due {due}, not done: {item} ({item.program.title})",
            lead=f"This checklist item you own was due on {due} and is {item.get_status_display().lower()}.",
            facts=f"Item: {item}\nProgram: {item.program.title}\nDue: {due}\nStatus: {item.get_status_display()}",
            link=_admin_path(item),
        )
        for user in audience.eligible([item.owner], item.program_id)
    ]


def _reminder(
    object_key: str,
    kind: str,
    offset_days: int,
    recipient: AbstractUser,
    due_on: date,
    *,
    subject: str,
    lead: str,
    facts: str,
    link: str,
) -> Reminder:
    # A newline in a subject is a header injection to Django; titles come from imported documents.
    subject = " ".join(f"{SUBJECT_PREFIX} {subject}".split())[:SUBJECT_MAX_CHARS]
    body = (
        f"Hello {recipient.get_full_name() or recipient.get_username()},\n\n{lead}\n\n{facts}\n"
        f"Reminder due since: {due_on.isoformat()}\n\nOpen in Cairn: {link}\n\n"
        "Cairn sends each reminder once; it stops when the work is recorded.\n"
    )
    return Reminder(object_key, kind, offset_days, recipient, due_on, subject, body)


def _admin_path(obj: Model) -> str:
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return reverse("admin:index")


# --- sending ---------------------------------------------------------------------------------------------


def reminders_send(*, today: date, dry_run: bool = False) -> list[Reminder]:
    """Send every due reminder once; returns those sent (with `dry_run`, those that would be: nothing is written).

    Each reminder is claimed in the sent-log before its e-mail goes out, in its own transaction: a concurrent
    sender hits the unique constraint and skips it, and an e-mail that fails rolls its claim back so the next
    run tries again.
    """
    due = reminders_due(today=today)
    if dry_run:
        return due
    sent: list[Reminder] = []
    for reminder in due:
        try:
            with transaction.atomic():
                if not _claim(reminder):
                    continue  # another sender got there first
                send_mail(
                    reminder.subject,
                    reminder.body,
                    settings.DEFAULT_FROM_EMAIL,
                    [reminder.recipient.email],
                    fail_silently=False,
                )
        except Exception:
            # Any backend error: this reminder stays unsent for the next run; the others still go out.
            logger.exception(
                "Reminder %s %s to user %s not sent; it will be retried.",
                reminder.kind,
                reminder.object_key,
                reminder.recipient.pk,
            )
            continue
        sent.append(reminder)
    return sent


def _claim(reminder: Reminder) -> bool:
    key = {
        "object_key": reminder.object_key,
        "kind": reminder.kind,
        "offset_days": reminder.offset_days,
        "recipient": reminder.recipient,
    }
    try:
        with transaction.atomic():
            ReminderLog.objects.create(**key, due_on=reminder.due_on)
        return True
    except IntegrityError:
        pass
    # The row is from an earlier due date (a new review cycle, a new due date): take it over for this one.
    retaken = (
        ReminderLog.objects.filter(**key)
        .exclude(due_on=reminder.due_on)
        .update(due_on=reminder.due_on, sent_at=timezone.now())
    )
    return retaken == 1


# --- reviews ---------------------------------------------------------------------------------------------


def periodic_reviews_open(*, today: date) -> int:
    """Open the periodic review of every document that has come due; returns how many were opened.

    A document already under an open periodic review, or whose review for this due date was already held or
    cancelled, gets none. The database allows one open periodic review per document, so a person or a
    concurrent run opening it at the same moment costs nothing.
    """
    periodic = Review.objects.filter(document=OuterRef("pk"), kind=Review.Kind.PERIODIC)
    documents = (
        ControlledDocument.objects.due_for_review(today)
        .exclude(Exists(periodic.filter(state=Review.State.OPEN)))
        .exclude(Exists(periodic.filter(due_on=OuterRef("next_review_due"))))
        .annotate(
            effective_version_id=Subquery(
                DocumentVersion.objects.filter(
                    document=OuterRef("pk"), state=DocumentVersion.State.EFFECTIVE
                ).values("pk")[:1]
            )
        )
        .order_by("pk")
    )
    opened = 0
    for document in documents:
        review = Review(
            document=document,
            version_id=document.effective_version_id,
            kind=Review.Kind.PERIODIC,
            due_on=document.next_review_due,
        )
        review._change_reason = f"Opened by the daily job: review due {document.next_review_due}"  # type: ignore[attr-defined]
        try:
            with transaction.atomic():
                review.save()
        except IntegrityError:
            continue  # opened meanwhile
        opened += 1
    return opened


def reviews_escalate(*, today: date) -> int:
    """Mark open periodic reviews overdue by the escalation period as escalated, once; returns how many."""
    cutoff = today - timedelta(days=settings.CAIRN_REVIEW_ESCALATION_DAYS)
    candidates = list(
        Review.objects.filter(
            kind=Review.Kind.PERIODIC, state=Review.State.OPEN, escalated_at__isnull=True, due_on__lte=cutoff
        ).order_by("pk")
    )
    now = timezone.now()
    escalated: list[Review] = []
    for review in candidates:
        # Claimed one by one so a concurrent run escalates nothing twice and history records each change.
        claimed = Review.objects.filter(
            pk=review.pk, state=Review.State.OPEN, escalated_at__isnull=True
        ).update(escalated_at=now)
        if claimed == 1:
            review.escalated_at = now
            escalated.append(review)
    if escalated:
        # queryset.update() leaves no history; record the change the way a save would have.
        Review.history.bulk_history_create(  # type: ignore[attr-defined]
            escalated, update=True, default_change_reason="Escalated by the daily job", default_date=now
        )
    return len(escalated)
