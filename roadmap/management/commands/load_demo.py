from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from roadmap.demo import demo_users_create, example_program_load


class Command(BaseCommand):
    help = (
        "Demo mode only (CAIRN_DEMO=true): create the users manager, contributor, executive and auditor with "
        "random passwords printed once, and load the example program from fixtures/example_program.yaml. "
        "Running it again changes nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Give the demo users new passwords and print them."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError(
                "load_demo creates accounts with known passwords; set CAIRN_DEMO=true to allow it."
            )
        for user in demo_users_create(reset_passwords=options["reset_passwords"]):
            if user.password:
                self.stdout.write(f"demo user {user.username} ({user.role}): password {user.password}")
            else:
                self.stdout.write(f"demo user {user.username} ({user.role}): exists, password unchanged")
        program, created = example_program_load()
        state = "loaded" if created else "already present"
        self.stdout.write(
            f"example program {program.key}: {state} ({program.items.count()} items, {program.phases.count()} phases)"
        )
