"""The task outbox: with the broker down the admin, dashboard and API still answer, say that background work is
delayed, and keep it; `outbox_flush` sends it once the broker is back.

"Down" is a closed port on loopback (refused at once, for Redis and for AMQP); "back" is kombu's in-memory
transport, a real broker inside this process (tests/services/test_broker_down.py uses a real Redis and worker).
Tests whose view enqueues use `transactional_db`: the on-commit publish then runs before the view answers, as in
production (inside a test's transaction it would run only after the response).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from kombu import Connection
from rest_framework.test import APIClient

from cairn import outbox
from cairn.models import OutboxMessage
from roadmap.models import ChecklistItem, ImportRun
from roadmap.tasks import checklist_import_run, items_set_status
from tests.factories import ItemFactory
from tests.services.conftest import _reset_connections

Status = ChecklistItem.Status
PASSWORD = "s3cret-broker-pw"
DOWN = {
    "redis": f"redis://:{PASSWORD}@127.0.0.1:1/0",
    "amqp": f"amqp://guest:{PASSWORD}@127.0.0.1:1//",
}
IMPORT_URL = reverse("admin:roadmap_checklistitem_import_checklist")
CHANGELIST = reverse("admin:roadmap_checklistitem_changelist")
BANNER = 'id="background-work-delayed"'


def rows_csv(count: int) -> bytes:
    lines = ["key,section,title"] + [f"q-{n},Foundations,Queued task {n}" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@contextmanager
def celery_on(url: str) -> Iterator[Any]:
    from cairn.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    _reset_connections(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        _reset_connections(app)


@pytest.fixture
def broker_down() -> Iterator[Any]:
    """Celery sends to a Redis that refuses connections."""
    with celery_on(DOWN["redis"]) as app:
        yield app


@pytest.fixture(params=sorted(DOWN))
def each_broker_down(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Celery sends to a Redis, then to a RabbitMQ, that refuses connections."""
    with celery_on(DOWN[request.param]) as app:
        yield app


@pytest.fixture
def broker_back() -> Iterator[Any]:
    queued_on_broker()  # what an earlier test left in this process's in-memory broker
    with celery_on("memory://") as app:
        yield app


def queued_on_broker(queue: str = "default") -> list[tuple[str, dict[str, Any]]]:
    """(task name, kwargs) of every message waiting in the in-memory broker's queue, taken off it."""
    found = []
    with Connection("memory://") as conn:
        simple = conn.SimpleQueue(queue)
        while True:
            try:
                message = simple.get(timeout=0.2)
            except simple.Empty:
                break
            found.append((message.headers["task"], message.decode()[1]))
            message.ack()
        simple.close()
    return found


def assert_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    assert all(PASSWORD not in message.last_error for message in OutboxMessage.objects.all())


# --- without a broker (eager): exactly as before ------------------------------------------------------------


def test_it_runs_the_task_inline_on_commit_without_a_broker(team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        delivery = outbox.enqueue(
            items_set_status,
            item_ids=[team.unowned_item.pk],
            status=Status.DONE,
            reason="",
            user_id=team.manager.pk,
        )
        team.unowned_item.refresh_from_db()
        assert team.unowned_item.status == Status.NOT_STARTED  # not before the commit

    assert len(callbacks) == 1
    team.unowned_item.refresh_from_db()
    assert team.unowned_item.status == Status.DONE
    assert (delivery.state, delivery.delayed) == ("inline", False)
    assert not OutboxMessage.objects.exists()


def test_it_writes_nothing_and_sends_nothing_when_the_transaction_rolls_back(team, broker_back):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue(checklist_import_run, run_id=123)
        raise RuntimeError("the caller failed")

    assert not OutboxMessage.objects.exists()
    assert queued_on_broker() == []


# --- with the broker down ---------------------------------------------------------------------------------


def test_a_large_import_through_the_api_is_accepted_and_kept_while_the_broker_is_down(
    team, settings, each_broker_down, transactional_db, caplog
):
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    upload = SimpleUploadedFile("big.csv", rows_csv(20), content_type="text/csv")

    with caplog.at_level(logging.WARNING, logger="cairn.outbox"):
        response = api(team.manager).post(
            "/api/v1/imports/checklist/", {"program": "alpha", "file": upload}, format="multipart"
        )

    assert response.status_code == 202
    run = ImportRun.objects.get()
    assert response.json() == {
        "run": run.pk, "status": "pending", "rows": 20, "delayed": True, "detail": outbox.DELAYED_MESSAGE,
    }  # fmt: skip
    assert run.status == ImportRun.Status.PENDING
    message = OutboxMessage.objects.get()
    assert (message.task, message.kwargs, message.attempts, message.sent_at) == (
        "roadmap.tasks.checklist_import_run", {"run_id": run.pk}, 1, None,
    )  # fmt: skip
    assert "OperationalError" in message.last_error
    assert f"outbox #{message.pk}" in caplog.text
    assert_no_secret(caplog)


def test_a_large_bulk_status_change_through_the_api_is_accepted_and_kept_while_the_broker_is_down(
    team, settings, broker_down, transactional_db, caplog
):
    settings.CAIRN_BULK_INLINE_LIMIT = 1
    ids = [team.owned_item.pk, team.unowned_item.pk]

    response = api(team.manager).post("/api/v1/items/bulk-status/", {"ids": ids, "status": "done"})

    assert response.status_code == 202
    assert response.json() == {"queued": 2, "delayed": True, "detail": outbox.DELAYED_MESSAGE}
    assert not ChecklistItem.objects.filter(pk__in=ids, status=Status.DONE).exists()
    message = OutboxMessage.objects.pending().get()
    assert message.kwargs == {
        "item_ids": sorted(ids),
        "user_id": team.manager.pk,
        "status": "done",
        "reason": "",
    }
    assert_no_secret(caplog)


def test_a_large_import_confirmed_in_the_admin_warns_that_it_is_delayed(
    team, settings, broker_down, transactional_db
):
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    client = login(team.manager)
    upload = SimpleUploadedFile("big.csv", rows_csv(20), content_type="text/csv")
    preview = client.post(IMPORT_URL, {"program": team.program.pk, "file": upload, "mapping": ""})
    assert preview.status_code == 200

    done = client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})

    run = ImportRun.objects.get()
    assert done.status_code == 302
    assert done.url == reverse("admin:roadmap_importrun_change", args=[run.pk])
    shown = [(m.level_tag, str(m)) for m in get_messages(done.wsgi_request)]
    assert ("warning", outbox.DELAYED_MESSAGE) in shown
    assert run.status == ImportRun.Status.PENDING
    assert OutboxMessage.objects.pending().get().kwargs == {"run_id": run.pk}
    assert client.get(done.url).status_code == 200


def test_admin_bulk_actions_still_work_while_the_broker_is_down(team, broker_down):
    # They run inside the request whatever the selection's size: nothing to queue, nothing to warn about.
    response = login(team.manager).post(
        CHANGELIST,
        {"action": "mark_done", "_selected_action": [team.owned_item.pk, team.unowned_item.pk]},
    )

    assert response.status_code == 302
    assert ChecklistItem.objects.filter(status=Status.DONE).count() == 2
    assert outbox.DELAYED_MESSAGE not in [str(m) for m in get_messages(response.wsgi_request)]
    assert not OutboxMessage.objects.exists()


def test_pages_and_lists_answer_and_show_a_banner_once_work_has_waited_a_minute(team, broker_down):
    ItemFactory.create_batch(3, section=team.section)
    client = login(team.manager)
    pages = [
        reverse("admin:index"),
        reverse("dashboard:programs"),
        reverse("dashboard:program", args=[team.program.key]),
    ]
    for page in pages:
        assert BANNER not in client.get(page).content.decode()
    fresh = OutboxMessage.objects.create(task="roadmap.tasks.checklist_import_run", kwargs={"run_id": 1})
    for page in pages:
        assert BANNER not in client.get(page).content.decode()  # a publish that just failed may yet succeed

    OutboxMessage.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(minutes=2))

    for page in pages:
        response = client.get(page)
        assert response.status_code == 200
        assert BANNER in response.content.decode()
        assert outbox.DELAYED_MESSAGE in response.content.decode()
    assert api(team.manager).get("/api/v1/items/").status_code == 200
    assert api(team.manager).get("/api/v1/import-runs/").status_code == 200


def test_the_banner_costs_one_query_and_none_on_the_login_page(team):
    client = login(team.manager)
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        client.get("/")
    assert sum("cairn_outboxmessage" in query["sql"] for query in queries.captured_queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert Client().get(reverse("login")).status_code == 200
    assert not any("cairn_outboxmessage" in query["sql"] for query in queries.captured_queries)


# --- when the broker is back ------------------------------------------------------------------------------


def pending_rows(count: int) -> list[OutboxMessage]:
    long_ago = timezone.now() - timedelta(minutes=5)
    return [
        OutboxMessage.objects.create(
            task="roadmap.tasks.checklist_import_run",
            kwargs={"run_id": n},
            created_at=long_ago,
            attempts=1,
            attempted_at=long_ago,
            last_error="OperationalError: refused",
        )
        for n in range(count)
    ]


def test_a_flush_sends_what_waited_oldest_first_and_marks_it_sent(db, broker_back):
    rows = pending_rows(3)

    result = outbox.flush()

    assert (result.sent, result.pending, result.error) == (3, 0, "")
    assert queued_on_broker() == [("roadmap.tasks.checklist_import_run", {"run_id": n}) for n in range(3)]
    for row in rows:
        row.refresh_from_db()
        assert (row.sent_at is not None, row.attempts, row.last_error) == (True, 2, "")
    assert outbox.flush().sent == 0  # nothing is sent twice
    assert queued_on_broker() == []


def test_a_flush_leaves_rows_alone_that_were_just_tried(db, broker_back):
    OutboxMessage.objects.create(
        task="roadmap.tasks.checklist_import_run", kwargs={"run_id": 1}, attempted_at=timezone.now()
    )

    assert outbox.flush().sent == 0
    assert outbox.flush(min_age=timedelta(0)).sent == 1


def test_a_flush_stops_at_the_first_failure_while_the_broker_is_still_down(db, each_broker_down, caplog):
    rows = pending_rows(3)

    result = outbox.flush()

    assert (result.sent, result.pending) == (0, 3)
    assert "OperationalError" in result.error
    assert [r.attempts for r in OutboxMessage.objects.order_by("pk")] == [2, 1, 1]  # one try, not three waits
    assert OutboxMessage.objects.get(pk=rows[0].pk).sent_at is None
    assert_no_secret(caplog)


def test_a_row_claimed_by_another_flush_is_not_sent_again(db, broker_back):
    (row,) = pending_rows(1)
    stale = OutboxMessage.objects.get(pk=row.pk)

    assert row.claim() is True
    assert stale.claim() is False  # read before the other claim: its update matches nothing
    assert outbox.flush().sent == 0  # claimed a moment ago by a flush that is still sending it


def test_a_flush_forgets_rows_sent_over_a_week_ago(db, broker_back):
    now = timezone.now()
    OutboxMessage.objects.create(task="x", kwargs={}, sent_at=now - timedelta(days=8))
    kept = OutboxMessage.objects.create(task="x", kwargs={}, sent_at=now - timedelta(days=6))

    outbox.flush()

    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [kept.pk]


def test_the_command_sends_everything_and_says_so(db, broker_back, capsys):
    pending_rows(2)

    call_command("outbox_flush")

    assert capsys.readouterr().out.strip() == "2 task(s) sent; 0 still waiting."
    assert len(queued_on_broker()) == 2


def test_the_command_fails_while_the_broker_is_down(db, broker_down):
    pending_rows(2)

    with pytest.raises(
        CommandError, match=r"0 task\(s\) sent; the broker is unreachable .*2 task\(s\) still waiting"
    ):
        call_command("outbox_flush")

    assert OutboxMessage.objects.pending().count() == 2


def test_the_beat_schedule_flushes_every_30_seconds_on_the_default_queue(settings):
    from cairn.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["outbox-flush"]
    assert (entry["task"], entry["schedule"]) == ("cairn.tasks.outbox_flush", 30)
    assert app.amqp.router.route({}, "cairn.tasks.outbox_flush")["queue"].name == "default"


def test_it_masks_broker_passwords_in_what_it_records():
    text = f"login as guest/{PASSWORD} refused by amqp://guest:{PASSWORD}@10.0.0.5:5672//, redis://:pw2@cache:6379/0"

    with celery_on(DOWN["amqp"]):
        masked = outbox._without_credentials(text)

    assert masked == "login as guest/** refused by amqp://guest:**@10.0.0.5:5672//, redis://:**@cache:6379/0"


def test_a_row_that_cannot_be_sent_keeps_its_error_and_does_not_hold_up_the_others(db, broker_back, caplog):
    broken = OutboxMessage.objects.create(
        task="roadmap.tasks.checklist_import_run",
        kwargs={"no_such_argument": 1},
        created_at=timezone.now() - timedelta(minutes=9),
    )
    pending_rows(1)

    result = outbox.flush()

    assert (result.sent, result.pending, result.error) == (1, 1, "")
    broken.refresh_from_db()
    assert broken.sent_at is None and "TypeError" in broken.last_error
    assert "cannot be sent" in caplog.text
    assert queued_on_broker() == [("roadmap.tasks.checklist_import_run", {"run_id": 0})]


def test_operators_see_the_outbox_in_the_admin_and_others_do_not(team, superuser):
    pending_rows(1)
    url = reverse("admin:cairn_outboxmessage_changelist")

    page = login(superuser).get(url)

    assert page.status_code == 200
    assert "roadmap.tasks.checklist_import_run" in page.content.decode()
    assert login(team.manager).get(url).status_code == 403
