import json
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from roadmap.models import Program
from scorecards import engine, services


class Command(BaseCommand):
    help = (
        "Evaluate maturity with model MMS-1. --input FILE evaluates a requirements file in the engine's JSON "
        "contract (the what-if calculator; - reads standard input). --program KEY builds the input from the "
        "database as of --as-of (default now); --save stores the day's snapshot (once per program and day). "
        "Invalid input exits with code 2 and names the requirement and field."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--input", help="A JSON requirements file, or - for standard input.")
        source.add_argument("--program", help="Key of a program to evaluate from the database.")
        parser.add_argument("--as-of", default="", help="ISO date or date-time (with --program).")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")
        parser.add_argument("--save", action="store_true", help="Store the snapshot for the as-of day.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["input"]:
            result = self._what_if(options["input"])
            extra: dict[str, Any] = {}
        else:
            result, extra = self._program(options)
        if options["json"]:
            self.stdout.write(json.dumps(result if not extra else {**result, **extra}))
            return
        self._print(result, extra)

    def _what_if(self, path: str) -> dict[str, Any]:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}.", returncode=2) from None
        try:
            return engine.evaluate(json.loads(text, parse_float=Decimal))
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not JSON: {exc}.", returncode=2) from None
        except engine.EngineError as exc:
            raise CommandError(str(exc), returncode=2) from None

    def _program(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        program = Program.objects.filter(key=options["program"]).first()
        if program is None:
            raise CommandError(f"no program with key {options['program']!r}.", returncode=2)
        as_of = self._as_of(options["as_of"])
        extra: dict[str, Any] = {}
        if options["save"]:
            snapshot, created = services.snapshot_save(program=program, day=as_of.date())
            extra["snapshot"] = {"id": snapshot.pk, "as_of": snapshot.as_of.isoformat(), "created": created}
            as_of = services.end_of_day(as_of.date())
        maturity = services.program_maturity(program=program, as_of=as_of)
        extra.update(
            {"not_measurable": maturity.not_measurable, "phases": maturity.phases, "trend": maturity.trend}
        )
        return maturity.result, extra

    def _as_of(self, text: str) -> datetime:
        if not text:
            return datetime.now(UTC)
        try:
            moment = (
                datetime.fromisoformat(text)
                if "T" in text
                else datetime.combine(date.fromisoformat(text), datetime.max.time())
            )
        except ValueError:
            raise CommandError(f"--as-of {text!r} is not an ISO date.", returncode=2) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _print(self, result: dict[str, Any], extra: dict[str, Any]) -> None:
        mark = "*" if result["level_waived"] else ""
        self.stdout.write(
            f"Level {result['level']}{mark} {result['level_name']}  index {result['index']}  score {result['score']}  "
            f"coverage {result['coverage']}  freshness {result['freshness']}  ({result['model_version']}, "
            f"inputs {result['inputs_hash'][:12]})"
        )
        if result["blocking_next_level"]:
            self.stdout.write(
                f"To reach level {result['next_level']}: {len(result['blocking_next_level'])} blocking requirement(s) "
                f"fail: {', '.join(result['blocking_next_level'][:10])}"
            )
        for area, figures in result["areas"].items():
            self.stdout.write(f"  {area}: score {figures['score']}, level {figures['level']}")
        for metric in extra.get("not_measurable", []):
            self.stdout.write(f"  not yet measurable: {metric['name']} ({metric['why']})")
        if "snapshot" in extra:
            state = "stored" if extra["snapshot"]["created"] else "already stored"
            self.stdout.write(f"Snapshot {extra['snapshot']['as_of']} {state}.")
