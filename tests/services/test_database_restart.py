"""PostgreSQL restarted while a worker runs a large checklist import (issue 10).

The restart drops every connection, the worker's in the middle of the import's transaction too: the import must
leave nothing behind, its run must say it failed and why (not stay "running"), the worker must carry on, and
importing the file again must work.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.db import DatabaseError, connection

from roadmap.checklists import import_run_start
from roadmap.models import ChecklistItem, ImportRun
from tests.services.conftest import (
    broker_purge,
    checklist_csv,
    import_transaction_open,
    start_worker,
    stop,
    wait_until,
)

pytestmark = pytest.mark.services

ROWS = 3000


def restart_postgresql() -> None:
    """Restart the cluster the tests use (fast mode: open transactions are rolled back, clients cut off)."""
    version = sorted(path.name for path in Path("/etc/postgresql").iterdir())[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    connection.close()  # this process's connection was cut off too


def run_status(run_id: int) -> str:
    try:
        return ImportRun.objects.values_list("status", flat=True).get(pk=run_id)
    except DatabaseError:  # the server is still starting
        connection.close()
        return ""


def test_an_import_cut_off_by_a_database_restart_fails_cleanly_and_can_be_run_again(
    team, postgres_url, broker_url, celery_app_on_broker, tmp_path, settings
):
    pg_ctlcluster = Path("/usr/bin/pg_ctlcluster")
    assert pg_ctlcluster.exists(), "the test restarts PostgreSQL with Debian's pg_ctlcluster"
    broker_purge(broker_url)
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 100  # the import goes to the worker
    before = set(ChecklistItem.objects.filter(program=team.program).values_list("key", flat=True))
    data = checklist_csv(ROWS)
    log = tmp_path / "worker.log"
    worker = start_worker(
        database_url=postgres_url, broker_url=broker_url, queues="default", name="db", log=log
    )
    try:
        run, _ = import_run_start(program=team.program, data=data, source_name="big.csv", by=team.manager)
        wait_until(
            lambda: run_status(run.pk) == ImportRun.Status.RUNNING and import_transaction_open(team.program.pk),
            timeout=90, what="the worker to be inside the import's transaction", log=log,
        )  # fmt: skip
        restart_postgresql()
        wait_until(
            lambda: run_status(run.pk) == ImportRun.Status.FAILED,
            timeout=90, what="the import run to be reported failed", log=log,
        )  # fmt: skip
        failed = ImportRun.objects.get(pk=run.pk)
        assert set(ChecklistItem.objects.filter(program=team.program).values_list("key", flat=True)) == before

        # The same worker, reconnected, runs the import again.
        again, _ = import_run_start(program=team.program, data=data, source_name="big.csv", by=team.manager)
        wait_until(
            lambda: run_status(again.pk) == ImportRun.Status.SUCCEEDED,
            timeout=90, what="the second import to succeed", log=log,
        )  # fmt: skip
        assert worker.poll() is None
    finally:
        stop(worker)
        broker_purge(broker_url)

    assert failed.error.startswith("The database failed during the import (")
    assert "nothing was written. Import the file again." in failed.error
    assert failed.finished_at is not None and failed.source is None
    assert "roadmap.tasks.checklist_import_run" in log.read_text(errors="replace")
    again.refresh_from_db()
    assert again.report["items"]["added"] == ROWS
    imported = ChecklistItem.objects.filter(program=team.program, key__startswith="imp-")
    assert imported.count() == ROWS
    assert ChecklistItem.history.filter(key__startswith="imp-").count() == ROWS  # written once
