"""The production topology (issue 11): an I/O worker for evidence, a prefork worker for reports, one beat.

Beat (database scheduler) ticks evidence collection and the monthly scorecards; the routing table sends each to
its queue. The evidence worker runs collection with threads, the reports worker renders PDFs in two processes,
and repeated ticks record nothing twice: one measurement per collection slot, one scorecard per period.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from metrics import services as metric_services
from metrics.models import CollectionRun, EvidenceSource, Measurement
from scorecards import services as scorecard_services
from scorecards.models import Scorecard
from tests.factories import MetricFactory
from tests.services.conftest import broker_purge, start_beat, start_worker, stop, wait_until

pytestmark = pytest.mark.services

TICK_SECONDS = 5
SOURCES = 3


def task_ids(log: Path, task: str) -> set[str]:
    """Ids of the `task` runs this worker finished."""
    pattern = re.compile(rf"Task {re.escape(task)}\[([^\]]+)\] succeeded")
    return set(pattern.findall(log.read_text(errors="replace"))) if log.exists() else set()


def test_evidence_and_reports_run_on_their_own_workers_once_each(
    team, postgres_url, broker_url, celery_app_on_broker, tmp_path, slo_url
):
    broker_purge(broker_url)
    env = {
        "CAIRN_COLLECTOR_ALLOWED_NETWORKS": "127.0.0.1/32",
        "CAIRN_COLLECTOR_TICK_SECONDS": str(TICK_SECONDS),
        "CAIRN_MEDIA_ROOT": str(tmp_path / "media"),
    }
    sources = []
    for n in range(SOURCES):
        source = EvidenceSource(
            program=team.program, name=f"SLO {n}", kind=EvidenceSource.Kind.HTTP_JSON,
            config={"url": slo_url, "path": "data.availability"}, metric=MetricFactory(program=team.program),
            interval_seconds=3600, timeout_seconds=Decimal("5"),
        )  # fmt: skip
        metric_services.source_save(source=source, by=team.manager)
        sources.append(source)
    period = scorecard_services.scorecard_period(timezone.localdate())
    programs = scorecard_services.scorecard_programs_for_period(period)
    assert len(programs) == 2  # alpha and beta

    logs = {name: tmp_path / f"{name}.log" for name in ("evidence", "reports", "beat")}
    processes = [
        start_worker(
            database_url=postgres_url, broker_url=broker_url, queues="evidence", name="evidence",
            log=logs["evidence"], pool="threads", concurrency=8, env=env,
        ),
        start_worker(
            database_url=postgres_url, broker_url=broker_url, queues="reports", name="reports",
            log=logs["reports"], pool="prefork", concurrency=2, env=env,
        ),
        start_beat(database_url=postgres_url, broker_url=broker_url, log=logs["beat"], env=env),
    ]  # fmt: skip
    try:
        # Beat installs the settings' schedule; an operator makes the monthly scorecards tick like collection
        # (Periodic tasks in the admin), which the database scheduler picks up without a restart.
        wait_until(
            lambda: PeriodicTask.objects.filter(name="scorecards-monthly").exists(),
            timeout=60, what="beat to install its schedule", log=logs["beat"],
        )  # fmt: skip
        monthly = PeriodicTask.objects.get(name="scorecards-monthly")
        monthly.crontab = None
        monthly.interval, _ = IntervalSchedule.objects.get_or_create(every=TICK_SECONDS, period="seconds")
        monthly.save()
        wait_until(
            lambda: (
                Measurement.objects.filter(metric__program=team.program).count() == SOURCES
                and Scorecard.objects.filter(period=period).count() == 2
            ),
            timeout=90, what="every source's measurement and both programs' scorecards", log=logs["reports"],
        )  # fmt: skip
        # Later ticks find every slot and period done.
        ticks = len(task_ids(logs["evidence"], "metrics.tasks.collect_due"))
        monthly_runs = len(task_ids(logs["reports"], "scorecards.tasks.scorecards_monthly"))
        wait_until(
            lambda: (
                len(task_ids(logs["evidence"], "metrics.tasks.collect_due")) >= ticks + 1
                and len(task_ids(logs["reports"], "scorecards.tasks.scorecards_monthly")) >= monthly_runs + 1
                and len(task_ids(logs["reports"], "scorecards.tasks.scorecard_program")) >= 4
            ),
            timeout=60, what="another tick of each schedule", log=logs["beat"],
        )  # fmt: skip
    finally:
        for process in processes:
            stop(process)
        broker_purge(broker_url)

    evidence_log, reports_log = (logs[name].read_text(errors="replace") for name in ("evidence", "reports"))
    # Each worker ran its own queue's tasks and nothing else.
    assert "evidence@" in evidence_log and "Task scorecards.tasks" not in evidence_log
    assert "reports@" in reports_log and "Task metrics.tasks" not in reports_log
    assert "concurrency: 8 (thread)" in evidence_log and "concurrency: 2 (prefork)" in reports_log
    assert re.search(r"ForkPoolWorker-\d\] Task scorecards\.tasks\.scorecard_program\[", reports_log)
    runs = list(CollectionRun.objects.filter(source__in=sources))
    assert sorted(run.source_id for run in runs) == sorted(
        source.pk for source in sources
    )  # one run per slot
    assert {run.status for run in runs} == {CollectionRun.Status.SUCCESS}
    assert {run.celery_task_id for run in runs} <= task_ids(logs["evidence"], "metrics.tasks.collect_due")
    for source in sources:
        assert list(
            Measurement.objects.filter(metric=source.metric).values_list("run__source", flat=True)
        ) == [source.pk]
    scorecards = Scorecard.objects.filter(period=period)
    assert sorted(scorecards.values_list("program_id", flat=True)) == sorted(programs)  # one per period
    assert scorecards.get(program=team.program).delivered_to == [team.executive.email]
    assert reports_log.count(f"To: {team.executive.email}") == 1  # e-mailed once, whatever the ticks
    assert "metrics.tasks.collect_due" in logs["beat"].read_text(errors="replace")
