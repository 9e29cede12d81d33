"""Evidence collection: one scheduled round over 200 `http_check` sources against a local server that takes
200 ms to answer each request, against the time the same round would take one source after another.

The sequential figure is computed (200 × 200 ms = 40 s), not run: it is the least any one-at-a-time round
could take, so the ratio flatters nothing. The round is `metrics.services.collect_due`, the code beat's tick
runs: claim the slots, fetch concurrently (CAIRN_COLLECTOR_CONCURRENCY threads, 50 by default), record each
result. Its rows are written in a transaction that is rolled back, so the other benchmarks never see them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from benchmarks.harness import Figure, best_of, ratio
from metrics import services
from metrics.models import CollectionRun, EvidenceSource
from roadmap.models import Program

SOURCES = 200
ANSWER_AFTER = 0.2  # seconds the server takes for every request
SEQUENTIAL = SOURCES * ANSWER_AFTER


class SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        threading.Event().wait(ANSWER_AFTER)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class SlowServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 would drop most of 50 simultaneous connects and time the kernel's SYN retries.
    request_queue_size = 512


@contextmanager
def slow_server() -> Iterator[str]:
    server = SlowServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def _sources(url: str) -> list[EvidenceSource]:
    program = Program.objects.create(key="bench-evidence", title="Evidence benchmark")
    sources = []
    for index in range(SOURCES):
        source = EvidenceSource(
            program=program,
            name=f"Service {index:03d}",
            kind=EvidenceSource.Kind.HTTP_CHECK,
            config={"url": f"{url}?service={index}", "expected_status": [200]},
            timeout_seconds=Decimal("5"),
        )
        services.source_save(source=source, by=None)
        sources.append(source)
    return sources


def run() -> list[Figure]:
    rounds: list[list[CollectionRun]] = []

    allow_loopback = override_settings(CAIRN_COLLECTOR_ALLOWED_NETWORKS=["127.0.0.1/32"])
    with slow_server() as url, allow_loopback, transaction.atomic():
        pks = [source.pk for source in _sources(url)]

        def make_due() -> None:
            # A new slot for every repeat: the slot is the idempotency key, so the same one would run nothing.
            EvidenceSource.objects.filter(pk__in=pks).update(
                next_run_at=timezone.now() - timedelta(seconds=1)
            )

        def one_round() -> None:
            rounds.append(services.collect_due())

        wall = best_of(one_round, repeat=3, setup=make_due)
        transaction.set_rollback(True)

    for runs in rounds:
        # Timing a round in which sources failed or were skipped would time the wrong thing.
        statuses = {run.status for run in runs}
        assert len(runs) == SOURCES and statuses == {CollectionRun.Status.SUCCESS}, (len(runs), statuses)
    print(
        f"bench evidence: round of {SOURCES} sources took {wall:.2f} s with "
        f"CAIRN_COLLECTOR_CONCURRENCY={settings.CAIRN_COLLECTOR_CONCURRENCY}; sequential would be {SEQUENTIAL:.0f} s",
        flush=True,
    )
    return [
        # Wall time of one collect_due round over 200 sources that each answer after 200 ms, divided by
        # the sequential time 200 × 200 ms = 40 s, which is computed, not run. With 50 threads the floor
        # is 4 waves × 200 ms = 0.8 s, a ratio of 0.02; the target leaves room for recording the results.
        Figure("evidence_round_200_sources_vs_sequential", ratio(wall, SEQUENTIAL), "<=", 0.1),
    ]
