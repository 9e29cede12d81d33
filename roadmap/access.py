"""Who may do what in a program: the one place that turns memberships into decisions.

Model permissions (Django groups) say which kinds of objects a user may touch at all; the membership role in a
program says which of those objects. Querysets scope reads with `for_user`; these functions decide writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from roadmap.models import ChecklistItem, ProgramMembership, Role

if TYPE_CHECKING:
    from roadmap.models import AnyUser

# Contributors report progress on the items they own; assignments, dates and scoring stay with managers.
CONTRIBUTOR_ITEM_FIELDS = frozenset({"status", "status_reason"})


def roles_by_program(user: AnyUser, program_ids: Iterable[int] | None = None) -> dict[int, str]:
    """The user's role in each program (one query)."""
    if not user.is_authenticated or not user.is_active:
        return {}
    memberships = ProgramMembership.objects.filter(user=user)
    if program_ids is not None:
        memberships = memberships.filter(program_id__in=list(program_ids))
    return dict(memberships.values_list("program_id", "role"))


def can_manage_program(user: AnyUser, program_id: int, roles: dict[int, str] | None = None) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    roles = roles if roles is not None else roles_by_program(user, [program_id])
    return roles.get(program_id) == Role.MANAGER


def item_fields_changeable(
    user: AnyUser, item: ChecklistItem, roles: dict[int, str] | None = None
) -> frozenset[str] | None:
    """Fields of `item` the user may change: None for every field, an empty set for none."""
    if can_manage_program(user, item.program_id, roles):
        return None
    roles = roles if roles is not None else roles_by_program(user, [item.program_id])
    if roles.get(item.program_id) == Role.CONTRIBUTOR and item.owner_id == user.pk:
        return CONTRIBUTOR_ITEM_FIELDS
    return frozenset()


def can_change_item(user: AnyUser, item: ChecklistItem, roles: dict[int, str] | None = None) -> bool:
    return item_fields_changeable(user, item, roles) != frozenset()
