"""The services suite: real PostgreSQL, Redis and Celery workers.

Locally these tests skip when a service is missing; under CI=true they fail instead, because CI must run them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kombu.pools
import pytest
from django.db import DatabaseError, connection, transaction

from tests.conftest import UNDER_CI

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("CAIRN_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
# A vhost of its own keeps the suite's queues apart (`.ci/run` creates it: see README, Tests).
AMQP_URL = os.environ.get("CAIRN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/cairn_test")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if UNDER_CI:
        pytest.fail(f"CI needs this service: {reason}")
    pytest.skip(reason)


@pytest.fixture
def broker_url() -> str:
    require(_reachable(BROKER_URL), f"no broker at {BROKER_URL} (set CAIRN_TEST_BROKER_URL)")
    return BROKER_URL


def _amqp_usable(url: str) -> bool:
    """RabbitMQ answers and lets us into the vhost (a missing vhost refuses the login, unlike a closed port)."""
    if not _reachable(url):
        return False
    try:
        with kombu.Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception:
        return False
    return True


@pytest.fixture
def amqp_url() -> str:
    require(
        _amqp_usable(AMQP_URL),
        f"no RabbitMQ vhost at {AMQP_URL} (set CAIRN_TEST_AMQP_URL; `rabbitmqctl add_vhost cairn_test` and "
        "`rabbitmqctl set_permissions -p cairn_test guest '.*' '.*' '.*'`)",
    )
    return AMQP_URL


@pytest.fixture(params=["redis", "rabbitmq"])
def any_broker_url(request: pytest.FixtureRequest) -> str:
    """Each broker a deployment may use: a test taking this runs once on Redis and once on RabbitMQ."""
    return request.getfixturevalue("broker_url" if request.param == "redis" else "amqp_url")


def broker_purge(url: str) -> None:
    """Empty the project's queues so a message left by an earlier run cannot interfere."""
    from cairn.celery import app

    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()
        return
    with kombu.Connection(url) as conn:
        channel = conn.channel()
        for queue in app.conf.task_queues:
            queue(channel).declare()
            queue(channel).purge()


@pytest.fixture
def postgres_url(transactional_db: None) -> str:
    """The URL of the test database, for worker processes that must see what the test committed."""
    require(connection.vendor == "postgresql", "the services suite needs DATABASE_URL=postgres://…")
    settings = connection.settings_dict
    user = settings["USER"] or "postgres"
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


@pytest.fixture
def celery_app_on_broker(broker_url: str) -> Iterator[object]:
    """The project's Celery app sending to the real broker instead of running tasks inline."""
    with sending_to(broker_url) as app:
        yield app


@contextmanager
def sending_to(url: str) -> Iterator[object]:
    from cairn.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    _reset_connections(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        _reset_connections(app)


def _reset_connections(app: object) -> None:
    """Drop pooled broker connections so the next send connects to the broker now configured."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    # kombu keeps its own registry of pools per URL; a closed one left there fails the next test's send.
    kombu.pools.reset()


def start_worker(
    *,
    database_url: str,
    broker_url: str,
    queues: str,
    name: str,
    log: Path,
    pool: str = "solo",
    concurrency: int = 1,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """A Celery worker in its own process group (`kill_group` ends it with its pool's children, as a crash would)."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cairn.settings",
        "SECRET_KEY": "services-test-secret",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_CONN_MAX_AGE": "0",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cairn", "worker", "-Q", queues, "-n", f"{name}@%h",
         "--pool", pool, "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "INFO"],
        cwd=ROOT, env=environment, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def start_beat(
    *, database_url: str, broker_url: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Celery beat with the database scheduler, in the environment `start_worker` gives workers."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cairn.settings",
        "SECRET_KEY": "services-test-secret",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_CONN_MAX_AGE": "0",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cairn", "beat", "--scheduler",
         "django_celery_beat.schedulers:DatabaseScheduler", "--loglevel", "INFO"],
        cwd=ROOT, env=environment, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the worker and every process it started: no shutdown, no acknowledgement, as in a crash."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        kill_group(process)


def checklist_csv(rows: int, *, prefix: str = "imp") -> bytes:
    """A checklist file of `rows` new requirements in one section, all done."""
    lines = ["key,section,title,status"]
    lines += [f"{prefix}-{n},Imported,Imported requirement {n},done" for n in range(rows)]
    return "\n".join(lines).encode()


def import_transaction_open(program_id: int) -> bool:
    """A checklist import holds its program's row lock for its whole transaction: taking it now fails."""
    from roadmap.models import Program

    try:
        with transaction.atomic():
            Program.objects.select_for_update(nowait=True).filter(pk=program_id).first()
    except DatabaseError:
        return True
    return False


def wait_until(predicate, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tail}")


class SloHandler(BaseHTTPRequestHandler):
    """A service-level endpoint answering {"data": {"availability": 99.95}}, one request per connection."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"data": {"availability": 99.95}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


@pytest.fixture
def slo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SloHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slo"
    server.shutdown()
    server.server_close()
