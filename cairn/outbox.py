"""The task outbox: background work asked for while the broker is down is kept, and sent when it is back.

`enqueue(task, **kwargs)` replaces `task.delay_on_commit(**kwargs)`. It writes an `OutboxMessage` in the
caller's transaction and, once that commits, publishes it once with a short timeout (no kombu retries: the
transport options in settings make a dead or black-holed broker fail within seconds). Published rows are marked
sent; a failed publish leaves the row pending, logs a warning and tells the caller (`Delivery.delayed`), and
`flush()` (the `cairn.tasks.outbox_flush` beat task every 30 s, or the `outbox_flush` command) sends it later.

Sending a row twice is possible (a flush and a slow publish, or a worker that died between publishing and
marking the row sent) and harmless: every task that goes through here claims its own work first
(`ImportRun` pending → running, a bulk status change finds nothing left to change, snapshots and scorecards are
unique per program and day or period), so a second delivery does nothing.

Without a broker (`make run`, unit tests: Celery's eager mode) nothing is written: the task runs inline when
the transaction commits, exactly like `delay_on_commit`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from celery import Task, current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from cairn.models import OutboxMessage

logger = logging.getLogger(__name__)

DELAYED_MESSAGE = (
    "Background work is delayed: the task queue is unreachable; it will run when the queue is back."
)
# The admin index and the dashboard warn when a row has waited this long (a publish that just failed may
# succeed on the next flush, 30 s later, without anyone needing to know).
BANNER_AFTER = timedelta(minutes=1)
# A flush leaves rows alone for this long after their last attempt, so it does not race the publish that
# the committing request is making right now (a race would only send twice, which is harmless).
FLUSH_MIN_AGE = timedelta(seconds=10)
FLUSH_BATCH = 500
SENT_KEPT_FOR = timedelta(days=7)

State = Literal["waiting", "inline", "sent", "delayed"]


class BrokerUnreachable(Exception):
    """The broker refused, timed out or is not there; the message says how (without credentials)."""


@dataclass
class Delivery:
    """What became of one `enqueue`: "waiting" until the transaction commits, then "sent" or "delayed" (the
    broker was unreachable; the row waits for a flush), or "inline" in eager mode."""

    task: str
    state: State = "waiting"
    message: OutboxMessage | None = None

    @property
    def delayed(self) -> bool:
        return self.state == "delayed"


@dataclass
class Deliveries:
    """Everything enqueued inside a `deliveries()` block, for a view that calls a service which enqueues."""

    items: list[Delivery] = field(default_factory=list)

    @property
    def delayed(self) -> bool:
        return any(delivery.delayed for delivery in self.items)


_collectors: ContextVar[tuple[Deliveries, ...]] = ContextVar("cairn_outbox_collectors", default=())


@contextmanager
def deliveries() -> Iterator[Deliveries]:
    """Collect the deliveries of every `enqueue` made inside the block (by whatever service it calls).

    Read `.delayed` once the transaction has committed: at once in a view (requests are not atomic), after
    the outermost `atomic` block otherwise.
    """
    collected = Deliveries()
    token = _collectors.set((*_collectors.get(), collected))
    try:
        yield collected
    finally:
        _collectors.reset(token)


def enqueue(task: Task, /, **kwargs: Any) -> Delivery:
    """Queue `task(**kwargs)` for when the current transaction commits, surviving a broker outage."""
    delivery = Delivery(task=task.name)
    for collected in _collectors.get():
        collected.items.append(delivery)
    if current_app.conf.task_always_eager:
        delivery.state = "inline"
        transaction.on_commit(lambda: task.apply_async(kwargs=kwargs))
        return delivery
    delivery.message = OutboxMessage.objects.create(task=task.name, kwargs=kwargs)
    transaction.on_commit(lambda: _send(delivery))
    return delivery


def api_notice(sent: Delivery | Deliveries) -> dict[str, Any]:
    """The fields a 202 answer gains when its work could not be queued yet (documented in the API schema)."""
    return {"delayed": True, "detail": DELAYED_MESSAGE} if sent.delayed else {}


def _send(delivery: Delivery) -> None:
    message = delivery.message
    assert message is not None
    if not message.claim():
        delivery.state = "sent"  # a flush took it in the meantime
        return
    try:
        delivery.state = "sent" if _publish(message) else "delayed"
    except BrokerUnreachable:
        delivery.state = "delayed"


def _publish(message: OutboxMessage) -> bool:
    """Publish a claimed row once; True when the broker took it. A failure is recorded on the row and logged,
    never raised to the caller (its data is committed and its user must get an answer), except that an
    unreachable broker raises BrokerUnreachable so that a flush stops there; any other failure returns False."""
    with current_app.connection_for_write() as unconnected:
        broker_errors = (KombuOperationalError, OSError, *unconnected.connection_errors)
    try:
        current_app.tasks[message.task].apply_async(kwargs=message.kwargs, retry=False)
    except broker_errors as exc:
        error = _without_credentials(f"{type(exc).__name__}: {exc}")[:2000]
        message.mark_failed(error)
        logger.warning(
            "Task %s (outbox #%s) is delayed, the broker did not take it (%s); outbox_flush will send it.",
            message.task, message.pk, error,
        )  # fmt: skip
        raise BrokerUnreachable(error) from None
    except Exception as exc:  # a bug (unknown task, wrong arguments): keep the row for someone to look at
        error = _without_credentials(f"{type(exc).__name__}: {exc}")[:2000]
        message.mark_failed(error)
        logger.error("Task %s (outbox #%s) cannot be sent: %s", message.task, message.pk, error)
        return False
    message.mark_sent()
    return True


def _without_credentials(text: str) -> str:
    """`text` with the broker's password, and any password written in a URL, masked."""
    urls = current_app.conf.broker_url or ""
    for url in urls if isinstance(urls, list | tuple) else str(urls).split(";"):
        try:
            password = urlsplit(str(url).strip()).password
        except ValueError:
            password = None
        if password:
            text = text.replace(password, "**")
    return re.sub(r"(\w+://[^\s:/@]*:)[^\s@]+@", r"\1**@", text)


@dataclass(frozen=True)
class FlushResult:
    sent: int
    pending: int  # still waiting for the broker
    error: str  # why the broker is unreachable, empty when it took every row it was offered


def flush(*, limit: int = FLUSH_BATCH, min_age: timedelta = FLUSH_MIN_AGE) -> FlushResult:
    """Publish pending rows, oldest first, each claimed before it is sent so that concurrent flushes (a beat
    tick and an operator) never send the same row twice. Stops when the broker is unreachable (every further row
    would wait for the same timeout); a row that cannot be sent for another reason (a bug: unknown task, wrong
    arguments) keeps its error and is skipped. Also forgets rows sent more than a week ago."""
    now = timezone.now()
    OutboxMessage.objects.filter(sent_at__lt=now - SENT_KEPT_FOR).delete()
    cutoff = now - min_age
    due = OutboxMessage.objects.pending().filter(
        Q(attempted_at__lte=cutoff) | Q(attempted_at__isnull=True, created_at__lte=cutoff)
    )
    sent, error = 0, ""
    for message in due.order_by("created_at", "pk")[:limit]:
        if not message.claim():
            continue  # another flush has it
        try:
            sent += _publish(message)
        except BrokerUnreachable as exc:
            error = str(exc)
            break
    return FlushResult(sent=sent, pending=OutboxMessage.objects.pending().count(), error=error)


def delayed_since() -> datetime | None:
    """When the oldest row still waiting for the broker was written, if that was over BANNER_AFTER ago (one
    query on the pending index); None when background work is flowing."""
    return (
        OutboxMessage.objects.pending()
        .filter(created_at__lt=timezone.now() - BANNER_AFTER)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
