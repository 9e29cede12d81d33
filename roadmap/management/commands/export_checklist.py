from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from roadmap.checklists import FORMATS
from roadmap.models import Program
from roadmap.resources import checklist_export


class Command(BaseCommand):
    help = (
        "Export a program's active checklist items in the canonical columns (the same the import reads) as CSV, "
        "XLSX, JSON or YAML. Cells a spreadsheet would run as formulas are escaped with a leading apostrophe, "
        "which the import removes again. Writes to standard output unless --output is given (XLSX needs it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="Program key.")
        parser.add_argument("--format", default="csv", choices=FORMATS)
        parser.add_argument("--output", default="", help="File to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        program = Program.objects.filter(key=options["key"]).first()
        if program is None:
            raise CommandError(f"no program with key {options['key']!r}.")
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError("XLSX is binary: give --output FILE.")
        content = checklist_export(program=program, by=None, file_format=options["format"])
        if not options["output"]:
            self.stdout.write(content if isinstance(content, str) else content.decode(), ending="")
            return
        data = content.encode() if isinstance(content, str) else content
        try:
            Path(options["output"]).write_bytes(data)
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc.strerror}.") from None
        self.stderr.write(f"Wrote {program.key} to {options['output']} ({len(data):,} bytes).")
