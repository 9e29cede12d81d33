from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from roadmap.models import Program
from strategy.services import strategy_export


class Command(BaseCommand):
    help = (
        "Write a program back as a markdown strategy: the last imported text with [x] for done items and the "
        "current document-control values, or an outline-built document for a program that was never imported. "
        "Prints to standard output unless --output is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="Program key.")
        parser.add_argument("--output", default="", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            program = Program.objects.get(key=options["key"])
        except Program.DoesNotExist:
            raise CommandError(f"no program with key {options['key']!r}.") from None
        text = strategy_export(program=program, by=None)
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["output"]).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc.strerror}.") from None
        self.stderr.write(f"Wrote {program.key} to {options['output']} ({len(text.splitlines())} lines).")
