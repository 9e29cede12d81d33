import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership

pytestmark = pytest.mark.django_db


def test_load_demo_creates_four_users_and_the_example_program_once(settings, capsys):
    settings.DEMO_MODE = True
    call_command("load_demo")
    first = capsys.readouterr().out
    assert first.count("password ") == 4
    program = Program.objects.get(key="harbour-platform")
    phases = list(Phase.objects.filter(program=program).order_by("order"))
    assert [(p.code, p.start_month, p.end_month) for p in phases] == [
        ("P1", 1, 6),
        ("P2", 7, 12),
        ("P3", 13, 18),
    ]
    items = ChecklistItem.objects.filter(program=program)
    assert items.count() >= 30
    assert set(items.values_list("status", flat=True)) == set(ChecklistItem.Status.values)
    assert set(ProgramMembership.objects.filter(program=program).values_list("user__username", "role")) == {
        ("manager", "manager"),
        ("contributor", "contributor"),
        ("executive", "executive"),
        ("auditor", "auditor"),
    }

    call_command("load_demo")
    second = capsys.readouterr().out
    assert "exists, password unchanged" in second
    assert "already present" in second
    assert ChecklistItem.objects.filter(program=program).count() == items.count()


def test_load_demo_refuses_outside_demo_mode(settings):
    settings.DEMO_MODE = False
    with pytest.raises(CommandError, match="CAIRN_DEMO=true"):
        call_command("load_demo")
    assert not Program.objects.exists()


def test_demo_passwords_log_in(settings, capsys, client):
    settings.DEMO_MODE = True
    call_command("load_demo")
    passwords = dict(re.findall(r"demo user (\w+) \(\w+\): password (\S+)", capsys.readouterr().out))
    assert client.login(username="manager", password=passwords["manager"])
    assert client.get("/admin/roadmap/checklistitem/").status_code == 200


def test_the_sample_checklist_imports_into_the_example_program(settings, capsys):
    settings.DEMO_MODE = True
    call_command("load_demo")
    sample = Path(__file__).resolve().parents[1] / "fixtures" / "sample_checklist.csv"
    call_command("import_checklist", str(sample), "--program", "harbour-platform")
    out = capsys.readouterr().out
    assert "4 rows: 4 added, 0 changed, 0 unchanged, 0 invalid" in out
    blocked = ChecklistItem.objects.get(key="ops-runbook-04")
    assert (blocked.status, blocked.status_reason) == (
        "blocked",
        "Waiting for the identity provider's audit API",
    )
    assert blocked.phase.code == "P3"
    assert blocked.section.parent.title == "Roadmap"
