import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics import services
from metrics.models import CollectionRun, EvidenceSource
from roadmap.models import Program


class Command(BaseCommand):
    help = (
        "Run evidence sources now, outside their schedule, concurrently: every enabled pull source, those of "
        "--program KEY, or the one --source ID. Prints one line per run (or --json: a list of runs). Each run "
        "records its measurement and evidence like a scheduled one. Exits 1 when a run ended in an error or "
        "timeout (a failed check is a result, not an error) or when nothing matched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--program", default="", help="Key of a program: only its sources.")
        parser.add_argument("--source", type=int, default=None, help="Id of one source.")
        parser.add_argument("--json", action="store_true", help="Print the runs as a JSON list.")

    def handle(self, *args: Any, **options: Any) -> None:
        program = None
        if options["program"]:
            program = Program.objects.filter(key=options["program"]).first()
            if program is None:
                raise CommandError(f"no program with key {options['program']!r}.")
        if options["source"] is not None:
            sources = [
                source
                for source in EvidenceSource.objects.filter(pk=options["source"]).select_related("program")
                if program is None or source.program_id == program.pk
            ]
            if not sources:
                raise CommandError(
                    f"no evidence source with id {options['source']}"
                    + (f" in program {program.key}." if program else ".")
                )
            if sources[0].kind == EvidenceSource.Kind.PUSH:
                raise CommandError(f"source {sources[0].pk} is a push source: systems post to it.")
        else:
            sources = services.program_sources(program)
            if not sources:
                raise CommandError("no enabled pull sources to run.")
        runs = services.sources_collect_now(sources=sources, by=None)
        if options["json"]:
            self.stdout.write(json.dumps([_run_json(run) for run in runs]))
        else:
            for run in runs:
                self.stdout.write(_run_line(run))
        broken = [
            run for run in runs if run.status in (CollectionRun.Status.ERROR, CollectionRun.Status.TIMEOUT)
        ]
        summary = f"{len(runs)} run(s): " + ", ".join(
            f"{sum(1 for run in runs if run.status == status)} {status}"
            for status in CollectionRun.FINISHED
            if any(run.status == status for run in runs)
        )
        if broken:
            raise CommandError(summary)
        if not options["json"]:
            self.stdout.write(summary)


def _run_json(run: CollectionRun) -> dict[str, Any]:
    return {
        "run": run.pk,
        "source": run.source_id,
        "name": run.source.name,
        "status": run.status,
        "passed": run.passed,
        "value": str(run.value) if run.value is not None else None,
        "attempts": run.attempts,
        "duration_ms": run.duration_ms,
        "error": run.error,
    }


def _run_line(run: CollectionRun) -> str:
    outcome = {True: "pass", False: "fail", None: ""}[run.passed]
    value = f" value={run.value.normalize()}" if run.value is not None else ""
    error = f" — {run.error}" if run.error else ""
    return (
        f"source {run.source_id} {run.source.name}: {run.status} {outcome}{value} "
        f"({run.attempts} attempt(s), {run.duration_ms} ms){error}"
    )
