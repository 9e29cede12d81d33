"""Workers SIGKILLed mid-task (issue 10): every task still completes exactly once, on Redis and on RabbitMQ.

One worker per queue is killed with its whole process group while it renders a scorecard, while it waits on an
evidence endpoint that holds its answer, and while a checklist import holds its transaction open. A new worker
on every queue then finishes the work: one scorecard (and one e-mail) per program and period, one measurement per
collection slot, the import written once, and nothing left `running`.

Timing is shortened for the workers through the settings a deployment would change (see README): Redis hands an
unacknowledged task to another worker after CELERY_BROKER_VISIBILITY_TIMEOUT seconds (RabbitMQ as soon as the
dead worker's connection closes), an import claim expires after CAIRN_CHECKLIST_IMPORT_TIME_LIMIT seconds, and
a collection run counts as abandoned CAIRN_COLLECTOR_ABANDONED_AFTER_SECONDS after its own worst case.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from metrics import services as metric_services
from metrics.models import CollectionRun, EvidenceSource, Measurement
from metrics.tasks import collect_due
from roadmap.checklists import ImportRunBusy, import_run_execute, import_run_start
from roadmap.models import ChecklistItem, ImportRun, Program
from scorecards import services as scorecard_services
from scorecards.models import Scorecard, Snapshot
from scorecards.tasks import scorecard_program
from tests.factories import MetricFactory, PhaseFactory, ProgramFactory, member
from tests.services.conftest import (
    broker_purge,
    checklist_csv,
    import_transaction_open,
    kill_group,
    sending_to,
    start_worker,
    stop,
    wait_until,
)

pytestmark = pytest.mark.services

VISIBILITY_TIMEOUT = 2
# Longer than a worker takes to start: the redelivery finds the claim alive and retries.
IMPORT_TIME_LIMIT = 15
SOURCE_TIMEOUT = 5  # the collector gives up after this; the kill comes first
ABANDONED_AFTER = 1
ITEMS = 1500  # enough for the scorecard's appendix and the import to take seconds
WORKER_ENV = {
    "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    "CAIRN_CHECKLIST_IMPORT_TIME_LIMIT": str(IMPORT_TIME_LIMIT),
    "CAIRN_COLLECTOR_ABANDONED_AFTER_SECONDS": str(ABANDONED_AFTER),
    "CAIRN_COLLECTOR_MAX_ATTEMPTS": "1",
    "CAIRN_COLLECTOR_BACKOFF_MS": "10",
    "CAIRN_COLLECTOR_ALLOWED_NETWORKS": "127.0.0.1/32",
}


@dataclass
class HeldEndpoint:
    """An SLO endpoint whose first answer is held back: the worker asking is killed while it waits."""

    url: str = ""
    requests: int = 0
    first_request: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def held_endpoint() -> Iterator[HeldEndpoint]:
    endpoint = HeldEndpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            endpoint.requests += 1
            if endpoint.requests == 1:
                endpoint.first_request.set()
                endpoint.release.wait(timeout=4 * SOURCE_TIMEOUT)
            body = json.dumps({"data": {"availability": 99.5}}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the worker that asked is dead
                pass
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/slo"
    yield endpoint
    endpoint.release.set()
    server.shutdown()
    server.server_close()


def big_program(section_title: str, items: int) -> Program:
    program = ProgramFactory()
    phase = PhaseFactory(program=program)
    section = program.sections.create(title=section_title, phase=phase, order=1)
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program, section=section, phase=phase, key=f"k-{n}", ref=f"1.{n}", title=f"Requirement {n}",
            weight=Decimal(1), status=ChecklistItem.Status.DONE if n % 3 == 0 else ChecklistItem.Status.NOT_STARTED,
        )
        for n in range(items)
    )  # fmt: skip
    return program


def succeeded(logs: list[Path], task: str) -> int:
    pattern = re.compile(rf"Task {re.escape(task)}\[[^\]]+\] succeeded")
    return sum(len(pattern.findall(log.read_text(errors="replace"))) for log in logs if log.exists())


def test_it_finishes_each_task_once_after_its_worker_is_killed_mid_task(
    team, postgres_url, any_broker_url, tmp_path, held_endpoint, settings
):
    broker_purge(any_broker_url)
    # The deadline below is computed here with the workers' values.
    settings.CAIRN_COLLECTOR_ABANDONED_AFTER_SECONDS = ABANDONED_AFTER
    settings.CAIRN_COLLECTOR_BACKOFF_MS = 10
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 100  # the import goes to a worker
    env = {**WORKER_ENV, "CAIRN_MEDIA_ROOT": str(tmp_path / "media")}
    # Scorecard: thousands of requirements make the PDF take seconds after the snapshot is stored.
    reported = big_program("Operations", ITEMS)
    executive = member(reported, "executive", "ceo")
    period = scorecard_services.scorecard_period(timezone.localdate())
    # Evidence: one source due now, on an endpoint that holds its first answer.
    metric = MetricFactory(program=team.program)
    source = EvidenceSource(
        program=team.program, name="SLO", kind=EvidenceSource.Kind.HTTP_JSON, metric=metric,
        config={"url": held_endpoint.url, "path": "data.availability"}, interval_seconds=3600,
        timeout_seconds=Decimal(SOURCE_TIMEOUT),
    )  # fmt: skip
    metric_services.source_save(source=source, by=team.manager)
    slot = source.next_run_at
    # Import: a file above CAIRN_CHECKLIST_INLINE_ROWS goes to a worker in one transaction.
    target = ProgramFactory(key="imports")
    PhaseFactory(program=target)

    logs = {queue: tmp_path / f"{queue}.log" for queue in ("reports", "evidence", "default")}
    workers = {
        queue: start_worker(
            database_url=postgres_url,
            broker_url=any_broker_url,
            queues=queue,
            name=f"doomed-{queue}",
            log=log,
            env=env,
        )
        for queue, log in logs.items()
    }
    after_log = tmp_path / "after.log"
    after = None
    try:
        with sending_to(any_broker_url):
            scorecard_program.delay(program_id=reported.pk, period=period)
            collect_due.delay()
            run, _ = import_run_start(
                program=target, data=checklist_csv(ITEMS), source_name="big.csv", by=None
            )
            mid_task = {
                "reports": lambda: (
                    Snapshot.objects.filter(program=reported).exists()
                    and not Scorecard.objects.filter(program=reported).exists()
                ),
                "evidence": held_endpoint.first_request.is_set,
                "default": lambda: (
                    ImportRun.objects.filter(pk=run.pk, status=ImportRun.Status.RUNNING).exists()
                    and import_transaction_open(target.pk)
                ),
            }

            def kill_each_worker_mid_task() -> bool:
                for queue, is_mid_task in mid_task.items():
                    if workers[queue].poll() is None and is_mid_task():
                        kill_group(workers[queue])
                    if "succeeded" in logs[queue].read_text(errors="replace"):
                        pytest.fail(f"the {queue} worker finished its task before it could be killed")
                return all(worker.poll() is not None for worker in workers.values())

            wait_until(kill_each_worker_mid_task, timeout=120, what="each worker to be killed mid-task")

            # The killed attempts left their work unfinished and wrote nothing half-way.
            assert not Scorecard.objects.filter(program=reported).exists()
            assert CollectionRun.objects.get(source=source).status == CollectionRun.Status.RUNNING
            assert not Measurement.objects.filter(metric=metric).exists()
            assert ImportRun.objects.get(pk=run.pk).status == ImportRun.Status.RUNNING
            assert not ChecklistItem.objects.filter(program=target).exists()
            for queue, log in logs.items():
                assert "succeeded" not in log.read_text(errors="replace"), queue

            if any_broker_url.startswith("redis"):
                time.sleep(VISIBILITY_TIMEOUT + 1)  # until then Redis keeps the tasks for the dead workers
            after = start_worker(
                database_url=postgres_url, broker_url=any_broker_url, queues="default,evidence,reports",
                name="after", log=after_log, env=env, pool="threads", concurrency=4,
            )  # fmt: skip
            wait_until(
                lambda: Scorecard.objects.filter(program=reported, delivered_at__isnull=False).exists(),
                timeout=120, what="the redelivered scorecard task", log=after_log,
            )  # fmt: skip
            wait_until(
                lambda: ImportRun.objects.filter(pk=run.pk, status=ImportRun.Status.SUCCEEDED).exists(),
                timeout=90, what="the import run to be claimed again and finish", log=after_log,
            )  # fmt: skip
            # The abandoned collection run is taken over by the first tick after its deadline (beat's job).
            started = CollectionRun.objects.get(source=source).started_at
            deadline = started + metric_services.run_deadline(source, 1)
            wait_until(lambda: timezone.now() > deadline, timeout=60, what="the collection run's deadline")
            ticks = succeeded([after_log], "metrics.tasks.collect_due")
            collect_due.delay()
            wait_until(
                lambda: not CollectionRun.objects.filter(source=source, status="running").exists(),
                timeout=60, what="a tick to finish the abandoned collection run", log=after_log,
            )  # fmt: skip
            # More ticks and a duplicate scorecard task find everything done.
            collect_due.delay()
            scorecard_program.delay(program_id=reported.pk, period=period)
            wait_until(
                lambda: (
                    succeeded([after_log], "metrics.tasks.collect_due") >= ticks + 2
                    and succeeded([after_log], "scorecards.tasks.scorecard_program") >= 2
                ),
                timeout=60, what="the duplicate tick and scorecard task", log=after_log,
            )  # fmt: skip
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                kill_group(worker)
        if after is not None:
            stop(after)
        broker_purge(any_broker_url)

    scorecard = Scorecard.objects.get(program=reported, period=period)
    assert scorecard.delivered_to == [executive.email]
    all_logs = [*logs.values(), after_log]
    sent = sum(log.read_text(errors="replace").count(f"To: {executive.email}") for log in all_logs)
    assert sent == 1  # delivered once, by the worker that finished the task
    assert Snapshot.objects.filter(program=reported).count() == 1

    runs = list(CollectionRun.objects.filter(source=source))
    assert [(r.slot, r.status) for r in runs] == [(slot, CollectionRun.Status.SUCCESS)]
    assert held_endpoint.requests == 2  # the killed attempt's and the takeover's
    assert list(Measurement.objects.filter(metric=metric).values_list("run_id", "value")) == [
        (runs[0].pk, Decimal("99.5"))
    ]

    run.refresh_from_db()
    assert run.report["items"]["added"] == ITEMS
    assert ChecklistItem.objects.filter(program=target).count() == ITEMS
    assert ChecklistItem.history.filter(program=target).count() == ITEMS  # written once, in one go
    assert not ImportRun.objects.filter(status=ImportRun.Status.RUNNING).exists()


def test_a_redelivered_import_waits_for_the_claim_to_expire_then_takes_the_run_over(team, settings):
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    settings.CAIRN_CHECKLIST_IMPORT_TIME_LIMIT = 600
    run, _ = import_run_start(
        program=team.program, data=checklist_csv(20), source_name="big.csv", by=team.manager
    )  # queued: the task is sent on commit, which never comes in this test's transaction
    # What a worker killed mid-import leaves: the run claimed a minute ago, its transaction rolled back.
    claimed_at = timezone.now() - timedelta(seconds=60)
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.RUNNING, started_at=claimed_at, task_id="t1"
    )

    with pytest.raises(ImportRunBusy) as busy:
        import_run_execute(run_id=run.pk, task_id="t1")
    assert 530 < busy.value.retry_in <= 540  # the claim may still be alive for the rest of its 600 s
    assert ImportRun.objects.values_list("status", "task_id").get(pk=run.pk) == ("running", "t1")
    assert not ChecklistItem.objects.filter(key__startswith="imp-").exists()

    ImportRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=601))
    assert import_run_execute(run_id=run.pk, task_id="t1") == ImportRun.Status.SUCCEEDED
    assert ChecklistItem.objects.filter(program=team.program, key__startswith="imp-").count() == 20
    assert import_run_execute(run_id=run.pk, task_id="t1") == ImportRun.Status.SUCCEEDED  # finished: no-op
    assert ChecklistItem.history.filter(key__startswith="imp-").count() == 20
