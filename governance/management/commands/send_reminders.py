import json
import re
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from governance.reminders import Reminder, reminders_send


class Command(BaseCommand):
    help = (
        "Send the document-control reminders due on or before today (reviews due soon, overdue and escalated; "
        "acknowledgements outstanding; waivers about to expire; checklist items past their due date) that have "
        "not been sent yet, one e-mail per reminder and recipient. Each is recorded once sent, so running it "
        "again sends nothing twice and a missed day is caught up. It does not open or escalate reviews (the "
        "daily Celery task does). --today YYYY-MM-DD runs as of that date (default: today in TIME_ZONE); "
        "--dry-run lists what would be sent and writes and sends nothing; --json prints one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--today", default="", help="Run as of this date, YYYY-MM-DD (default: today).")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be sent; record and send nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        today = self._today(options["today"])
        dry_run = options["dry_run"]
        reminders = reminders_send(today=today, dry_run=dry_run)
        if options["json"]:
            payload = {
                "today": today.isoformat(),
                "dry_run": dry_run,
                "reminders": [self._as_dict(reminder) for reminder in reminders],
                "sent": 0 if dry_run else len(reminders),
            }
            self.stdout.write(json.dumps(payload))
            return
        for reminder in reminders:
            entry = self._as_dict(reminder)
            self.stdout.write(
                f"{entry['kind']:<24} {entry['object']:<20} {entry['recipient']} <{reminder.recipient.email}> "
                f"due {entry['due_on']}"
            )
        if dry_run:
            self.stdout.write(
                self.style.NOTICE(
                    f"Dry run for {today.isoformat()}: {len(reminders)} reminder(s) would be sent; "
                    "nothing was written or sent."
                )
            )
        else:
            self.stdout.write(f"{len(reminders)} reminder(s) sent for {today.isoformat()}.")

    def _today(self, text: str) -> date:
        if not text:
            return timezone.localdate()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            raise CommandError(
                f"--today {text!r} is not a date in the form YYYY-MM-DD.", returncode=2
            ) from None

    @staticmethod
    def _as_dict(reminder: Reminder) -> dict[str, str]:
        return {
            "kind": reminder.kind,
            "object": reminder.object_key,
            "recipient": reminder.recipient.get_username(),
            "due_on": reminder.due_on.isoformat(),
        }
