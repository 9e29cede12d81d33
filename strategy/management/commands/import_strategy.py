import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cairn.lib.commands import active_user, read_input
from strategy.parser import StrategyError
from strategy.services import level_rule_from_text, strategy_import

CHANGES_SHOWN = 40


class Command(BaseCommand):
    help = (
        "Create or update a program from a markdown strategy document (PATH, or - for standard input). "
        "Re-importing changes only what the document changed: new lines are added, removed lines archived, "
        "ticked lines marked done. --dry-run reports the same without writing; --json prints one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="Markdown file to import, or - to read standard input.")
        parser.add_argument("--program", default="", help="Program key (default: derived from the title).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument("--json", action="store_true", help="Print the report as one JSON object.")
        parser.add_argument(
            "--user", default="", help="Import as this user (checks their permissions, signs the history)."
        )
        parser.add_argument(
            "--levels",
            action="append",
            default=None,
            metavar="PATTERN=LEVEL",
            help="Maturity level for items whose section path matches PATTERN (repeatable; saved on the program).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_json = options["json"]
        try:
            data, name = read_input(options["path"])
            user = active_user(options["user"])
            rules = [level_rule_from_text(text) for text in options["levels"]] if options["levels"] else None
            report = strategy_import(
                data=data,
                by=user,
                program_key=options["program"],
                dry_run=options["dry_run"],
                source_name=name,
                level_rules=rules,
            )
        except (StrategyError, PermissionDenied, CommandError) as exc:
            line = getattr(exc, "line", None)
            if as_json:
                self.stdout.write(json.dumps({"error": str(exc), "line": line}))
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        for line in report.summary_lines():
            self.stdout.write(line)
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        shown = report.changes if options["verbosity"] > 1 else report.changes[:CHANGES_SHOWN]
        for change in shown:
            self.stdout.write(f"  {change}")
        if len(shown) < len(report.changes):
            self.stdout.write(f"  … and {len(report.changes) - len(shown)} more (use -v 2 to list all).")
        if report.dry_run:
            self.stdout.write(self.style.NOTICE("Dry run: nothing was written."))
