"""Django groups that carry each role's model permissions; memberships scope them to programs."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from roadmap.models import Role

_ROADMAP = ["program", "phase", "section", "checklistitem", "programmembership"]
# Import runs are written only by the importer; people read them.
# What every role reads of the other apps; they name permissions here so one table shows each role.
_READ_OTHER_APPS = [
    "metrics.view_metric",
    "metrics.view_measurement",
    "metrics.view_evidencesource",
    "metrics.view_collectionrun",
    "metrics.view_evidence",
    "governance.view_controlleddocument",
    "scorecards.view_snapshot",
    "governance.view_documentversion",
    "governance.view_review",
    "governance.view_approval",
    "governance.view_acknowledgement",
    "governance.view_waiver",
]

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
        "roadmap.view_importrun",
        "auth.view_user",  # to pick members with the admin's autocomplete
        *_READ_OTHER_APPS,
        "governance.change_controlleddocument",
        "governance.add_documentversion",
        "governance.change_documentversion",
        "governance.change_review",
        "governance.add_waiver",
        "governance.change_waiver",
        "scorecards.view_scorecard",  # executive scorecards; contributors do not read them
        "roadmap.import_checklistitem",
        "roadmap.export_checklistitem",
        "metrics.change_metric",
        "metrics.add_metric",
        "metrics.add_measurement",
        "metrics.add_evidencesource",
        "metrics.change_evidencesource",
        "metrics.add_evidence",
    ],
    Role.CONTRIBUTOR: [
        *(f"roadmap.view_{model}" for model in _ROADMAP),
        "roadmap.change_checklistitem",
        "roadmap.export_checklistitem",
        "governance.add_waiver",  # on the items they own
        "metrics.add_evidence",  # on the items they own
        "metrics.add_measurement",  # of the metrics they own
        *_READ_OTHER_APPS,
    ],
    Role.EXECUTIVE: [
        *(f"roadmap.view_{model}" for model in _ROADMAP),
        *_READ_OTHER_APPS,
        "scorecards.view_scorecard",
    ],
    Role.AUDITOR: [
        *(f"roadmap.view_{model}" for model in _ROADMAP),
        "roadmap.export_checklistitem",
        "roadmap.view_importrun",
        *_READ_OTHER_APPS,
        "scorecards.view_scorecard",
    ],
}


@transaction.atomic
def groups_sync() -> dict[str, int]:
    """Create or update one group per role with exactly its permissions. Idempotent.

    Runs after each app's migrations; a permission of an app not migrated yet is added on that app's turn.
    """
    existing = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    counts = {}
    for role, codes in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        permissions = [existing[code] for code in codes if code in existing]
        group.permissions.set(permissions)
        counts[group.name] = len(permissions)
    return counts
