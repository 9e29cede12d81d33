"""Document-control reminders: what is due, sent exactly once, caught up after missed days, and to whom."""

from __future__ import annotations

import io
import json
import smtplib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance import reminders, tasks
from governance.models import (
    Acknowledgement,
    ControlledDocument,
    DocumentVersion,
    ReminderLog,
    Review,
    Waiver,
)
from roadmap.models import ChecklistItem, Program
from strategy.services import strategy_import
from tests.factories import ItemFactory, UserFactory, member

pytestmark = pytest.mark.django_db

STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)
DAY1 = date(2026, 3, 2)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
DAY4 = DAY1 + timedelta(days=3)
# Documents, acknowledgements, waivers, items, memberships and the sent-log: one query each.
QUERIES_FOR_DUE_REMINDERS = 6


def at_noon(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(12)))


def document(program: Program, *, due: date | None, **fields: Any) -> ControlledDocument:
    fields.setdefault("title", f"Policy due {due}")
    return ControlledDocument.objects.create(
        program=program, doc_type=ControlledDocument.Type.POLICY, next_review_due=due, **fields
    )


def version(doc: ControlledDocument, state: str = DocumentVersion.State.EFFECTIVE) -> DocumentVersion:
    return DocumentVersion.objects.create(
        document=doc, label="1.0", state=state, source_text="# Policy", sha256="0" * 64
    )


def acknowledgement(of: DocumentVersion, user: Any, *, requested_on: date) -> Acknowledgement:
    ack = Acknowledgement.objects.create(version=of, user=user)
    Acknowledgement.objects.filter(pk=ack.pk).update(
        requested_at=at_noon(requested_on)
    )  # set, not auto_now_add
    return ack


def waiver(item: ChecklistItem, *, requested_by: Any, approved_by: Any, expires_on: date) -> Waiver:
    return Waiver.objects.create(
        program=item.program,
        item=item,
        type=Waiver.Type.RISK_ACCEPTED,
        reason="Compensating control in place.",
        requested_by=requested_by,
        approved_by=approved_by,
        approved_at=at_noon(expires_on - timedelta(days=90)),
        expires_at=at_noon(expires_on),
    )


def sent(reminder_list: list[reminders.Reminder]) -> set[tuple[str, str, str]]:
    return {(r.kind, r.object_key, r.recipient.username) for r in reminder_list}


def log_rows() -> set[tuple[str, str, str]]:
    return set(ReminderLog.objects.values_list("kind", "object_key", "recipient__username"))


def outbox() -> list[tuple[str, str]]:
    return sorted((message.to[0], message.subject) for message in mail.outbox)


# --- the corpus strategy ---------------------------------------------------------------------------------


def test_it_reports_the_corpus_strategy_overdue_without_writing_in_a_dry_run():
    strategy_import(data=STRATEGY.read_bytes(), by=None)
    program = Program.objects.get()
    manager = member(program, "manager", "cco")
    manager.email = "cco@example.com"
    manager.save()
    doc = ControlledDocument.objects.get(program=program)
    assert doc.next_review_due == date(2025, 3, 1)  # "Next Review: March 2025"
    # The header's "Review Date: March 2025" is the same scheduled review, not one held on its due date; read
    # as last_reviewed_on it makes the document look reviewed and this test fails (see the report).

    out = io.StringIO()
    call_command("send_reminders", "--dry-run", "--json", "--today", "2026-11-28", stdout=out)

    report = json.loads(out.getvalue())
    assert report["today"] == "2026-11-28"
    assert report["dry_run"] is True
    assert report["sent"] == 0
    assert report["reminders"] == [
        {
            "kind": "review_overdue",
            "object": f"document:{doc.pk}",
            "recipient": "cco",
            "due_on": "2025-03-01",
        },
        {
            "kind": "review_escalation",
            "object": f"document:{doc.pk}",
            "recipient": "cco",
            "due_on": "2025-03-15",
        },
    ]
    assert not ReminderLog.objects.exists()
    assert mail.outbox == []


# --- caught up, never skipped, never twice ---------------------------------------------------------------


def test_it_catches_up_missed_days_and_sends_each_reminder_once(team):
    carla, maria, eve = team.contributor, team.manager, team.executive
    item_day1 = ItemFactory(section=team.section, owner=carla, due_date=DAY1)
    item_day2 = ItemFactory(section=team.section, owner=maria, due_date=DAY2)
    item_day4 = ItemFactory(section=team.section, owner=carla, due_date=DAY4)
    ItemFactory(section=team.section, owner=carla, due_date=DAY1, status=ChecklistItem.Status.DONE)
    policy = document(team.program, due=date(2027, 1, 1))
    ack = acknowledgement(version(policy), eve, requested_on=DAY3 - timedelta(days=14))
    waiver_day3 = waiver(
        team.owned_item, requested_by=carla, approved_by=maria, expires_on=DAY3 + timedelta(days=14)
    )
    waiver_day4 = waiver(
        team.owned_item, requested_by=carla, approved_by=maria, expires_on=DAY4 + timedelta(days=14)
    )

    # The worker was down on days 1 and 2; day 3 sends everything due so far.
    first = reminders.reminders_send(today=DAY3)

    due_by_day3 = {
        ("item_past_due", f"item:{item_day1.pk}", "carla"),
        ("item_past_due", f"item:{item_day2.pk}", "maria"),
        ("acknowledgement_overdue", f"acknowledgement:{ack.pk}", "eve"),
        ("waiver_expiring", f"waiver:{waiver_day3.pk}", "carla"),
        ("waiver_expiring", f"waiver:{waiver_day3.pk}", "maria"),
    }
    assert sent(first) == due_by_day3
    assert len(mail.outbox) == 5
    assert log_rows() == due_by_day3
    assert [r.due_on for r in first] == [DAY1, DAY2, DAY3, DAY3, DAY3]

    assert reminders.reminders_send(today=DAY3) == []
    assert len(mail.outbox) == 5

    fourth = reminders.reminders_send(today=DAY4)
    assert sent(fourth) == {
        ("item_past_due", f"item:{item_day4.pk}", "carla"),
        ("waiver_expiring", f"waiver:{waiver_day4.pk}", "carla"),
        ("waiver_expiring", f"waiver:{waiver_day4.pk}", "maria"),
    }
    assert len(mail.outbox) == 8
    assert ReminderLog.objects.count() == 8
    assert reminders.reminders_send(today=DAY4) == []
    assert len(mail.outbox) == 8


def test_it_writes_a_plain_text_mail_naming_the_object_dates_and_link(team):
    item = ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1, title="Enable MFA")

    reminders.reminders_send(today=DAY2)

    [message] = mail.outbox
    assert message.to == ["carla@example.com"]
    assert "Enable MFA" in message.subject
    assert "2026-03-02" in message.subject
    assert "Due: 2026-03-02" in message.body
    assert f"/admin/roadmap/checklistitem/{item.pk}/change/" in message.body
    assert message.content_subtype == "plain"


def test_it_sends_nothing_and_records_nothing_in_a_dry_run(team):
    ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1)

    would = reminders.reminders_send(today=DAY1, dry_run=True)

    assert len(would) == 1
    assert mail.outbox == []
    assert not ReminderLog.objects.exists()
    assert len(reminders.reminders_send(today=DAY1)) == 1


def test_it_retries_a_reminder_whose_mail_failed_on_the_next_run(team, monkeypatch):
    ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1)
    ItemFactory(section=team.section, owner=team.manager, due_date=DAY1)
    real_send_mail = reminders.send_mail

    def refuse_maria(subject: str, body: str, sender: str, to: list[str], **kwargs: Any) -> int:
        if to == ["maria@example.com"]:
            raise smtplib.SMTPRecipientsRefused({"maria@example.com": (450, b"mailbox busy")})
        return real_send_mail(subject, body, sender, to, **kwargs)

    monkeypatch.setattr(reminders, "send_mail", refuse_maria)
    first = reminders.reminders_send(today=DAY1)
    assert [r.recipient.username for r in first] == ["carla"]
    assert [m.to for m in mail.outbox] == [["carla@example.com"]]
    assert set(ReminderLog.objects.values_list("recipient__username", flat=True)) == {"carla"}

    monkeypatch.setattr(reminders, "send_mail", real_send_mail)
    second = reminders.reminders_send(today=DAY2)
    assert [r.recipient.username for r in second] == ["maria"]
    assert [m.to for m in mail.outbox] == [["carla@example.com"], ["maria@example.com"]]
    assert ReminderLog.objects.count() == 2


def test_it_skips_a_reminder_another_sender_already_claimed(team):
    item = ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1)
    [due] = reminders.reminders_due(today=DAY1)
    # What a concurrent worker leaves behind between our selection and our insert.
    ReminderLog.objects.create(
        object_key=f"item:{item.pk}", kind=due.kind, offset_days=0, recipient=team.contributor, due_on=DAY1
    )

    assert reminders._claim(due) is False
    assert ReminderLog.objects.count() == 1


def test_it_reminds_again_when_the_due_date_moves_to_a_new_cycle(team):
    policy = document(team.program, due=DAY1)
    assert sent(reminders.reminders_send(today=DAY1)) == {
        ("review_overdue", f"document:{policy.pk}", "maria")
    }

    next_year = date(2027, 3, 2)
    ControlledDocument.objects.filter(pk=policy.pk).update(last_reviewed_on=DAY1, next_review_due=next_year)
    assert reminders.reminders_send(today=DAY1 + timedelta(days=30)) == []

    again = reminders.reminders_send(today=next_year)
    assert sent(again) == {("review_overdue", f"document:{policy.pk}", "maria")}
    overdue = ReminderLog.objects.get(kind="review_overdue")
    assert overdue.due_on == next_year  # the same row, claimed for the new cycle
    assert reminders.reminders_send(today=next_year) == []


# --- what is due, for each kind --------------------------------------------------------------------------


def test_it_warns_of_a_review_due_soon_then_overdue_then_escalates(team):
    approver = member(team.program, "executive", "ceo")
    due = date(2026, 6, 1)
    policy = document(team.program, due=due, approver_user=approver)
    key = f"document:{policy.pk}"

    assert reminders.reminders_due(today=due - timedelta(days=15)) == []
    assert sent(reminders.reminders_send(today=due - timedelta(days=14))) == {
        ("review_due_soon", key, "maria"),
        ("review_due_soon", key, "ceo"),
    }
    assert sent(reminders.reminders_send(today=due)) == {
        ("review_overdue", key, "maria"),
        ("review_overdue", key, "ceo"),
    }
    assert reminders.reminders_send(today=due + timedelta(days=13)) == []
    assert sent(reminders.reminders_send(today=due + timedelta(days=14))) == {
        ("review_escalation", key, "ceo")
    }


def test_it_escalates_to_the_managers_when_the_document_has_no_approver(team):
    policy = document(team.program, due=DAY1)

    due = reminders.reminders_due(today=DAY1 + timedelta(days=14))

    assert ("review_escalation", f"document:{policy.pk}", "maria") in sent(due)


def test_it_does_not_chase_a_review_recorded_after_its_due_date(team):
    document(team.program, due=DAY1, last_reviewed_on=DAY2)
    document(team.program, due=None)

    assert reminders.reminders_due(today=DAY4) == []


def test_a_review_date_equal_to_the_due_date_is_a_plan_not_a_review(team):
    # "Review Date: March 2025" beside "Next Review: March 2025" (the corpus strategy) schedules a review.
    document(team.program, due=DAY1, last_reviewed_on=DAY1)

    assert {reminder.kind for reminder in reminders.reminders_due(today=DAY4)} >= {"review_overdue"}


def test_it_only_chases_acknowledgements_of_the_effective_version(team):
    policy = document(team.program, due=date(2027, 1, 1))
    requested = DAY1 - timedelta(days=14)
    current = acknowledgement(version(policy), team.executive, requested_on=requested)
    acknowledgement(version(policy, DocumentVersion.State.SUPERSEDED), team.auditor, requested_on=requested)
    done = acknowledgement(version(document(team.program, due=None)), team.auditor, requested_on=requested)
    Acknowledgement.objects.filter(pk=done.pk).update(acknowledged_at=at_noon(DAY1))

    assert reminders.reminders_due(today=DAY1 - timedelta(days=1)) == []
    assert sent(reminders.reminders_due(today=DAY1)) == {
        ("acknowledgement_overdue", f"acknowledgement:{current.pk}", "eve")
    }


def test_it_warns_of_an_approved_waiver_expiring_until_it_expires(team):
    expires = date(2026, 7, 1)
    live = waiver(
        team.owned_item, requested_by=team.contributor, approved_by=team.manager, expires_on=expires
    )
    revoked = waiver(
        team.owned_item, requested_by=team.contributor, approved_by=team.manager, expires_on=expires
    )
    Waiver.objects.filter(pk=revoked.pk).update(revoked_at=at_noon(DAY1))
    pending = waiver(team.owned_item, requested_by=team.contributor, approved_by=None, expires_on=expires)
    Waiver.objects.filter(pk=pending.pk).update(approved_at=None)

    assert reminders.reminders_due(today=expires - timedelta(days=15)) == []
    assert {r.object_key for r in reminders.reminders_due(today=expires - timedelta(days=14))} == {
        f"waiver:{live.pk}"
    }
    assert reminders.reminders_due(today=expires) == []  # expired: too late to warn


def test_it_reminds_owners_of_active_unfinished_items_only(team):
    ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1, archived_at=at_noon(DAY1))
    ItemFactory(section=team.section, owner=None, due_date=DAY1)
    ItemFactory(
        section=team.section,
        owner=team.contributor,
        due_date=DAY1,
        status=ChecklistItem.Status.NOT_APPLICABLE,
        status_reason="Out of scope",
    )
    ItemFactory(section=team.section, owner=team.contributor, due_date=DAY2)
    blocked = ItemFactory(
        section=team.section,
        owner=team.contributor,
        due_date=DAY1,
        status=ChecklistItem.Status.BLOCKED,
        status_reason="Waiting on vendor",
    )

    assert sent(reminders.reminders_due(today=DAY1)) == {("item_past_due", f"item:{blocked.pk}", "carla")}


def test_it_sends_nothing_for_a_closed_program(team):
    ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1)
    document(team.program, due=DAY1)
    Program.objects.filter(pk=team.program.pk).update(status=Program.Status.CLOSED)

    assert reminders.reminders_due(today=DAY4) == []


# --- who hears about it ----------------------------------------------------------------------------------


def test_it_skips_recipients_without_email_inactive_or_outside_the_program(team):
    team.manager.email = ""
    team.manager.save()
    gone = member(team.program, "manager", "gone")
    gone.is_active = False
    gone.save()
    mona = member(team.program, "manager", "mona")
    policy = document(team.program, due=DAY1, approver_user=team.outsider)
    ItemFactory(section=team.section, owner=team.outsider, due_date=DAY1)  # an owner left without membership
    ItemFactory(section=team.section, owner=gone, due_date=DAY1)
    risky = waiver(team.owned_item, requested_by=team.contributor, approved_by=team.outsider, expires_on=DAY4)

    due = reminders.reminders_send(today=DAY1 + timedelta(days=14))

    key = f"document:{policy.pk}"
    assert sent(due) == {
        ("review_overdue", key, "mona"),
        ("review_escalation", key, "mona"),  # the approver cannot see the program: its managers hear instead
    }
    assert sent(reminders.reminders_due(today=DAY4 - timedelta(days=1))) == {
        ("waiver_expiring", f"waiver:{risky.pk}", "carla")
    }
    recipients = {message.to[0] for message in mail.outbox}
    assert recipients == {"mona@example.com"}
    assert set(ReminderLog.objects.values_list("recipient", flat=True)) == {mona.pk}


def test_it_reminds_a_superuser_approver_who_is_not_a_member(team):
    root = UserFactory(username="root", is_superuser=True)
    policy = document(team.program, due=DAY1, approver_user=root)

    due = reminders.reminders_due(today=DAY1)

    assert sent(due) == {
        ("review_overdue", f"document:{policy.pk}", "maria"),
        ("review_overdue", f"document:{policy.pk}", "root"),
    }


# --- queries ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [5, 50])
def test_it_finds_due_reminders_in_a_constant_number_of_queries(team, django_assert_num_queries, count):
    for number in range(count):
        owner = member(team.program, "contributor", f"owner{number}")
        ItemFactory(section=team.section, owner=owner, due_date=DAY1)
        policy = document(team.program, due=DAY1, approver_user=owner, title=f"Policy {number}")
        acknowledgement(version(policy), owner, requested_on=DAY1 - timedelta(days=14))
        waiver(
            team.owned_item, requested_by=owner, approved_by=team.manager, expires_on=DAY1 + timedelta(days=1)
        )
    # The day before, the waivers' and the reviews' early warnings went out: the log has rows to read.
    assert len(reminders.reminders_send(today=DAY1 - timedelta(days=1))) == count * 4

    with django_assert_num_queries(QUERIES_FOR_DUE_REMINDERS):
        due = reminders.reminders_due(today=DAY1)

    # Each: the item, the acknowledgement, the overdue review to its approver and to the manager.
    assert len(due) == count * 4


# --- reviews ---------------------------------------------------------------------------------------------


def test_it_opens_one_periodic_review_per_due_document(team):
    first = document(team.program, due=DAY1)
    effective = version(first)
    second = document(team.program, due=DAY2)
    document(team.program, due=DAY4 + timedelta(days=1))  # not due yet
    document(team.program, due=DAY1, last_reviewed_on=DAY2)  # reviewed since
    already = document(team.program, due=DAY1)
    Review.objects.create(document=already, kind=Review.Kind.PERIODIC, due_on=DAY1)

    assert reminders.periodic_reviews_open(today=DAY3) == 2
    assert reminders.periodic_reviews_open(today=DAY3) == 0

    opened = Review.objects.exclude(document=already)
    assert {(r.document_id, r.due_on, r.kind, r.state) for r in opened} == {
        (first.pk, DAY1, "periodic", "open"),
        (second.pk, DAY2, "periodic", "open"),
    }
    assert opened.get(document=first).version == effective
    # A review held for this due date is not reopened while the next date is not set yet.
    opened.filter(document=first).update(state=Review.State.DONE)
    assert reminders.periodic_reviews_open(today=DAY4) == 0


def test_it_escalates_an_overdue_periodic_review_once(team):
    policy = document(team.program, due=DAY1)
    review = Review.objects.create(document=policy, kind=Review.Kind.PERIODIC, due_on=DAY1)
    Review.objects.create(document=policy, kind=Review.Kind.AD_HOC, due_on=DAY1)

    assert reminders.reviews_escalate(today=DAY1 + timedelta(days=13)) == 0
    assert reminders.reviews_escalate(today=DAY1 + timedelta(days=14)) == 1
    assert reminders.reviews_escalate(today=DAY1 + timedelta(days=15)) == 0

    review.refresh_from_db()
    assert review.escalated_at is not None
    assert review.history.first().history_change_reason == "Escalated by the daily job"
    assert Review.objects.filter(escalated_at__isnull=False).count() == 1


# --- the doors: task and command -------------------------------------------------------------------------


def test_the_daily_task_opens_escalates_and_sends(team):
    today = timezone.localdate()
    document(team.program, due=today - timedelta(days=20))

    assert tasks.document_control_daily.delay().get() == {
        "reviews_opened": 1,
        "reviews_escalated": 1,
        "reminders_sent": 2,  # overdue and escalated, to the manager
    }
    assert tasks.document_control_daily.delay().get() == {
        "reviews_opened": 0,
        "reviews_escalated": 0,
        "reminders_sent": 0,
    }
    assert len(mail.outbox) == 2


def test_the_command_prints_one_line_per_reminder_and_a_summary(team):
    item = ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1)
    out = io.StringIO()

    call_command("send_reminders", "--today", "2026-03-02", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "item_past_due",
        f"item:{item.pk}",
        "carla",
        "<carla@example.com>",
        "due",
        "2026-03-02",
    ]
    assert lines[-1] == "1 reminder(s) sent for 2026-03-02."
    assert len(mail.outbox) == 1


def test_the_command_json_reports_what_it_sent(team):
    ItemFactory(section=team.section, owner=team.contributor, due_date=DAY1)
    out = io.StringIO()

    call_command("send_reminders", "--json", "--today", "2026-03-02", stdout=out)

    report = json.loads(out.getvalue())
    assert report["dry_run"] is False
    assert report["sent"] == 1
    assert [entry["recipient"] for entry in report["reminders"]] == ["carla"]


@pytest.mark.parametrize("text", ["2026-13-01", "28/11/2026", "tomorrow", "20261128"])
def test_the_command_refuses_a_bad_date(db, text):
    with pytest.raises(CommandError, match="YYYY-MM-DD") as raised:
        call_command("send_reminders", "--today", text, stdout=io.StringIO())

    assert raised.value.returncode == 2
    assert not ReminderLog.objects.exists()
