"""The example program and demo users that `make run` loads (demo mode only)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from cairn.lib.dates import add_months
from roadmap.keys import item_key
from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership, Role, Section
from roadmap.services import membership_save

EXAMPLE_PATH = Path(settings.BASE_DIR) / "fixtures" / "example_program.yaml"
EXAMPLE_KEY = "harbour-platform"  # the key fixtures/example_program.yaml gives its program
DEMO_USERS = [(Role.MANAGER, "manager"), (Role.CONTRIBUTOR, "contributor"), (Role.EXECUTIVE, "executive"),
              (Role.AUDITOR, "auditor")]  # fmt: skip


@dataclass
class DemoUser:
    username: str
    role: str
    password: str | None  # only when the account was created by this call


@transaction.atomic
def demo_users_create(*, reset_passwords: bool = False) -> list[DemoUser]:
    """Create the four demo accounts with random passwords; existing accounts keep theirs unless reset."""
    users = []
    model = get_user_model()
    for role, username in DEMO_USERS:
        user, created = model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        password = None
        if created or reset_passwords:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
        users.append(DemoUser(username=username, role=role, password=password))
    return users


@transaction.atomic
def example_program_load(path: Path = EXAMPLE_PATH, *, today: date | None = None) -> tuple[Program, bool]:
    """Load the example program once; a second call finds it and changes nothing."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    today = today or timezone.localdate()
    program_spec = dict(spec["program"])
    existing = Program.objects.filter(key=program_spec["key"]).first()
    if existing is not None:
        return existing, False

    months_ago = program_spec.pop("start_months_ago")
    program = Program.objects.create(start_date=add_months(today.replace(day=1), -months_ago), **program_spec)
    phases = {}
    for order, phase_spec in enumerate(spec["phases"], start=1):
        start_month, end_month = phase_spec.pop("months")
        phases[phase_spec["code"]] = Phase.objects.create(
            program=program, order=order, start_month=start_month, end_month=end_month, **phase_spec
        )
    users = {
        user.username: user
        for user in get_user_model().objects.filter(username__in=[u for _, u in DEMO_USERS])
    }
    for role, username in DEMO_USERS:
        if username in users:
            membership_save(
                membership=ProgramMembership(user=users[username], program=program, role=role), by=None
            )

    counter = {"section": 0, "item": 0}
    now = timezone.now()

    def add_section(
        node: dict[str, Any], parent: Section | None, path: list[str], phase: Phase | None
    ) -> None:
        counter["section"] += 1
        phase = phases[node["phase"]] if "phase" in node else phase
        section = Section.objects.create(
            program=program,
            parent=parent,
            phase=phase if "phase" in node else None,
            title=node["title"],
            order=counter["section"],
            is_capability_area=node.get("area", False),
        )
        section_path = [*path, node["title"]]
        for item_spec in node.get("items", []):
            counter["item"] += 1
            status = item_spec.get("status", ChecklistItem.Status.NOT_STARTED)
            due = item_spec.get("due_in_days")
            done = status == ChecklistItem.Status.DONE
            owner = users.get(item_spec.get("owner", ""))
            ChecklistItem.objects.create(
                program=program,
                section=section,
                phase=phase,
                key=item_key(" > ".join(section_path), item_spec["title"]),
                ref=f"{phase.code if phase else 'C'}.{counter['item']}",
                title=item_spec["title"],
                kind=item_spec.get("kind", ChecklistItem.Kind.TASK),
                status=status,
                status_reason=item_spec.get("reason", ""),
                owner=owner,
                due_date=today + timedelta(days=due) if due is not None else None,
                level=phase.target_level if phase else None,
                order=counter["item"],
                completed_at=now if done else None,
                attested_at=now if done else None,
                attested_by=owner if done else None,
            )
        for child in node.get("children", []):
            add_section(child, section, section_path, phase)

    for root in spec["sections"]:
        add_section(root, None, [], None)
    return program, True
