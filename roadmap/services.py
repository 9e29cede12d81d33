"""Use cases that change the roadmap. Admin, API, CLI and Celery all call these, so they behave the same."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from cairn.lib.history import save_with_history
from roadmap import access, roles
from roadmap.keys import item_key
from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership, Role, Section
from roadmap.selectors import section_paths

if TYPE_CHECKING:
    from roadmap.models import AnyUser


def program_assert_creatable(by: AnyUser | None) -> None:
    if by is not None and not (by.is_superuser or by.has_perm("roadmap.add_program")):
        raise PermissionDenied("You may not create programs.")


@transaction.atomic
def program_create(*, by: AnyUser | None, key: str, title: str, reason: str = "", **fields: Any) -> Program:
    """Create a program; its creator becomes its first manager.

    `by=None` is the system itself (an operator's import from the command line): no one becomes manager.
    """
    program_assert_creatable(by)
    program = Program(key=key, title=title, **fields)
    save_with_history(program, by=by, reason=reason)
    if by is not None:
        _membership_grant(ProgramMembership(user=by, program=program, role=Role.MANAGER), by=by)
    return program


@transaction.atomic
def program_update(*, program: Program, by: AnyUser, data: Mapping[str, Any]) -> Program:
    if not access.can_manage_program(by, program.pk):
        raise PermissionDenied("Only the program's managers may change it.")
    for field, value in data.items():
        setattr(program, field, value)
    save_with_history(program, by=by)
    return program


def _check_item_fields(
    by: AnyUser, item: ChecklistItem, fields: Iterable[str], roles: dict[int, str]
) -> None:
    allowed = access.item_fields_changeable(by, item, roles)
    if allowed is None:
        return
    if not allowed:
        raise PermissionDenied(f"You may not change item {item.key}.")
    refused = sorted(set(fields) - allowed)
    if refused:
        raise PermissionDenied(
            f"As a contributor you may change only {', '.join(sorted(allowed))} of your items, not {', '.join(refused)}."
        )


class EditConflict(Exception):
    """The item changed after the caller read it: saving the caller's edit would silently undo that change."""

    def __init__(self, *, current: ChecklistItem, expected_version: int) -> None:
        self.current = current
        self.expected_version = expected_version
        super().__init__(
            f"Item {current.ref or current.key} was changed by someone else while you edited it "
            f"(you edited version {expected_version}; it is now version {current.version}). "
            "Reload it, check their change and apply yours again."
        )


@transaction.atomic
def checklist_item_update(
    *,
    item: ChecklistItem,
    by: AnyUser,
    data: Mapping[str, Any],
    reason: str = "",
    expected_version: int | None = None,
) -> ChecklistItem:
    """Change fields of one item; a status change goes through `ChecklistItem.set_status`.

    `data` holds only the fields the caller means to change. The edit applies to `expected_version` (by default
    the version `item` was read at); if the item has changed since, EditConflict carries its current state.
    Raises PermissionDenied when the user may not change a field and ValidationError when the result would
    break an invariant.
    """
    base_version = item.version if expected_version is None else expected_version
    # Claim the version first (one conditional update), so of two concurrent edits of one version only one wins.
    if not ChecklistItem.objects.filter(pk=item.pk, version=base_version).update(version=base_version + 1):
        current = ChecklistItem.objects.select_related("program", "owner").get(pk=item.pk)
        raise EditConflict(current=current, expected_version=base_version)
    item.version = base_version + 1
    changes = dict(data)
    roles = access.roles_by_program(by, [item.program_id])
    changed_fields = [name for name, value in changes.items() if getattr(item, name, object()) != value]
    _check_item_fields(by, item, changed_fields, roles)

    if "owner" in changed_fields:
        _check_owner_is_member(item.program, changes["owner"])
    status = changes.pop("status", item.status)
    status_reason = changes.pop("status_reason", item.status_reason if status == item.status else "")
    for field, value in changes.items():
        setattr(item, field, value)
    if status != item.status or status_reason != item.status_reason:
        item.set_status(status, by=by, reason=status_reason)
    save_with_history(item, by=by, reason=reason)
    return item


@transaction.atomic
def checklist_items_set_status(*, item_ids: Iterable[int], status: str, by: AnyUser, reason: str = "") -> int:
    """Set the status of many items as one change: all of them, or none when any is refused.

    Each item is saved through the model so every one gets its own history record.
    Returns how many items changed (items already in that status with that reason are left alone).
    """
    ids = sorted(set(item_ids))
    items = list(
        ChecklistItem.objects.select_for_update().filter(pk__in=ids).select_related("program").order_by("pk")
    )
    missing = set(ids) - {item.pk for item in items}
    if missing:
        raise ValidationError(f"No checklist items with id {', '.join(map(str, sorted(missing)))}.")
    if status in ChecklistItem.STATUSES_NEEDING_REASON and not (reason or "").strip():
        raise ValidationError({"status_reason": f"A reason is required to mark items {status}."})
    _assert_status_changeable(items, by)
    changed = 0
    for item in items:
        if item.status == status and item.status_reason == (reason or "").strip():
            continue
        item.set_status(status, by=by, reason=reason)
        item.version += 1  # the row is locked (select_for_update), so this cannot race
        save_with_history(item, by=by, reason=f"Bulk status change to {status}")
        changed += 1
    return changed


def _assert_status_changeable(items: list[ChecklistItem], by: AnyUser) -> None:
    roles = access.roles_by_program(by, {item.program_id for item in items})
    for item in items:
        _check_item_fields(by, item, ["status", "status_reason"], roles)


def checklist_items_assert_status_changeable(*, item_ids: Iterable[int], by: AnyUser) -> None:
    """Raise PermissionDenied unless `by` may set the status of every one of the items."""
    _assert_status_changeable(list(ChecklistItem.objects.filter(pk__in=list(item_ids))), by)


@transaction.atomic
def section_save(*, section: Section, by: AnyUser) -> Section:
    _check_manages_program_of(section, by, "section")
    save_with_history(section, by=by)
    return section


def _check_owner_is_member(program: Program, owner: AnyUser | None) -> None:
    if owner is None:
        return
    if not ProgramMembership.objects.filter(program=program, user=owner).exists():
        raise ValidationError(
            {"owner": f"{owner} is not a member of {program.key}; add them to the program first."}
        )


def _phase_of(section: Section) -> int | None:
    """The phase a section belongs to: its own or its nearest ancestor's."""
    cursor: Section | None = section
    while cursor is not None:
        if cursor.phase_id:
            return cursor.phase_id
        cursor = cursor.parent
    return None


@transaction.atomic
def checklist_item_create(
    *, by: AnyUser, program: Program, section: Section, title: str, key: str = "", **fields: Any
) -> ChecklistItem:
    """Add an item to a program; without a key it gets the stable key of (section path, title)."""
    if not access.can_manage_program(by, program.pk):
        raise PermissionDenied("Only the program's managers may add items.")
    if section.program_id != program.pk:
        raise ValidationError({"section": "The section belongs to another program."})
    _check_owner_is_member(program, fields.get("owner"))
    status = fields.pop("status", ChecklistItem.Status.NOT_STARTED)
    status_reason = fields.pop("status_reason", "")
    item = ChecklistItem(
        program=program,
        section=section,
        phase_id=fields.pop("phase_id", None) or _phase_of(section),
        key=key or item_key(section_paths(program.pk)[section.pk], title),
        title=title,
        **fields,
    )
    item.set_status(status, by=by, reason=status_reason)
    save_with_history(item, by=by, reason="Created")
    return item


def _check_manages_program_of(instance: Phase | Section, by: AnyUser, what: str) -> None:
    """The user must manage the program the row belongs to, and, for an existing row, the one it belonged to."""
    program_ids = {instance.program_id}
    if instance.pk is not None:
        program_ids.add(type(instance).objects.values_list("program_id", flat=True).get(pk=instance.pk))
    if not all(access.can_manage_program(by, program_id) for program_id in program_ids):
        raise PermissionDenied(f"Only the program's managers may change its {what}s.")
    if len(program_ids) > 1:
        raise ValidationError({"program": f"A {what} cannot move to another program."})


@transaction.atomic
def phase_save(*, phase: Phase, by: AnyUser) -> Phase:
    _check_manages_program_of(phase, by, "phase")
    save_with_history(phase, by=by)
    return phase


@transaction.atomic
def membership_save(*, membership: ProgramMembership, by: AnyUser | None) -> ProgramMembership:
    """Give a user a role in a program, with the group (model permissions) and admin access the role needs.

    `by=None` is the system itself (demo loader, imports run by an operator).
    """
    if by is not None and not access.can_manage_program(by, membership.program_id):
        raise PermissionDenied("Only the program's managers may change its members.")
    return _membership_grant(membership, by=by)


def _membership_grant(membership: ProgramMembership, *, by: AnyUser | None) -> ProgramMembership:
    save_with_history(membership, by=by)
    user = membership.user
    user.groups.add(Group.objects.get_or_create(name=roles.GROUP_NAMES[Role(membership.role)])[0])
    if membership.role in roles.STAFF_ROLES and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership
