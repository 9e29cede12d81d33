"""The services suite: real PostgreSQL, Redis and Celery workers.

Locally these tests skip when a service is missing; under CI=true they fail instead, because CI must run them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import kombu.pools
import pytest
from django.db import connection

from tests.conftest import UNDER_CI

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("CAIRN_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


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
    from cairn.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=broker_url, task_always_eager=False)
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
    *, database_url: str, broker_url: str, queues: str, name: str, log: Path
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cairn.settings",
        "SECRET_KEY": "services-test-secret",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_CONN_MAX_AGE": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cairn", "worker", "-Q", queues, "-n", f"{name}@%h",
         "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_until(predicate, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tail}")
