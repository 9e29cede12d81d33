"""Waivers: an exception on one requirement, requested by one person and approved by another (DESIGN §3, §5).

`not_applicable` takes the requirement out of every aggregate; `risk_accepted` counts it as met for the level
gate only and never raises a score. Both need a reason, an expiry and an approver other than the requester.
Admin, API and any command come through these functions; the maturity engine reads `waivers_in_force`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from cairn.lib.history import save_with_history
from governance.models import Waiver
from metrics.models import Metric
from roadmap import access
from roadmap.models import ChecklistItem, Program, Role

if TYPE_CHECKING:
    from roadmap.models import AnyUser


class WaiverState(models.TextChoices):
    PENDING = "pending", "Pending approval"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


REQUESTING_ROLES = frozenset({Role.MANAGER, Role.CONTRIBUTOR})


# --- reads ------------------------------------------------------------------------------------------------


def waiver_state(waiver: Waiver, *, at: datetime | None = None) -> WaiverState:
    at = at or timezone.now()
    if waiver.revoked_at is not None and waiver.revoked_at <= at:
        return WaiverState.REVOKED
    if waiver.expires_at <= at:
        return WaiverState.EXPIRED
    if waiver.approved_by_id is not None and waiver.approved_at is not None and waiver.approved_at <= at:
        return WaiverState.ACTIVE
    return WaiverState.PENDING


def waivers_with_state(
    queryset: QuerySet[Waiver], state: str, *, at: datetime | None = None
) -> QuerySet[Waiver]:
    """`queryset` narrowed to the waivers in `state` at `at` (the same rules as `waiver_state`)."""
    at = at or timezone.now()
    not_revoked = Q(revoked_at__isnull=True) | Q(revoked_at__gt=at)
    if state == WaiverState.REVOKED:
        return queryset.filter(revoked_at__lte=at)
    if state == WaiverState.EXPIRED:
        return queryset.filter(not_revoked, expires_at__lte=at)
    if state == WaiverState.ACTIVE:
        return queryset.filter(not_revoked, expires_at__gt=at, approved_by__isnull=False, approved_at__lte=at)
    if state == WaiverState.PENDING:
        return queryset.filter(not_revoked, expires_at__gt=at).filter(
            Q(approved_by__isnull=True) | Q(approved_at__gt=at)
        )
    raise ValueError(f"Unknown waiver state {state!r}.")


def waivers_in_force(program_id: int, as_of: datetime) -> QuerySet[Waiver]:
    """The program's waivers the maturity engine counts at `as_of`.

    Approved at or before `as_of`, expiring after it, and not revoked by then: a pending waiver never counts,
    an expired one stops counting by itself, and a past `as_of` gives the answer it had on that day.
    """
    return Waiver.objects.filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=as_of),
        program_id=program_id,
        approved_by__isnull=False,
        approved_at__lte=as_of,
        expires_at__gt=as_of,
    )


def _open_waivers(*, at: datetime) -> QuerySet[Waiver]:
    """Pending or active: the waivers that stop a second request on the same requirement."""
    return Waiver.objects.filter(revoked_at__isnull=True, expires_at__gt=at)


def waiver_requestable_items(user: AnyUser) -> QuerySet[ChecklistItem]:
    """Items `user` may request a waiver on: every item of the programs they manage, and their own as contributor."""
    if not user.is_authenticated or not user.is_active:
        return ChecklistItem.objects.none()
    contributed = Program.objects.filter(memberships__user=user, memberships__role=Role.CONTRIBUTOR)
    return (
        ChecklistItem.objects.active()
        .filter(Q(program__in=Program.objects.managed_by(user)) | Q(program__in=contributed, owner=user))
        .select_related("program")
        .order_by("program__key", "order", "pk")
    )


def waiver_requestable_metrics(user: AnyUser) -> QuerySet[Metric]:
    """Metrics `user` may request a waiver on, by the same rule as items."""
    if not user.is_authenticated or not user.is_active:
        return Metric.objects.none()
    contributed = Program.objects.filter(memberships__user=user, memberships__role=Role.CONTRIBUTOR)
    return (
        Metric.objects.active()
        .filter(Q(program__in=Program.objects.managed_by(user)) | Q(program__in=contributed, owner=user))
        .select_related("program")
        .order_by("program__key", "order", "pk")
    )


# --- writes -----------------------------------------------------------------------------------------------


def _may_request(user: AnyUser, target: ChecklistItem | Metric) -> bool:
    roles = access.roles_by_program(user, [target.program_id])
    if access.can_manage_program(user, target.program_id, roles):
        return True
    return roles.get(target.program_id) == Role.CONTRIBUTOR and target.owner_id == user.pk


def waiver_request_check(
    *,
    by: AnyUser,
    item: ChecklistItem | None = None,
    metric: Metric | None = None,
    type: str,
    reason: str,
    expires_at: datetime | None,
) -> None:
    """Every check `waiver_request` makes, writing nothing (the admin form shows the problems by their fields).

    PermissionDenied when `by` may not ask; ValidationError naming each field at fault otherwise.
    """
    if item is not None and metric is not None:
        raise ValidationError({"item": "Choose a checklist item or a metric, not both."})
    target: ChecklistItem | Metric | None = item if item is not None else metric
    if target is None:
        raise ValidationError({"item": "Choose the checklist item or the metric the waiver is for."})
    target_field = "item" if item is not None else "metric"
    if not _may_request(by, target):
        raise PermissionDenied(
            "Only the program's managers, or the contributor who owns the requirement, may request a waiver on it."
        )
    now = timezone.now()
    errors: dict[str, str] = {}
    if target.archived_at is not None:
        errors[target_field] = "This requirement is archived and no longer scored."
    if type not in Waiver.Type.values:
        errors["type"] = f"Choose one of: {', '.join(Waiver.Type.values)}."
    if not (reason or "").strip():
        errors["reason"] = "Say why the requirement is waived."
    if expires_at is None:
        errors["expires_at"] = "A waiver needs an expiry date."
    elif timezone.is_naive(expires_at):
        errors["expires_at"] = "Give the expiry with its time zone."
    elif expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    if target_field not in errors and _open_waivers(at=now).filter(**{target_field: target}).exists():
        errors[target_field] = (
            "This requirement already has a pending or active waiver; revoke it or let it expire first."
        )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def waiver_request(
    *,
    by: AnyUser,
    item: ChecklistItem | None = None,
    metric: Metric | None = None,
    type: str,
    reason: str,
    expires_at: datetime | None,
) -> Waiver:
    """Ask for a waiver on one requirement; it counts only once another manager approves it."""
    # Lock the requirement's row so two simultaneous requests cannot both find no open waiver.
    if item is not None and metric is None:
        item = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    elif metric is not None and item is None:
        metric = Metric.objects.select_for_update().get(pk=metric.pk)
    waiver_request_check(by=by, item=item, metric=metric, type=type, reason=reason, expires_at=expires_at)
    target = item if item is not None else metric
    assert target is not None  # waiver_request_check refused anything else
    waiver = Waiver(
        program_id=target.program_id,
        item=item,
        metric=metric,
        type=type,
        reason=reason.strip(),
        requested_by=by,
        expires_at=expires_at,
    )
    save_with_history(waiver, by=by, reason="Waiver requested")
    return waiver


def _not_open(waiver: Waiver, *, at: datetime) -> ValidationError | None:
    """Why `waiver` can no longer be approved, or None while it is pending."""
    if waiver.revoked_at is not None:
        return ValidationError({"revoked_at": "This waiver was revoked."})
    if waiver.expires_at <= at:
        return ValidationError({"expires_at": "This waiver has expired; request a new one."})
    if waiver.approved_by_id is not None:
        return ValidationError({"approved_by": "This waiver is already approved."})
    return None


@transaction.atomic
def waiver_approve(*, waiver: Waiver, by: AnyUser) -> Waiver:
    """Approve a pending waiver. Separation of duties: never by the person who asked for it."""
    if by.is_authenticated and by.pk == waiver.requested_by_id:
        raise PermissionDenied(
            "You requested this waiver; another manager of the program must approve it (separation of duties)."
        )
    if not access.can_manage_program(by, waiver.program_id):
        raise PermissionDenied("Only the program's managers may approve waivers.")
    now = timezone.now()
    if problem := _not_open(waiver, at=now):
        raise problem
    # Claim the row: of two approvals (or an approval racing a revocation) exactly one wins.
    claimed = Waiver.objects.filter(
        pk=waiver.pk, approved_by__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).update(approved_by=by, approved_at=now)
    waiver.refresh_from_db()
    if claimed != 1:
        raise _not_open(waiver, at=now) or ValidationError({"approved_by": "This waiver changed meanwhile."})
    # update() leaves no history; saving the claimed row again records who approved it and when.
    save_with_history(waiver, by=by, reason="Waiver approved")
    return waiver


@transaction.atomic
def waiver_revoke(*, waiver: Waiver, by: AnyUser, reason: str = "") -> Waiver:
    """Withdraw a waiver, pending or approved; the maturity engine stops counting it from now on."""
    roles = access.roles_by_program(by, [waiver.program_id])
    is_requester = by.is_authenticated and by.pk == waiver.requested_by_id and waiver.program_id in roles
    if not (is_requester or access.can_manage_program(by, waiver.program_id, roles)):
        raise PermissionDenied(
            "Only the program's managers or the person who requested a waiver may revoke it."
        )
    now = timezone.now()
    claimed = Waiver.objects.filter(pk=waiver.pk, revoked_at__isnull=True).update(revoked_at=now)
    waiver.refresh_from_db()
    if claimed != 1:
        raise ValidationError({"revoked_at": "This waiver is already revoked."})
    reason = reason.strip()
    save_with_history(waiver, by=by, reason=f"Waiver revoked: {reason}" if reason else "Waiver revoked")
    return waiver
