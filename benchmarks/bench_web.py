"""The items API and the dashboard over HTTP (gunicorn, loopback) against bare Django views of the same rows.

Measured on PostgreSQL only: a web server's throughput on SQLite says nothing about a deployment. A 5,000-item
program with phases, capability areas, metrics and a manager (session and Token); each ratio is requests/s of the
real page over requests/s of its bare floor (benchmarks/urls.py), measured back to back on the same gunicorn at
the same concurrency. The query figures count one request in-process with 5,000 items against 100.
"""

from __future__ import annotations

import json
import os
import urllib.request

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from benchmarks import serve
from benchmarks.harness import Figure, ratio
from benchmarks.load import Target, load
from benchmarks.programs import add_items, scored_program
from roadmap.models import ChecklistItem, Program, ProgramMembership

# run.py skips this module, with a line saying so, on any other database.
VENDORS = ("postgresql",)

PROGRAM = "bench-web"
PASSWORD = "bench-web correct horse battery"  # noqa: S105 — a throwaway user in a throwaway database
ITEMS = 5_000
SECONDS = float(os.environ.get("BENCH_WEB_SECONDS", "12"))
CONNECTIONS = 8  # = gunicorn's 2 workers × 4 threads: every slot busy, nothing queued for long
API_PAGE = f"/api/v1/items/?program={PROGRAM}&page_size=100"
BARE_ITEMS = f"/bench/items/?program={PROGRAM}&page_size=100"
DASHBOARD = f"/programs/{PROGRAM}/"
BARE_DASHBOARD = f"/bench/dashboard/{PROGRAM}/"


def _program() -> tuple[Program, object]:
    program = scored_program(key=PROGRAM, title="Web benchmark")
    # Hashed as production hashes it: the test settings' MD5 hasher is not one the served settings accept.
    password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    manager = get_user_model().objects.create(username="bench-web-manager", password=password)
    ProgramMembership.objects.create(program=program, user=manager, role="manager")
    return program, manager


def _queries(client: Client, path: str, **headers: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, **headers)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code} in-process")
    return len(queries.captured_queries)


def _counts(manager: object, token: str) -> tuple[int, int]:
    browser = Client()
    browser.force_login(manager)
    api = _queries(Client(), API_PAGE, HTTP_AUTHORIZATION=f"Token {token}")
    dashboard = _queries(browser, DASHBOARD)
    return api, dashboard


def _requests_per_second(server: serve.Server, target: Target) -> float:
    load(server.host, server.port, [target], connections=CONNECTIONS, requests=4 * CONNECTIONS)  # warm up
    result = load(server.host, server.port, [target], connections=CONNECTIONS, duration=SECONDS)
    summary = result.summary()
    print(f"  {summary.line(target.name)}", flush=True)
    if summary.errors:
        raise RuntimeError(
            f"{target.path}: {summary.errors} errors {summary.statuses} {result.errors_seen[:3]}"
        )
    return summary.requests_per_second


def _same_rows(server: serve.Server, token: str) -> None:
    """The floor must return the very rows the API page does, or the ratio compares different work."""
    pages = []
    for path, headers in ((API_PAGE, {"Authorization": f"Token {token}"}), (BARE_ITEMS, {})):
        request = urllib.request.Request(server.url(path), headers=headers)  # noqa: S310 — http://127.0.0.1
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            pages.append([row["id"] for row in json.load(response)["results"]])
    if pages[0] != pages[1] or len(pages[0]) != 100:
        raise RuntimeError(
            f"the bare view's rows differ from the API page's: {pages[0][:5]} vs {pages[1][:5]}"
        )


def run() -> list[Figure]:
    program, manager = _program()
    token = Token.objects.create(user=manager).key
    try:
        add_items(program, start=0, total=100, owner=manager)
        small_api, small_dashboard = _counts(manager, token)
        add_items(program, start=100, total=ITEMS, owner=manager)
        large_api, large_dashboard = _counts(manager, token)
        with connection.cursor() as cursor:
            # What autovacuum does to a live database: right after a bulk insert the planner takes the tables
            # for empty and joins 5,000 items by nested loops, which no deployment would see for long.
            cursor.execute("VACUUM ANALYZE")
        with serve.gunicorn(serve.database_url(connection.settings_dict)) as server:
            cookie = server.session_cookie(manager.get_username(), PASSWORD)
            _same_rows(server, token)
            print(f"  gunicorn: {serve.WORKERS} gthread workers × {serve.THREADS} threads, "
                  f"{CONNECTIONS} connections, {SECONDS:.0f} s each, {ITEMS} items", flush=True)  # fmt: skip
            api = _requests_per_second(
                server, Target("items_api", API_PAGE, {"Authorization": f"Token {token}"})
            )
            bare_items = _requests_per_second(server, Target("bare_items", BARE_ITEMS))
            dashboard = _requests_per_second(server, Target("dashboard", DASHBOARD, {"Cookie": cookie}))
            bare_dashboard = _requests_per_second(server, Target("bare_dashboard", BARE_DASHBOARD))
    finally:
        ChecklistItem.objects.filter(program=program).delete()  # items protect their sections
        program.delete()
        manager.delete()
    return [
        Figure("items_api_page_100_vs_bare_values_view", ratio(api, bare_items), ">=", 0.3),
        Figure("dashboard_vs_bare_view", ratio(dashboard, bare_dashboard), ">=", 0.3),
        # One page of the API, and the dashboard: the same queries for 5,000 items as for 100.
        Figure("items_api_queries_page_100_5000_vs_100_items", ratio(large_api, small_api), "<=", 1),
        Figure("dashboard_queries_5000_vs_100_items", ratio(large_dashboard, small_dashboard), "<=", 1),
    ]
