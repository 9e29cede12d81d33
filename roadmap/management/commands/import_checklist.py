import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cairn.lib.commands import active_user, read_input
from roadmap.checklists import FORMATS, ChecklistFileError, builtin_mappings, import_run_start
from roadmap.models import Program

ERRORS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import checklist items into a program from a CSV, XLSX, JSON or YAML file (PATH, or - for standard input "
        "with --format). Rows are matched by key, or by section path and title; re-importing the same file "
        "changes nothing. Any invalid row rejects the whole file unless --commit-valid is given; --dry-run "
        "reports without writing; --json prints one JSON object. Exits 1 when any row is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="File to import, or - for standard input.")
        parser.add_argument("--program", required=True, help="Key of the program to import into.")
        parser.add_argument(
            "--mapping",
            default="",
            help=f"Built-in mapping ({', '.join(builtin_mappings())}) or a YAML file.",
        )
        parser.add_argument(
            "--format", default="", choices=["", *FORMATS], help="Default: from the file name."
        )
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--commit-valid", action="store_true", help="Import the valid rows, report the rest."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as one JSON object.")
        parser.add_argument(
            "--user", default="", help="Import as this user (checks permissions, signs history)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_json = options["json"]
        try:
            program = Program.objects.filter(key=options["program"]).first()
            if program is None:
                raise CommandError(f"no program with key {options['program']!r}.")
            data, name = read_input(options["path"])
            _, report = import_run_start(
                program=program,
                data=data,
                source_name=name,
                file_format=options["format"],
                by=active_user(options["user"]),
                mapping=options["mapping"],
                dry_run=options["dry_run"],
                commit_valid=options["commit_valid"],
                inline=True,
            )
            assert report is not None  # inline runs report
        except (ChecklistFileError, PermissionDenied, CommandError) as exc:
            if as_json:
                self.stdout.write(json.dumps({"error": str(exc), "row": getattr(exc, "row", None)}))
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            for line in report.summary_lines():
                self.stdout.write(line)
            for error in report.errors[:ERRORS_SHOWN]:
                self.stdout.write(f"  row {error.row}, {error.column} {error.value!r}: {error.message}")
            if len(report.errors) > ERRORS_SHOWN:
                self.stdout.write(
                    f"  … and {len(report.errors) - ERRORS_SHOWN} more errors (use --json for all)."
                )
        if report.invalid:
            raise CommandError(f"{report.invalid} invalid row(s).")
