from datetime import date
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from roadmap.models import Program
from scorecards import services
from scorecards.models import Scorecard


class Command(BaseCommand):
    help = (
        "Generate the executive scorecard (PDF) of program KEY as of --as-of (an ISO date, default today) from "
        "that day's stored maturity snapshot, storing the snapshot first if the daily job has not. The scorecard "
        "is archived once per snapshot: running the command again reports the stored one. --output PATH also "
        "writes the PDF there; --deliver e-mails it to the program's executives and the strategy's distribution "
        "(once). Prints one summary line; exits 1 on an unknown program, a bad date (not ISO, in the future, before "
        "the program's start or before 2000), an unwritable output path, a stored PDF that is missing or altered, "
        "or a mail server that fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="The program's key.")
        parser.add_argument("--as-of", default="", help="ISO date, e.g. 2026-11-30 (default: today).")
        parser.add_argument("--output", default="", help="Also write the PDF to this path.")
        parser.add_argument("--deliver", action="store_true", help="E-mail it (once) to its recipients.")

    def handle(self, *args: Any, **options: Any) -> None:
        program = Program.objects.filter(key=options["key"]).first()
        if program is None:
            raise CommandError(f"no program with key {options['key']!r}.")
        as_of = None
        if options["as_of"]:
            try:
                as_of = date.fromisoformat(options["as_of"])
            except ValueError:
                raise CommandError(
                    f"--as-of {options['as_of']!r} is not an ISO date such as 2026-11-30."
                ) from None
        try:
            scorecard, created = services.scorecard_generate(
                program=program, as_of=as_of, trigger=Scorecard.Trigger.CLI
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        parts = [
            f"Scorecard {scorecard.pk} of {program.key} as of {scorecard.as_of.isoformat()}",
            "generated" if created else "already stored",
            f"level {scorecard.snapshot.level}, score {scorecard.snapshot.score}",
            f"{scorecard.pages} pages, sha256 {scorecard.sha256[:16]}",
        ]
        if options["output"]:
            path = Path(options["output"])
            try:
                path.write_bytes(services.scorecard_content(scorecard=scorecard))
            except services.ScorecardFileError as exc:
                raise CommandError(f"cannot write {path}: {exc}") from None
            except OSError as exc:
                raise CommandError(f"cannot write {path}: {exc.strerror}.") from None
            parts.append(f"written to {path}")
        if options["deliver"]:
            try:
                sent = services.scorecard_deliver(scorecard=scorecard)
            except services.ScorecardFileError as exc:
                raise CommandError(f"cannot e-mail scorecard {scorecard.pk}: {exc}") from None
            except services.DELIVERY_ERRORS as exc:
                # The claim is released: running the command again (or the monthly task) retries the delivery.
                reason = str(exc) or type(exc).__name__
                raise CommandError(
                    f"cannot e-mail scorecard {scorecard.pk}: {reason}; run again to retry."
                ) from None
            parts.append(
                f"e-mailed to {len(sent)} recipient(s)"
                if sent
                else "not e-mailed (sent before, or nobody to send to)"
            )
        self.stdout.write("; ".join(parts) + ".")
