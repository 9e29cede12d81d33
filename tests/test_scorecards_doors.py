"""Scorecards through every door: the service, the monthly job and its e-mail, the API, the admin and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from smtplib import SMTPException
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import ControlledDocument
from roadmap.models import Program
from scorecards import services, tasks
from scorecards.models import Scorecard, Snapshot
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def stored_files(media: Path) -> list[Path]:
    return sorted(path for path in media.rglob("*.pdf"))


def api(user: Any = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def scorecard(team: Any) -> Scorecard:
    return services.scorecard_generate(program=team.program, by=team.manager)[0]


# --- generating once --------------------------------------------------------------------------------------


def test_it_generates_a_period_once(team, media):
    first, created = services.scorecard_generate(program=team.program, period="2026-10")
    again, created_again = services.scorecard_generate(program=team.program, period="2026-10")
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert (first.as_of, first.trigger, first.period) == (date(2026, 10, 31), "manual", "2026-10")
    assert len(stored_files(media)) == 1
    assert first.pdf.name.startswith("scorecards/alpha/alpha-2026-10-")


def test_it_generates_on_demand_once_per_snapshot(team, media):
    first, _ = services.scorecard_generate(program=team.program, by=team.manager)
    again, created = services.scorecard_generate(program=team.program, by=team.manager)
    assert (again.pk, created) == (first.pk, False)
    assert first.generated_by == team.manager
    assert len(stored_files(media)) == 1


def test_a_worker_that_loses_the_race_keeps_the_winners_scorecard_and_leaves_no_file(
    team, media, monkeypatch
):
    winner, _ = services.scorecard_generate(program=team.program, period="2026-10")
    real = services._existing
    calls = {"n": 0}

    def blind_once(**kwargs: Any) -> Scorecard | None:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(**kwargs)  # as if the winner committed just after our check

    monkeypatch.setattr(services, "_existing", blind_once)
    loser, created = services.scorecard_generate(program=team.program, period="2026-10")
    assert (loser.pk, created) == (winner.pk, False)
    assert Scorecard.objects.count() == 1
    assert stored_files(media) == [Path(winner.pdf.path)]


def test_it_refuses_a_future_date_a_bad_period_and_non_managers(team):
    with pytest.raises(ValidationError, match="in the future"):
        services.scorecard_generate(program=team.program, as_of=timezone.localdate() + timedelta(days=1))
    with pytest.raises(ValidationError, match="YYYY-MM"):
        services.scorecard_generate(program=team.program, period="2026-13")
    for persona in ("contributor", "executive", "auditor", "outsider"):
        with pytest.raises(PermissionDenied):
            services.scorecard_generate(program=team.program, by=team.user(persona))
    assert not Scorecard.objects.exists()


@pytest.mark.parametrize(
    ("start_date", "as_of", "message"),
    [
        (date(2026, 1, 1), date(2025, 12, 31), "before the program started (2026-01-01)"),
        (date(1990, 1, 1), date(1999, 12, 31), "before 2000-01-01"),
        (None, date(1, 1, 2), "before 2000-01-01"),
    ],
    ids=["before-start", "before-2000-despite-start", "year-1"],
)
def test_it_refuses_a_date_the_program_cannot_have_before_writing_anything(
    db, media, start_date, as_of, message
):
    program = ProgramFactory(start_date=start_date)
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        services.scorecard_generate(program=program, as_of=as_of)
    assert list(caught.value.message_dict) == ["as_of"]
    assert not Snapshot.objects.exists()
    assert not Scorecard.objects.exists()
    assert stored_files(media) == []


def test_it_refuses_a_period_before_2000_or_beyond_the_calendar(db):
    program = ProgramFactory(start_date=None)
    with pytest.raises(ValidationError, match="before 2000-01-01"):
        services.scorecard_generate(program=program, period="0001-01")
    for period in ("0000-01", "9999-12"):
        with pytest.raises(ValidationError, match="not a month a scorecard can cover"):
            services.scorecard_generate(program=program, period=period)
    assert not Snapshot.objects.exists()


def test_it_generates_from_the_programs_first_day(team):
    scorecard, created = services.scorecard_generate(program=team.program, as_of=team.program.start_date)
    assert (created, scorecard.as_of) == (True, date(2026, 1, 1))


@pytest.mark.parametrize("error", [IntegrityError("constraint"), DatabaseError("disk full")], ids=repr)
def test_a_scorecard_that_cannot_be_saved_leaves_no_row_and_no_file(team, media, monkeypatch, error):
    def fail(self: Scorecard, *args: Any, **kwargs: Any) -> None:
        assert stored_files(media), "the file is written before the row"
        raise error

    monkeypatch.setattr(Scorecard, "save", fail)
    with pytest.raises(type(error)):
        services.scorecard_generate(program=team.program, by=team.manager)
    assert not Scorecard.objects.exists()
    assert stored_files(media) == []


def test_the_stored_pdf_is_checked_against_its_digest(scorecard):
    assert hashlib.sha256(services.scorecard_content(scorecard=scorecard)).hexdigest() == scorecard.sha256
    Path(scorecard.pdf.path).write_bytes(b"%PDF-1.4 tampered")
    with pytest.raises(services.ScorecardFileChanged, match="does not match"):
        services.scorecard_content(scorecard=scorecard)
    Path(scorecard.pdf.path).unlink()
    with pytest.raises(services.ScorecardFileMissing, match="missing from storage"):
        services.scorecard_content(scorecard=scorecard)


def break_file(scorecard: Scorecard, how: str) -> str:
    """Remove or alter the archived PDF; the message the doors should pass on."""
    if how == "missing":
        Path(scorecard.pdf.path).unlink()
        return f"The PDF of scorecard {scorecard.pk} is missing from storage."
    Path(scorecard.pdf.path).write_bytes(b"%PDF-1.4 tampered")
    return f"The PDF of scorecard {scorecard.pk} does not match its recorded sha256."


# --- delivery ---------------------------------------------------------------------------------------------


def test_it_emails_the_executives_and_the_strategys_distribution_once(team, scorecard):
    document = ControlledDocument.objects.create(program=team.program, title="Strategy", doc_type="strategy")
    board = Group.objects.create(name="Board")
    director = UserFactory(username="dora", email="Dora@Example.com")
    director.groups.add(board)
    twice = UserFactory(username="tess", email="dora@example.com")  # same address, other case
    UserFactory(username="nomail", email="").groups.add(board)
    UserFactory(username="gone", is_active=False).groups.add(board)
    document.distribution_users.add(team.executive, twice)  # the executive only once
    document.distribution_groups.add(board)
    ControlledDocument.objects.create(
        program=team.program, title="Policy", doc_type="policy"
    ).distribution_users.add(team.contributor)

    sent = services.scorecard_deliver(scorecard=scorecard)
    again = services.scorecard_deliver(scorecard=scorecard)

    assert sent == ["Dora@Example.com", "eve@example.com"]
    assert again == []
    [message] = mail.outbox
    assert message.to == sent
    assert "Alpha" in message.subject and "level 0" in message.subject
    assert scorecard.summary in message.body
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype) == (f"alpha-scorecard-{scorecard.as_of}.pdf", "application/pdf")
    assert hashlib.sha256(content).hexdigest() == scorecard.sha256
    scorecard.refresh_from_db()
    assert scorecard.delivered_to == sent
    assert scorecard.delivered_at is not None


def test_a_failed_send_releases_the_claim_for_the_retry(team, scorecard, monkeypatch):
    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        raise SMTPException("mail server said no")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    with pytest.raises(SMTPException):
        services.scorecard_deliver(scorecard=scorecard)
    scorecard.refresh_from_db()
    assert (scorecard.delivered_at, scorecard.delivered_to) == (None, [])

    monkeypatch.undo()
    assert services.scorecard_deliver(scorecard=scorecard) == ["eve@example.com"]
    assert len(mail.outbox) == 1


def test_nothing_is_recorded_when_nobody_would_receive_it(db):
    program = ProgramFactory()
    scorecard, _ = services.scorecard_generate(program=program)
    assert services.scorecard_deliver(scorecard=scorecard) == []
    scorecard.refresh_from_db()
    assert scorecard.delivered_at is None
    assert mail.outbox == []


# --- the monthly job --------------------------------------------------------------------------------------


def test_the_scorecard_task_run_twice_stores_one_scorecard_and_sends_one_email(team):
    first = tasks.scorecard_program.delay(program_id=team.program.pk, period="2026-10").get()
    second = tasks.scorecard_program.delay(program_id=team.program.pk, period="2026-10").get()
    assert first == second
    scorecard = Scorecard.objects.get()
    assert (scorecard.period, scorecard.trigger, scorecard.as_of) == (
        "2026-10",
        "schedule",
        date(2026, 10, 31),
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["eve@example.com"]


def test_the_monthly_job_covers_the_month_before_for_active_programs(
    team, django_capture_on_commit_callbacks
):
    Program.objects.filter(pk=team.other_program.pk).update(status=Program.Status.DRAFT)
    for _ in range(2):  # a second beat tick finds every scorecard stored and delivered
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.scorecards_monthly.delay().get() == 1
    period = services.scorecard_period(timezone.localdate())
    assert list(Scorecard.objects.values_list("program__key", "period")) == [("alpha", period)]
    assert len(mail.outbox) == 1


def test_the_monthly_job_skips_a_program_that_had_not_started_by_then(
    team, django_capture_on_commit_callbacks
):
    Program.objects.filter(pk=team.other_program.pk).update(status=Program.Status.DRAFT)
    Program.objects.filter(pk=team.program.pk).update(start_date=timezone.localdate() + timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.scorecards_monthly.delay().get() == 0
    assert not Scorecard.objects.exists()


@pytest.mark.parametrize(
    ("today", "period", "last_day"),
    [(date(2026, 12, 1), "2026-11", date(2026, 11, 30)), (date(2027, 1, 15), "2026-12", date(2026, 12, 31))],
)
def test_a_run_covers_the_month_before(today, period, last_day):
    assert services.scorecard_period(today) == period
    assert services.period_last_day(period) == last_day


def test_scorecard_tasks_run_on_the_reports_queue_monthly():
    from django.conf import settings

    from cairn.celery import app

    for name in ("scorecards.tasks.scorecards_monthly", "scorecards.tasks.scorecard_program"):
        assert app.amqp.router.route({}, name)["queue"].name == "reports"
    assert app.amqp.router.route({}, "scorecards.tasks.snapshot_program")["queue"].name == "default"
    schedule = settings.CELERY_BEAT_SCHEDULE["scorecards-monthly"]
    assert schedule["task"] == "scorecards.tasks.scorecards_monthly"
    assert schedule["schedule"].day_of_month == {1}
    assert tasks.scorecard_program.time_limit > tasks.scorecard_program.soft_time_limit


def test_start_up_stops_on_a_scorecard_day_not_in_every_month():
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "cairn.settings",
            "DEBUG": "true",
            "CAIRN_SCORECARD_DAY": "31",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CAIRN_SCORECARD_DAY must be 1–28" in result.stderr


# --- the API ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "rows"),
    [("manager", 1), ("executive", 1), ("auditor", 1), ("contributor", 0), ("outsider", 0)],
)
def test_the_list_shows_scorecards_to_executives_managers_and_auditors(team, scorecard, persona, rows):
    response = api(team.user(persona)).get("/api/v1/scorecards/?program=alpha")
    assert response.status_code == 200
    assert len(response.json()["results"]) == rows
    if rows:
        [row] = response.json()["results"]
        assert (row["program"], row["sha256"], row["level"], row["trigger"]) == (
            "alpha",
            scorecard.sha256,
            0,
            "manual",
        )
        assert row["pdf_url"].endswith(f"/api/v1/scorecards/{scorecard.pk}/pdf/")


@pytest.mark.parametrize(
    ("persona", "status"),
    [("manager", 200), ("executive", 200), ("auditor", 200), ("contributor", 403), ("outsider", 404)],
)
def test_the_pdf_downloads_for_readers_only(team, scorecard, persona, status):
    client = api(team.user(persona))
    response = client.get(f"/api/v1/scorecards/{scorecard.pk}/pdf/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == status
    assert client.get(f"/api/v1/scorecards/{scorecard.pk}/").status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-SHA256"] == scorecard.sha256
        assert hashlib.sha256(response.content).hexdigest() == scorecard.sha256
        assert f'filename="alpha-scorecard-{scorecard.as_of}.pdf"' in response["Content-Disposition"]


def test_anonymous_callers_get_nothing(team, scorecard):
    assert api().get("/api/v1/scorecards/").status_code in (401, 403)
    assert api().get(f"/api/v1/scorecards/{scorecard.pk}/pdf/").status_code in (401, 403)
    assert api().post("/api/v1/scorecards/", {"program": "alpha"}).status_code in (401, 403)


def test_a_manager_generates_over_the_api_once_per_day(team):
    client = api(team.manager)
    created = client.post("/api/v1/scorecards/", {"program": "alpha"})
    assert created.status_code == 201, created.content
    assert created.json()["trigger"] == "api"
    assert created.json()["generated_by"] == "maria"
    again = client.post("/api/v1/scorecards/", {"program": "alpha"})
    assert (again.status_code, again.json()["id"]) == (200, created.json()["id"])
    past = client.post("/api/v1/scorecards/", {"program": "alpha", "as_of": "2026-01-31"})
    assert past.status_code == 201
    assert past.json()["as_of"] == "2026-01-31"


@pytest.mark.parametrize(
    ("persona", "status"), [("contributor", 403), ("executive", 403), ("auditor", 403), ("outsider", 400)]
)
def test_only_managers_generate_over_the_api(team, persona, status):
    response = api(team.user(persona)).post("/api/v1/scorecards/", {"program": "alpha"})
    assert response.status_code == status
    assert not Scorecard.objects.exists()


def test_the_api_refuses_a_future_date(team):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = api(team.manager).post("/api/v1/scorecards/", {"program": "alpha", "as_of": tomorrow})
    assert response.status_code == 400
    assert "as_of" in response.json()


@pytest.mark.parametrize("as_of", ["0001-01-02", "2025-12-31"], ids=["year-1", "before-start"])
def test_the_api_refuses_a_date_before_the_program_and_writes_nothing(team, as_of):
    response = api(team.manager).post("/api/v1/scorecards/", {"program": "alpha", "as_of": as_of})
    assert response.status_code == 400
    assert list(response.json()) == ["as_of"]
    assert not Snapshot.objects.exists()
    assert not Scorecard.objects.exists()


@pytest.mark.parametrize(("how", "status"), [("missing", 404), ("changed", 409)])
def test_the_api_says_what_is_wrong_with_a_stored_pdf(team, scorecard, how, status):
    message = break_file(scorecard, how)
    for accept in ("application/pdf", "application/json"):
        response = api(team.auditor).get(f"/api/v1/scorecards/{scorecard.pk}/pdf/", HTTP_ACCEPT=accept)
        assert response.status_code == status
        assert json.loads(response.content) == {"detail": message}


def test_the_list_runs_a_constant_number_of_queries(team, django_assert_num_queries):
    client = api(team.auditor)
    # Generated by a person, so a query per row for `generated_by` would show.
    services.scorecard_generate(program=team.program, period="2026-01", by=team.manager)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get("/api/v1/scorecards/").json()["results"]) == 1
    for month in range(2, 7):
        services.scorecard_generate(program=team.program, period=f"2026-{month:02d}", by=team.manager)
    with django_assert_num_queries(len(one.captured_queries)):
        results = client.get("/api/v1/scorecards/").json()["results"]
    assert [row["generated_by"] for row in results] == ["maria"] * 6


# --- the admin --------------------------------------------------------------------------------------------


def admin_client(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def test_a_manager_generates_from_the_program_page(team):
    client = admin_client(team.manager)
    page = client.get(reverse("admin:roadmap_program_change", args=[team.program.pk])).content.decode()
    url = reverse("admin:roadmap_program_generate_scorecard", args=[team.program.pk])
    assert url in page
    assert client.get(url).status_code == 200
    response = client.post(url, {"as_of": "2026-02-28"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"?program__id__exact={team.program.pk}")
    scorecard = Scorecard.objects.get()
    assert (scorecard.as_of, scorecard.trigger, scorecard.generated_by) == (
        date(2026, 2, 28),
        "manual",
        team.manager,
    )
    listing = client.get(response["Location"]).content.decode()
    assert reverse("admin:scorecards_scorecard_pdf", args=[scorecard.pk]) in listing


def test_generating_in_the_admin_needs_the_csrf_token_and_a_valid_date(team):
    url = reverse("admin:roadmap_program_generate_scorecard", args=[team.program.pk])
    assert admin_client(team.manager, csrf=True).post(url, {}).status_code == 403
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    response = admin_client(team.manager).post(url, {"as_of": future})
    assert response.status_code == 200
    assert "in the future" in response.content.decode()
    assert not Scorecard.objects.exists()


def test_generating_in_the_admin_refuses_a_date_before_the_program(team):
    url = reverse("admin:roadmap_program_generate_scorecard", args=[team.program.pk])
    response = admin_client(team.manager).post(url, {"as_of": "0001-01-02"})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "as_of": ["0001-01-02 is before the program started (2026-01-01)."]
    }
    assert not Snapshot.objects.exists()
    assert not Scorecard.objects.exists()


@pytest.mark.parametrize(("persona", "status"), [("contributor", 403), ("auditor", 403), ("outsider", 404)])
def test_others_cannot_generate_in_the_admin(team, persona, status):
    client = admin_client(team.user(persona))
    url = reverse("admin:roadmap_program_generate_scorecard", args=[team.program.pk])
    assert client.get(url).status_code == status
    assert client.post(url, {}).status_code == status
    assert not Scorecard.objects.exists()
    if status == 403:
        page = client.get(reverse("admin:roadmap_program_change", args=[team.program.pk])).content.decode()
        assert url not in page


@pytest.mark.parametrize(
    ("persona", "status"), [("manager", 200), ("auditor", 200), ("contributor", 403), ("outsider", 404)]
)
def test_the_admin_download_checks_access(team, scorecard, persona, status):
    response = admin_client(team.user(persona)).get(
        reverse("admin:scorecards_scorecard_pdf", args=[scorecard.pk])
    )
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"
        assert hashlib.sha256(response.content).hexdigest() == scorecard.sha256


@pytest.mark.parametrize(("how", "status"), [("missing", 404), ("changed", 409)])
def test_the_admin_download_says_what_is_wrong_with_a_stored_pdf(team, scorecard, how, status):
    message = break_file(scorecard, how)
    response = admin_client(team.manager).get(reverse("admin:scorecards_scorecard_pdf", args=[scorecard.pk]))
    assert response.status_code == status
    assert response.content.decode() == message


def test_the_admin_download_sends_executives_and_anonymous_users_to_sign_in(team, scorecard):
    url = reverse("admin:scorecards_scorecard_pdf", args=[scorecard.pk])
    for client in (admin_client(team.executive), Client()):  # executives are not staff: they use the API
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(("persona", "rows"), [("manager", 1), ("auditor", 1), ("outsider", 0)])
def test_the_admin_list_shows_only_readable_scorecards(team, scorecard, persona, rows):
    response = admin_client(team.user(persona)).get(reverse("admin:scorecards_scorecard_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows


def test_contributors_have_no_scorecard_list_in_the_admin(team, scorecard):
    response = admin_client(team.contributor).get(reverse("admin:scorecards_scorecard_changelist"))
    assert response.status_code == 403


# --- the command ------------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_scorecard", *args, stdout=out)
    return out.getvalue()


def test_the_command_generates_once_and_writes_the_pdf(team, tmp_path):
    output = tmp_path / "alpha.pdf"
    first = run("alpha", "--as-of", "2026-03-31", "--output", str(output))
    second = run("alpha", "--as-of", "2026-03-31")
    scorecard = Scorecard.objects.get()
    assert len(first.splitlines()) == len(second.splitlines()) == 1
    assert f"Scorecard {scorecard.pk} of alpha as of 2026-03-31; generated;" in first
    assert f"written to {output}" in first
    assert "already stored" in second
    assert hashlib.sha256(output.read_bytes()).hexdigest() == scorecard.sha256
    assert scorecard.trigger == "cli"


def test_the_command_delivers_when_asked(team):
    assert "e-mailed to 1 recipient(s)" in run("alpha", "--deliver")
    assert "not e-mailed" in run("alpha", "--deliver")
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "no program with key 'nope'"),
        (("alpha", "--as-of", "someday"), "is not an ISO date"),
        (("alpha", "--as-of", "2999-01-01"), "in the future"),
        (("alpha", "--as-of", "2025-12-31"), "before the program started"),
        (("alpha", "--output", "/nonexistent/dir/x.pdf"), "cannot write"),
    ],
    ids=["unknown-program", "bad-date", "future", "before-start", "unwritable"],
)
def test_the_command_exits_1_with_a_clear_message(team, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run(*args)
    assert caught.value.returncode == 1


def test_the_command_refuses_a_date_before_2000_and_writes_nothing(db):
    ProgramFactory(key="old", start_date=None)
    with pytest.raises(CommandError, match="0001-01-02 is before 2000-01-01") as caught:
        run("old", "--as-of", "0001-01-02")
    assert caught.value.returncode == 1
    assert not Snapshot.objects.exists()
    assert not Scorecard.objects.exists()


@pytest.mark.parametrize("how", ["missing", "changed"])
def test_the_command_exits_1_when_the_stored_pdf_cannot_be_written_out(team, scorecard, tmp_path, how):
    message = break_file(scorecard, how)
    output = tmp_path / "out.pdf"
    with pytest.raises(CommandError) as caught:
        run("alpha", "--output", str(output))
    assert caught.value.returncode == 1
    assert str(caught.value) == f"cannot write {output}: {message}"
    assert not output.exists()


def test_the_command_exits_1_when_the_mail_server_fails_and_a_rerun_delivers(team, scorecard, monkeypatch):
    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        raise SMTPException("mail server said no")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    with pytest.raises(CommandError) as caught:
        run("alpha", "--deliver")
    assert caught.value.returncode == 1
    assert (
        str(caught.value)
        == f"cannot e-mail scorecard {scorecard.pk}: mail server said no; run again to retry."
    )
    scorecard.refresh_from_db()
    assert scorecard.delivered_at is None

    monkeypatch.undo()
    assert "e-mailed to 1 recipient(s)" in run("alpha", "--deliver")


def test_the_command_exits_1_when_the_pdf_to_deliver_is_missing(team, scorecard):
    message = break_file(scorecard, "missing")
    with pytest.raises(CommandError) as caught:
        run("alpha", "--deliver")
    assert caught.value.returncode == 1
    assert str(caught.value) == f"cannot e-mail scorecard {scorecard.pk}: {message}"
    assert mail.outbox == []
