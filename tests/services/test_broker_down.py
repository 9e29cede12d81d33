"""A real broker outage: the web side sends through a TCP proxy in front of Redis that the test closes and reopens
(the machine's Redis itself keeps running for everyone else); a real worker, connected to Redis directly, runs
what the outbox sends once the broker is back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from cairn import outbox
from cairn.models import OutboxMessage
from roadmap.models import ChecklistItem, ImportRun
from tests.services.conftest import _reset_connections, start_worker, stop, wait_until

pytestmark = pytest.mark.services


class TcpProxy:
    """Forwards loopback connections on `port` to `target`. Closed, it refuses new connections and cuts the open
    ones, as a stopped broker does; reopened, it listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(broker_url: str) -> Iterator[TcpProxy]:
    parsed = urlsplit(broker_url)
    tcp = TcpProxy((parsed.hostname or "127.0.0.1", parsed.port or 6379))
    tcp.open()
    try:
        yield tcp
    finally:
        tcp.close()


@pytest.fixture
def web_side_through(proxy: TcpProxy, broker_url: str) -> Iterator[None]:
    """This process (the web side) sends to the broker through the proxy; the worker connects directly."""
    from cairn.celery import app

    parsed = urlsplit(broker_url)
    netloc = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
    proxied = urlunsplit(parsed._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=proxied, task_always_eager=False)
    _reset_connections(app)
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_connections(app)


def test_a_large_import_asked_for_during_an_outage_runs_on_the_worker_when_the_broker_is_back(
    team, settings, postgres_url, broker_url, proxy, web_side_through, tmp_path
):
    redis.Redis.from_url(broker_url).flushdb()  # a leftover message from an earlier run must not interfere
    settings.CAIRN_CHECKLIST_INLINE_ROWS = 5
    log = tmp_path / "worker.log"
    worker = start_worker(
        database_url=postgres_url, broker_url=broker_url, queues="default", name="outage", log=log
    )
    try:
        proxy.close()  # the broker goes away
        rows = "key,section,title\n" + "".join(f"o-{n},Foundations,Outage task {n}\n" for n in range(20))
        upload = SimpleUploadedFile("big.csv", rows.encode(), content_type="text/csv")
        client = APIClient()
        client.force_authenticate(team.manager)

        response = client.post(
            "/api/v1/imports/checklist/", {"program": team.program.key, "file": upload}, format="multipart"
        )

        # It answered (no request hangs on a dead broker) and said why the work has not started.
        assert response.status_code == 202
        assert response.json()["delayed"] is True
        run = ImportRun.objects.get()
        assert run.status == ImportRun.Status.PENDING
        assert OutboxMessage.objects.pending().get().kwargs == {"run_id": run.pk}
        with pytest.raises(CommandError, match="unreachable"):
            call_command("outbox_flush")

        proxy.open()  # the broker is back
        call_command("outbox_flush")

        wait_until(
            lambda: ImportRun.objects.get(pk=run.pk).status == ImportRun.Status.SUCCEEDED,
            timeout=60,
            what="the worker to run the import sent by outbox_flush",
            log=log,
        )
    finally:
        stop(worker)
    assert ChecklistItem.objects.filter(program=team.program, key__startswith="o-").count() == 20
    assert not OutboxMessage.objects.pending().exists()
    assert outbox.delayed_since() is None
    assert "roadmap.tasks.checklist_import_run" in log.read_text()
