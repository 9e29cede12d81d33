"""`make soak`: the dashboard and the items API under 50 concurrent connections for 60 s on gunicorn + PostgreSQL.

Not part of CI. Recreates the database named by SOAK_DATABASE_URL (default cairn_soak on the local server),
migrates it, loads the demo program and its metrics, adds SOAK_ITEMS extra items (default 3,000) and a manager
with a password and an API token, then serves it with gunicorn (benchmarks/serve.py) and drives both pages, mixed,
from one load generator. Prints requests/s, p50 and p99 latency and the error count for each; exits 1 if any
request failed (a non-2xx answer or a socket error). The database is left in place for a look afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from benchmarks import serve
from benchmarks.load import Target, load

DATABASE = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_soak")
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "50"))
EXTRA_ITEMS = int(os.environ.get("SOAK_ITEMS", "3000"))
USERNAME = "soak-manager"
PASSWORD = "soak-manager correct horse battery"  # noqa: S105 — a throwaway user in a throwaway database


def recreate_database(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    if not name or parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"SOAK_DATABASE_URL must be postgres://…/<database>, not {url!r}")
    maintenance = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"soak: database {name} recreated", flush=True)


def manage(env: dict[str, str], *args: str) -> None:
    print(f"soak: manage.py {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "manage.py", *args], cwd=serve.ROOT, env=env, check=True)  # noqa: S603


def add_items_and_manager(env: dict[str, str]) -> tuple[str, str]:
    """More items in the demo program, and a manager to sign in as; returns (program key, API token)."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from roadmap.models import ChecklistItem, Program, ProgramMembership, Section

    program = Program.objects.order_by("pk").first()
    if program is None:
        raise SystemExit("load_demo created no program")
    sections = list(Section.objects.filter(program=program).order_by("pk"))
    done_at = datetime(2026, 1, 15, tzinfo=UTC)
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program,
            section=sections[number % len(sections)],
            phase=sections[number % len(sections)].phase,
            key=f"soak-{number}",
            ref=f"S.{number}",
            order=10_000 + number,
            title=f"Soak requirement {number}: keep the evidence for this control current",
            level=1 + number % 3,
            status=ChecklistItem.Status.DONE if number % 3 else ChecklistItem.Status.NOT_STARTED,
            completed_at=done_at if number % 3 else None,
            attested_at=done_at if number % 3 else None,
        )
        for number in range(EXTRA_ITEMS)
    )
    manager = get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)
    ProgramMembership.objects.create(program=program, user=manager, role="manager")
    token = Token.objects.create(user=manager).key
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have by now on a live database
    count = ChecklistItem.objects.filter(program=program).count()
    print(f"soak: program {program.key} has {count} items; manager {USERNAME} with a token", flush=True)
    connection.close()
    return program.key, token


def main() -> int:
    recreate_database(DATABASE)
    env = serve.environment(DATABASE, CAIRN_DEMO="true")
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "load_demo")
    manage(env, "load_demo_metrics")
    key, token = add_items_and_manager(env)
    with serve.gunicorn(DATABASE) as server:
        cookie = server.session_cookie(USERNAME, PASSWORD)
        targets = [
            Target("dashboard", f"/programs/{key}/", {"Cookie": cookie}),
            Target(
                "items_api",
                f"/api/v1/items/?program={key}&page_size=100",
                {"Authorization": f"Token {token}"},
            ),
        ]
        print(
            f"soak: {CONNECTIONS} connections for {SECONDS:.0f} s on gunicorn "
            f"({serve.WORKERS} gthread workers × {serve.THREADS} threads); {os.cpu_count()} CPUs",
            flush=True,
        )
        result = load(
            server.host, server.port, targets, connections=CONNECTIONS, duration=SECONDS, timeout=120
        )
    for target in targets:
        print(f"soak {result.summary(target.name).line(target.name)}")
    total = result.summary()
    print(f"soak all: {total.line('all')}; statuses {total.statuses}")
    for error in result.errors_seen:
        print(f"soak error: {error}")
    return 1 if total.errors else 0


if __name__ == "__main__":
    sys.exit(main())
