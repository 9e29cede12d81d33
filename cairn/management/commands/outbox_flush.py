from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cairn import outbox


class Command(BaseCommand):
    help = (
        "Send to the Celery broker every background task still waiting in the outbox (asked for while the broker "
        "was unreachable), oldest first, and forget tasks sent more than a week ago. Each task is claimed before "
        "it is sent, so running this next to beat's outbox_flush tick sends nothing twice. Prints one line; exits "
        "1 when the broker is still unreachable (what was sent before that stays sent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sent = 0
        while True:
            # Everything now, even a row whose publish failed a second ago: the operator says the broker is back.
            result = outbox.flush(min_age=timedelta(0))
            sent += result.sent
            if result.error:
                raise CommandError(
                    f"{sent} task(s) sent; the broker is unreachable ({result.error}); {result.pending} task(s) "
                    "still waiting. Run this again once it is back (beat's outbox_flush also retries every 30 s)."
                )
            if result.sent == 0 or result.pending == 0:
                break
        self.stdout.write(f"{sent} task(s) sent; {result.pending} still waiting.")
