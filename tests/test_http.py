"""cairn.lib.http against real HTTP servers on loopback; only DNS answers are faked."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cairn.lib import http
from cairn.lib.http import HttpError, RequestTimeout, ResponseTooLarge, TargetRefused

LOOPBACK = ["127.0.0.1/32"]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
        route = self.server.routes.get(self.path.partition("?")[0])
        if route is None:
            self.reply(404, b"not found")
        else:
            route(self)

    do_POST = do_HEAD = do_PUT = do_GET

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.routes: dict[str, Callable[[Handler], None]] = {}
        self.received: list[Received] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on trickling or oversized answers are the point of some tests

    def route(self, path: str) -> Callable[[Callable[[Handler], None]], Callable[[Handler], None]]:
        def register(handler: Callable[[Handler], None]) -> Callable[[Handler], None]:
            self.routes[path] = handler
            return handler

        return register


def start_server() -> Server:
    server = Server()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[Server]:
    started = start_server()
    yield started
    started.shutdown()
    started.server_close()


@pytest.fixture
def other_server() -> Iterator[Server]:
    started = start_server()
    yield started
    started.shutdown()
    started.server_close()


@dataclass
class FakeDns:
    """Answers for chosen names; every other name goes to the real resolver. Counts lookups per name."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        fake.lookups.append(str(host))
        if host not in fake.answers:
            return real(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port),
            )
            for address in fake.answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket connects to."""
    seen: list[Any] = []
    real = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        seen.append(address)
        real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = LOOPBACK


def test_it_gets_a_page(server: Server, loopback_allowed: None) -> None:
    server.routes["/ok"] = lambda h: h.reply(200, b"caf\xe9", {"Content-Type": "text/plain; charset=latin-1"})

    response = http.request("GET", f"{server.url}/ok?q=1")

    assert response.status == 200
    assert response.body == b"caf\xe9"
    assert response.text() == "café"
    assert response.headers["content-type"] == "text/plain; charset=latin-1"
    assert response.url == f"{server.url}/ok?q=1"
    assert 0 < response.elapsed < 2
    sent = server.received[0]
    assert sent.headers["User-Agent"] == "Cairn-collector/1"
    assert sent.headers["Host"] == f"127.0.0.1:{server.port}"
    assert sent.headers.get("Accept-Encoding", "identity") == "identity"


def test_it_posts_a_body(server: Server, loopback_allowed: None) -> None:
    server.routes["/echo"] = lambda h: h.reply(
        201, json.dumps({"got": h.server.received[-1].body.decode()}).encode()
    )

    response = http.request(
        "POST", f"{server.url}/echo", body=b'{"a": 1}', headers={"Content-Type": "application/json"}
    )

    assert response.status == 201
    assert response.json() == {"got": '{"a": 1}'}
    assert server.received[0].method == "POST"
    assert server.received[0].headers["Content-Type"] == "application/json"


def test_it_returns_server_errors_instead_of_raising(server: Server, loopback_allowed: None) -> None:
    server.routes["/fail"] = lambda h: h.reply(500, b"boom")

    response = http.request("GET", f"{server.url}/fail")

    assert (response.status, response.body) == (500, b"boom")


def test_it_tells_transient_statuses() -> None:
    assert [http.is_transient_status(s) for s in (500, 503, 429, 408)] == [True] * 4
    assert [http.is_transient_status(s) for s in (200, 301, 400, 401, 404, 410)] == [False] * 6


def test_it_times_out_on_a_slow_server(server: Server, loopback_allowed: None) -> None:
    server.routes["/slow"] = lambda h: (time.sleep(0.6), h.reply(200, b"late"))

    with pytest.raises(RequestTimeout) as caught:
        http.request("GET", f"{server.url}/slow", timeout=0.2)

    assert caught.value.transient is True


def test_it_stops_a_trickling_server_at_the_deadline(server: Server, loopback_allowed: None) -> None:
    def trickle(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)

    server.routes["/trickle"] = trickle
    started = time.monotonic()

    with pytest.raises(RequestTimeout):
        http.request("GET", f"{server.url}/trickle", timeout=0.7)

    assert time.monotonic() - started < 1.2


def test_it_refuses_a_large_content_length(server: Server, loopback_allowed: None) -> None:
    server.routes["/big"] = lambda h: h.reply(200, b"x" * 2048)

    with pytest.raises(ResponseTooLarge) as caught:
        http.request("GET", f"{server.url}/big", max_bytes=1024)

    assert caught.value.transient is False


def test_it_refuses_a_large_chunked_body(server: Server, loopback_allowed: None) -> None:
    def chunked(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(8):
            handler.wfile.write(b"200\r\n" + b"x" * 512 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server.routes["/chunked"] = chunked

    with pytest.raises(ResponseTooLarge):
        http.request("GET", f"{server.url}/chunked", max_bytes=1024)
    assert len(http.request("GET", f"{server.url}/chunked", max_bytes=4096).body) == 4096


def test_it_takes_the_size_limit_from_settings(server: Server, settings: Any) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = LOOPBACK
    settings.CAIRN_COLLECTOR_MAX_BYTES = 10
    server.routes["/big"] = lambda h: h.reply(200, b"x" * 11)

    with pytest.raises(ResponseTooLarge):
        http.request("GET", f"{server.url}/big")


def test_it_raises_a_permanent_error_for_bad_json(server: Server, loopback_allowed: None) -> None:
    server.routes["/notjson"] = lambda h: h.reply(200, b"<html>")
    response = http.request("GET", f"{server.url}/notjson")

    with pytest.raises(HttpError, match="response is not JSON") as caught:
        response.json()

    assert caught.value.transient is False


def test_it_follows_a_redirect(server: Server, loopback_allowed: None) -> None:
    server.routes["/old"] = lambda h: h.reply(301, headers={"Location": "/new"})
    server.routes["/new"] = lambda h: h.reply(200, b"here")

    response = http.request("GET", f"{server.url}/old")

    assert (response.status, response.body, response.url) == (200, b"here", f"{server.url}/new")


def test_it_refuses_more_redirects_than_allowed(server: Server, loopback_allowed: None) -> None:
    for n in range(1, 5):
        server.routes[f"/hop{n}"] = lambda h, n=n: h.reply(302, headers={"Location": f"/hop{n - 1}"})
    server.routes["/hop0"] = lambda h: h.reply(200, b"end")

    with pytest.raises(TargetRefused, match="redirects"):
        http.request("GET", f"{server.url}/hop4", max_redirects=3)
    assert http.request("GET", f"{server.url}/hop3", max_redirects=3).body == b"end"


def test_it_turns_a_post_into_a_get_on_303(server: Server, loopback_allowed: None) -> None:
    server.routes["/form"] = lambda h: h.reply(303, headers={"Location": "/result"})
    server.routes["/result"] = lambda h: h.reply(200, b"done")

    response = http.request("POST", f"{server.url}/form", body=b"a=1", headers={"Content-Type": "x/y"})

    assert response.body == b"done"
    assert [(r.method, r.body) for r in server.received] == [("POST", b"a=1"), ("GET", b"")]
    assert "Content-Type" not in server.received[1].headers


def test_it_keeps_the_method_and_body_on_307(server: Server, loopback_allowed: None) -> None:
    server.routes["/form"] = lambda h: h.reply(307, headers={"Location": "/result"})
    server.routes["/result"] = lambda h: h.reply(200, b"done")

    http.request("POST", f"{server.url}/form", body=b"a=1")

    assert [(r.method, r.body) for r in server.received] == [("POST", b"a=1"), ("POST", b"a=1")]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://2130706433:{port}/",
        "http://localhost:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://192.168.1.1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a9fe:a9fe]/",
    ],
)
def test_it_refuses_non_public_addresses(url: str, server: Server, connects: list[Any]) -> None:
    with pytest.raises(TargetRefused) as caught:
        http.request("GET", url.format(port=server.port))

    assert caught.value.transient is False
    assert connects == []
    assert server.received == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "http:///path", "http://[::1/"],
)
def test_it_refuses_other_schemes_and_bad_urls(url: str, connects: list[Any]) -> None:
    with pytest.raises(TargetRefused):
        http.request("GET", url)

    assert connects == []


def test_it_refuses_a_name_resolving_to_a_private_address(dns: FakeDns, connects: list[Any]) -> None:
    dns.answers["internal.example"] = ["10.0.0.5"]

    with pytest.raises(TargetRefused, match=r"10\.0\.0\.5"):
        http.request("GET", "http://internal.example/")

    assert connects == []


def test_it_refuses_a_name_with_one_private_address_among_public_ones(
    dns: FakeDns, connects: list[Any]
) -> None:
    dns.answers["mixed.example"] = ["93.184.216.34", "127.0.0.1"]

    with pytest.raises(TargetRefused):
        http.request("GET", "http://mixed.example/")

    assert connects == []


def test_it_connects_to_the_address_it_checked(
    server: Server, dns: FakeDns, connects: list[Any], settings: Any
) -> None:
    """One lookup per connection, and the socket goes to that answer: a rebinding resolver gets no second say."""
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["public.example"]
    dns.answers["public.example"] = ["127.0.0.1"]
    server.routes["/"] = lambda h: h.reply(200, b"ok")

    response = http.request("GET", f"http://public.example:{server.port}/")

    assert response.body == b"ok"
    assert dns.lookups == ["public.example"]
    assert connects == [("127.0.0.1", server.port)]
    assert server.received[0].headers["Host"] == f"public.example:{server.port}"


def test_it_refuses_a_redirect_from_an_allowed_host_to_a_private_address(
    server: Server, dns: FakeDns, settings: Any
) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["public.example"]
    dns.answers["public.example"] = ["127.0.0.1"]
    server.routes["/"] = lambda h: h.reply(
        302, headers={"Location": f"http://127.0.0.1:{server.port}/secret"}
    )
    server.routes["/secret"] = lambda h: h.reply(200, b"secret")

    with pytest.raises(TargetRefused):
        http.request("GET", f"http://public.example:{server.port}/")

    assert [r.path for r in server.received] == ["/"]


def test_it_refuses_a_redirect_to_another_scheme(server: Server, loopback_allowed: None) -> None:
    server.routes["/"] = lambda h: h.reply(302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(TargetRefused, match="scheme"):
        http.request("GET", f"{server.url}/")


def test_it_lets_an_allowlisted_network_through(server: Server, settings: Any) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8"]
    server.routes["/"] = lambda h: h.reply(200, b"ok")

    assert http.request("GET", f"{server.url}/").body == b"ok"
    assert http.request("GET", f"http://[::ffff:127.0.0.1]:{server.port}/").body == b"ok"


def test_it_prefers_the_argument_over_the_setting(server: Server, settings: Any) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = LOOPBACK
    server.routes["/"] = lambda h: h.reply(200, b"ok")

    with pytest.raises(TargetRefused):
        http.request("GET", f"{server.url}/", allowed_networks=[])
    assert http.request("GET", f"{server.url}/", allowed_networks=["127.0.0.1"]).body == b"ok"


def test_it_lets_an_allowlisted_host_name_through(server: Server, dns: FakeDns, settings: Any) -> None:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["Collector.Internal"]
    dns.answers["collector.internal"] = ["127.0.0.1"]
    server.routes["/"] = lambda h: h.reply(200, b"ok")

    assert http.request("GET", f"http://COLLECTOR.internal:{server.port}/").body == b"ok"


def test_it_reports_refused_connections_as_transient(loopback_allowed: None) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    with pytest.raises(HttpError) as caught:
        http.request("GET", f"http://127.0.0.1:{port}/")

    assert caught.value.transient is True
    assert not isinstance(caught.value, TargetRefused)


def test_it_reports_unknown_names_as_transient() -> None:
    with pytest.raises(HttpError) as caught:
        http.request("GET", "http://no-such-host.invalid/")

    assert caught.value.transient is True


def test_it_never_logs_credentials(
    server: Server, loopback_allowed: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cairn.http")
    server.routes["/start"] = lambda h: h.reply(302, headers={"Location": "/end?token=query-secret"})
    server.routes["/end"] = lambda h: h.reply(200, b"ok")

    response = http.request(
        "GET",
        f"http://someone:url-secret@127.0.0.1:{server.port}/start?token=query-secret",
        headers={"Authorization": "Bearer header-secret"},
    )

    assert response.status == 200
    assert "url-secret" not in response.url
    assert any(record.name == "cairn.http" for record in caplog.records)
    for secret in ("header-secret", "url-secret", "query-secret", "someone"):
        assert secret not in caplog.text


def test_it_sends_userinfo_as_basic_auth(server: Server, loopback_allowed: None) -> None:
    server.routes["/"] = lambda h: h.reply(200)

    http.request("GET", f"http://user:p%40ss@127.0.0.1:{server.port}/")

    assert server.received[0].headers["Authorization"] == "Basic dXNlcjpwQHNz"


def test_it_drops_credentials_on_a_redirect_to_another_host(
    server: Server, other_server: Server, dns: FakeDns, loopback_allowed: None
) -> None:
    dns.answers["a.example"] = dns.answers["b.example"] = ["127.0.0.1"]
    server.routes["/same"] = lambda h: h.reply(302, headers={"Location": "/away"})
    server.routes["/away"] = lambda h: h.reply(
        302, headers={"Location": f"http://b.example:{other_server.port}/"}
    )
    other_server.routes["/"] = lambda h: h.reply(200, b"b")

    response = http.request(
        "GET",
        f"http://a.example:{server.port}/same",
        headers={"Authorization": "Bearer header-secret", "Cookie": "s=1", "X-Other": "kept"},
    )

    assert response.body == b"b"
    assert [r.headers.get("Authorization") for r in server.received] == ["Bearer header-secret"] * 2
    received = other_server.received[0].headers
    assert "Authorization" not in received
    assert "Cookie" not in received
    assert received["X-Other"] == "kept"


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate for public.example, trusted as the only CA for the test."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    path = tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(path), "-out", str(path), "-days", "1", "-subj", "/CN=public.example",
         "-addext", "subjectAltName=DNS:public.example"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path


@pytest.fixture
def tls_server(server: Server, certificate: Path) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def test_it_checks_the_certificate_against_the_host_name(
    tls_server: Server, certificate: Path, dns: FakeDns, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    dns.answers["public.example"] = dns.answers["other.example"] = ["127.0.0.1"]
    tls_server.routes["/"] = lambda h: h.reply(200, b"secure")

    assert http.request("GET", f"https://public.example:{tls_server.port}/").body == b"secure"
    with pytest.raises(HttpError) as caught:
        http.request("GET", f"https://other.example:{tls_server.port}/")
    assert caught.value.transient is False
    assert [r.headers["Host"] for r in tls_server.received] == [f"public.example:{tls_server.port}"]
