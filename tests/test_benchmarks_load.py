"""The benchmarks' HTTP load generator, against a tiny http.server on loopback (no database, no wall clock)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks.load import NO_RESPONSE, LoadResult, Target, load, percentile


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless a response says otherwise
    server: Server

    def do_GET(self) -> None:  # http.server's naming
        self.server.record(self)
        if self.path == "/ok":
            self._send(200, b'{"ok": true}')
        elif self.path == "/missing":
            self._send(404, b"no such page")
        elif self.path == "/close":
            self._send(200, b"bye", close=True)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (b"first part, ", b"second part"):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/drop":
            self.close_connection = True  # no answer at all: the client sees the connection end
        elif self.path == "/garbage":
            self.wfile.write(b"SPDY/9 what\r\n\r\n")
            self.close_connection = True

    def _send(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.cookies: list[str | None] = []
        self.peers: set[tuple[str, int]] = set()

    def record(self, handler: Handler) -> None:
        with self.lock:
            self.cookies.append(handler.headers.get("Cookie"))
            self.peers.add(handler.client_address)


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def drive(
    server: Server, *paths: str, connections: int = 2, requests: int = 10, **headers: str
) -> LoadResult:
    host, port = server.server_address[:2]
    targets = [Target(path.strip("/"), path, headers) for path in paths]
    return load(str(host), int(port), targets, connections=connections, requests=requests, timeout=5)


def test_it_sends_the_requested_number_over_keep_alive_connections(server: Server) -> None:
    result = drive(server, "/ok", connections=3, requests=30)

    summary = result.summary()
    assert summary.requests == 30
    assert summary.errors == 0
    assert summary.statuses == {200: 30}
    assert result.connections_opened == 3
    assert len(server.peers) == 3  # the server saw three client sockets, not thirty


def test_it_sends_the_given_headers_with_every_request(server: Server) -> None:
    drive(server, "/ok", requests=5, Cookie="sessionid=abc123")

    assert server.cookies == ["sessionid=abc123"] * 5


def test_it_counts_non_2xx_answers_as_errors_per_target(server: Server) -> None:
    result = drive(server, "/ok", "/missing", connections=2, requests=20)

    ok, missing = result.summary("ok"), result.summary("missing")
    assert (ok.requests, ok.errors, ok.statuses) == (10, 0, {200: 10})
    assert (missing.requests, missing.errors, missing.statuses) == (10, 10, {404: 10})
    assert result.summary().errors == 10
    assert result.connections_opened == 2  # a 404 with a body keeps the connection


def test_it_reconnects_when_the_server_closes_after_each_answer(server: Server) -> None:
    result = drive(server, "/close", connections=2, requests=8)

    assert result.summary().statuses == {200: 8}
    assert result.connections_opened == 8


def test_it_reads_chunked_bodies_and_keeps_the_connection(server: Server) -> None:
    result = drive(server, "/chunked", "/ok", connections=1, requests=6)

    assert result.summary().statuses == {200: 6}
    assert result.connections_opened == 1


def test_it_records_a_dropped_connection_as_an_error_and_carries_on(server: Server) -> None:
    result = drive(server, "/drop", "/ok", connections=1, requests=6)

    assert result.summary("drop").statuses == {NO_RESPONSE: 3}
    assert result.summary("drop").errors == 3
    assert result.summary("ok").statuses == {200: 3}
    assert "connection closed before a status line" in result.errors_seen[0]


def test_it_records_a_malformed_answer_as_an_error(server: Server) -> None:
    result = drive(server, "/garbage", connections=1, requests=2)

    assert result.summary().statuses == {NO_RESPONSE: 2}
    assert "not an HTTP/1.x status line" in result.errors_seen[0]


def test_it_records_refused_connections_as_errors() -> None:
    closed = Server()
    host, port = closed.server_address[:2]
    closed.server_close()  # nothing listens on that port any more

    result = load(str(host), int(port), [Target("gone", "/")], connections=2, requests=4, timeout=5)

    assert result.summary().errors == 4
    assert result.summary().statuses == {NO_RESPONSE: 4}
    assert "ConnectionRefusedError" in result.errors_seen[0]


def test_it_stops_after_the_duration(server: Server) -> None:
    host, port = server.server_address[:2]
    result = load(str(host), int(port), [Target("ok", "/ok")], connections=2, duration=0.2, timeout=5)

    summary = result.summary()
    assert summary.requests > 0
    assert summary.errors == 0
    assert summary.requests_per_second == summary.requests / result.elapsed
    assert summary.p50 <= summary.p99


def test_it_refuses_both_or_neither_of_duration_and_requests() -> None:
    with pytest.raises(ValueError, match="exactly one of duration"):
        load("127.0.0.1", 9, [Target("x", "/")], connections=1)
    with pytest.raises(ValueError, match="exactly one of duration"):
        load("127.0.0.1", 9, [Target("x", "/")], connections=1, duration=1, requests=1)
    with pytest.raises(ValueError, match="connections must be at least 1"):
        load("127.0.0.1", 9, [Target("x", "/")], connections=0, requests=1)


def test_it_takes_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]

    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
