"""Beat-scheduled evidence collection through a real Celery beat and worker on Redis and PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import kombu
import pytest
import redis
from django.utils import timezone

from metrics import services
from metrics.models import CollectionRun, EvidenceSource, Measurement
from metrics.tasks import collect_due
from tests.factories import MetricFactory
from tests.services.conftest import start_beat, start_worker, stop, wait_until

pytestmark = pytest.mark.services

TICK_SECONDS = 5
FINISHED_TASK = re.compile(r"Task metrics\.tasks\.collect_due\[[^\]]+\] succeeded")


def finished_tasks(log: Path) -> int:
    return len(FINISHED_TASK.findall(log.read_text(errors="replace"))) if log.exists() else 0


def test_it_records_one_measurement_per_slot_through_beat_and_a_real_worker(
    team, postgres_url, broker_url, celery_app_on_broker, tmp_path, monkeypatch, slo_url
):
    redis.Redis.from_url(broker_url).flushdb()  # a leftover message from an earlier run must not interfere
    # Read by the worker and beat processes, which copy this environment.
    monkeypatch.setenv("CAIRN_COLLECTOR_ALLOWED_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("CAIRN_COLLECTOR_TICK_SECONDS", str(TICK_SECONDS))
    monkeypatch.setenv("CAIRN_COLLECTOR_BACKOFF_MS", "10")
    metric = MetricFactory(program=team.program)
    source = EvidenceSource(
        program=team.program,
        name="SLO endpoint",
        kind=EvidenceSource.Kind.HTTP_JSON,
        config={"url": slo_url, "path": "data.availability"},
        metric=metric,
        interval_seconds=3600,
        timeout_seconds=Decimal("5"),
    )
    services.source_save(source=source, by=team.manager)
    first_slot = source.next_run_at
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = start_worker(
        database_url=postgres_url, broker_url=broker_url, queues="evidence", name="evidence", log=worker_log
    )
    beat = start_beat(database_url=postgres_url, broker_url=broker_url, log=beat_log)
    try:
        wait_until(
            lambda: Measurement.objects.filter(metric=metric).exists(),
            timeout=90,
            what="beat's tick to make the worker record a measurement",
            log=worker_log,
        )
        # A duplicate delivery and later ticks find the slot taken: still one measurement.
        done = finished_tasks(worker_log)
        # On a connection of its own: `celery_app_on_broker` closes kombu's shared pool for this broker URL
        # when an earlier test tears it down, and the registry hands that closed pool out again.
        with kombu.Connection(broker_url) as connection:
            collect_due.apply_async(connection=connection)
            collect_due.apply_async(connection=connection)
        wait_until(
            lambda: finished_tasks(worker_log) >= done + 3,  # both duplicates and one more beat tick
            timeout=60,
            what="two enqueued ticks and one beat tick",
            log=worker_log,
        )
        assert Measurement.objects.filter(metric=metric).count() == 1
        # The next slot comes (as if an hour passed): the next tick collects it, once.
        second_slot = timezone.now()
        EvidenceSource.objects.filter(pk=source.pk).update(next_run_at=second_slot)
        wait_until(
            lambda: Measurement.objects.filter(metric=metric).count() >= 2,
            timeout=60,
            what="the second slot's measurement",
            log=worker_log,
        )
        done = finished_tasks(worker_log)
        wait_until(
            lambda: finished_tasks(worker_log) >= done + 1,
            timeout=30,
            what="one more beat tick",
            log=worker_log,
        )
    finally:
        stop(beat)
        stop(worker)
        redis.Redis.from_url(broker_url).flushdb()

    runs = list(CollectionRun.objects.filter(source=source).order_by("slot"))
    assert [run.slot for run in runs] == [first_slot, second_slot]
    assert [run.status for run in runs] == [CollectionRun.Status.SUCCESS] * 2
    assert all(run.celery_task_id and run.trigger == CollectionRun.Trigger.SCHEDULE for run in runs)
    measurements = list(Measurement.objects.filter(metric=metric).order_by("observed_at"))
    assert [(m.run_id, m.value, m.source) for m in measurements] == [
        (run.pk, Decimal("99.95"), Measurement.Source.COLLECTOR) for run in runs
    ]
    assert "metrics.tasks.collect_due" in beat_log.read_text(errors="replace")  # beat sent the ticks
