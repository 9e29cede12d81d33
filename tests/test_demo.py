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


def test_load_demo_metrics_adds_values_and_a_runnable_health_check_once(settings, capsys, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from metrics.models import EvidenceSource, Measurement, Metric
    from metrics.services import sources_collect_now
    from roadmap.demo import EXAMPLE_KEY

    settings.DEMO_MODE = True
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    call_command("load_demo")
    call_command("load_demo_metrics")
    call_command("load_demo_metrics")
    out = capsys.readouterr().out
    assert "example metrics for harbour-platform: loaded (3 metrics, 1 evidence source)" in out
    assert "already present" in out.splitlines()[-1]
    program = Program.objects.get(key=EXAMPLE_KEY)
    assert Metric.objects.filter(program=program).count() == 3
    assert Metric.objects.filter(program=program, target__isnull=True).count() == 1  # "not yet measurable"
    assert Measurement.objects.filter(metric__program=program).count() == 24

    class LoginPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/admin/login/" else 404)
            self.end_headers()
            self.wfile.write(b"<title>Log in | Cairn</title>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = EvidenceSource.objects.get(program=program)
        source.config["url"] = f"http://127.0.0.1:{server.server_port}/admin/login/"
        source.save()
        [run] = sources_collect_now(sources=[source], by=None)
    finally:
        server.shutdown()
    assert (run.status, run.passed) == ("success", True)
    assert source.items.get().evidence.get().passed is True


def test_load_demo_metrics_needs_the_example_program(settings):
    settings.DEMO_MODE = True
    with pytest.raises(CommandError, match="run load_demo first"):
        call_command("load_demo_metrics")
