from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from metrics.demo import demo_metrics_load
from roadmap.demo import EXAMPLE_KEY
from roadmap.models import Program


class Command(BaseCommand):
    help = (
        "Demo mode only (CAIRN_DEMO=true): give the example program three metrics (two with twelve weeks of "
        "values, one not yet measurable) and an http_check source on this server's login page, to try "
        "'Run now'. Run it after load_demo; running it again changes nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("load_demo_metrics is for the demo; set CAIRN_DEMO=true to allow it.")
        program = Program.objects.filter(key=EXAMPLE_KEY).first()
        if program is None:
            raise CommandError(f"no example program {EXAMPLE_KEY!r}: run load_demo first.")
        created = demo_metrics_load(program)
        self.stdout.write(
            f"example metrics for {program.key}: {'loaded' if created else 'already present'} "
            f"({program.metrics.count()} metrics, {program.evidence_sources.count()} evidence source)"
        )
