import pytest
import redis

from roadmap.models import ChecklistItem
from roadmap.tasks import items_set_status
from tests.factories import ItemFactory
from tests.services.conftest import start_worker, stop, wait_until

Status = ChecklistItem.Status
pytestmark = pytest.mark.services


def test_a_real_worker_runs_the_bulk_status_task_on_the_default_queue(
    team, postgres_url, broker_url, celery_app_on_broker, tmp_path
):
    redis.Redis.from_url(broker_url).flushdb()  # a leftover message from an earlier run must not interfere
    items = [ItemFactory(section=team.section) for _ in range(3)]
    log = tmp_path / "worker.log"
    worker = start_worker(
        database_url=postgres_url, broker_url=broker_url, queues="default", name="svc", log=log
    )
    try:
        items_set_status.delay(
            item_ids=[item.pk for item in items], status=Status.DONE, reason="", user_id=team.manager.pk
        )
        wait_until(
            lambda: (
                ChecklistItem.objects.filter(pk__in=[i.pk for i in items], status=Status.DONE).count() == 3
            ),
            timeout=60,
            what="the worker to mark three items done",
            log=log,
        )
    finally:
        stop(worker)
    for item in items:
        item.refresh_from_db()
        assert item.history.first().history_user == team.manager
    assert "roadmap.tasks.items_set_status" in log.read_text()
    assert "succeeded" in log.read_text()
