"""Django groups that carry each role's model permissions; memberships scope them to programs."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from roadmap.models import Role

_ROADMAP = ["program", "phase", "section", "checklistitem", "programmembership"]

GROUP_NAMES = {
    Role.MANAGER: "Program managers",
    Role.CONTRIBUTOR: "Contributors",
    Role.EXECUTIVE: "Executives",
    Role.AUDITOR: "Auditors",
}

# Roles that work in the admin; executives read the dashboard and the API only.
STAFF_ROLES = frozenset({Role.MANAGER, Role.CONTRIBUTOR, Role.AUDITOR})

GROUP_PERMISSIONS: dict[str, list[str]] = {
    Role.MANAGER: [
        *(f"roadmap.{action}_{model}" for model in _ROADMAP for action in ("view", "add", "change")),
        "roadmap.delete_programmembership",
        "auth.view_user",  # to pick members with the admin's autocomplete
    ],
    Role.CONTRIBUTOR: [*(f"roadmap.view_{model}" for model in _ROADMAP), "roadmap.change_checklistitem"],
    Role.EXECUTIVE: [f"roadmap.view_{model}" for model in _ROADMAP],
    Role.AUDITOR: [f"roadmap.view_{model}" for model in _ROADMAP],
}


@transaction.atomic
def groups_sync() -> dict[str, int]:
    """Create or update one group per role with exactly its permissions. Idempotent."""
    counts = {}
    for role, codes in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)
        counts[group.name] = len(permissions)
    return counts
