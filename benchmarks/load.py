"""A loopback HTTP/1.1 load generator: N keep-alive connections, each sending its next request when the last answered.

Standard library only (asyncio streams), so it measures the server rather than a client library. Every request
records its latency (from sending to the last byte of the body, including the connect when a connection had to
be opened) and its status; a socket error, a timeout or a malformed answer records status 0. An error is any
status outside 200–299. A server that answers `Connection: close` (gunicorn's sync workers do) gets a new
connection for the next request, as a browser would.

    result = load(host, port, [Target("items", "/api/v1/items/", {"Authorization": "Token …"})],
                  connections=8, duration=10)
    result.summary("items").requests_per_second
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter

# Status recorded for a request that got no HTTP answer at all (refused, reset, timed out, malformed).
NO_RESPONSE = 0
_MAX_HEADER_LINES = 200


@dataclass(frozen=True)
class Target:
    """One kind of request: a name to report it under, a path (with its query) and extra request headers."""

    name: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"


@dataclass(frozen=True)
class Sample:
    target: str
    status: int
    latency: float  # seconds

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Summary:
    """What one target (or all of them) did over the run."""

    requests: int
    errors: int
    requests_per_second: float
    p50: float  # seconds
    p99: float  # seconds
    statuses: dict[int, int]

    def line(self, name: str) -> str:
        return (
            f"{name}: {self.requests_per_second:.1f} requests/s, p50 {self.p50 * 1000:.1f} ms, "
            f"p99 {self.p99 * 1000:.1f} ms, {self.requests} requests, {self.errors} errors"
        )


@dataclass(frozen=True)
class LoadResult:
    samples: list[Sample]
    elapsed: float  # seconds from the first request to the last answer
    connections_opened: int
    errors_seen: list[str]  # the first few socket errors, for the report

    def summary(self, target: str | None = None) -> Summary:
        """Totals for one target's requests, or for all requests when `target` is None."""
        samples = [s for s in self.samples if target is None or s.target == target]
        latencies = sorted(s.latency for s in samples)
        return Summary(
            requests=len(samples),
            errors=sum(1 for s in samples if not s.ok),
            requests_per_second=len(samples) / self.elapsed if self.elapsed > 0 else math.nan,
            p50=percentile(latencies, 50),
            p99=percentile(latencies, 99),
            statuses=dict(sorted(Counter(s.status for s in samples).items())),
        )


def percentile(ordered: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], not {percent!r}")
    if not ordered:
        return math.nan
    rank = math.ceil(percent / 100 * len(ordered))
    return ordered[rank - 1]


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.x as we can read it."""


def load(
    host: str,
    port: int,
    targets: Sequence[Target],
    *,
    connections: int,
    duration: float | None = None,
    requests: int | None = None,
    timeout: float = 30.0,
) -> LoadResult:
    """Drive `targets` (in turn, each connection starting at a different one) until `duration` seconds have
    passed or `requests` requests were sent in all; exactly one of the two must be given."""
    return asyncio.run(
        load_async(
            host,
            port,
            targets,
            connections=connections,
            duration=duration,
            requests=requests,
            timeout=timeout,
        )
    )


async def load_async(
    host: str,
    port: int,
    targets: Sequence[Target],
    *,
    connections: int,
    duration: float | None = None,
    requests: int | None = None,
    timeout: float = 30.0,
) -> LoadResult:
    if (duration is None) == (requests is None):
        raise ValueError("give exactly one of duration (seconds) or requests (a count)")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be a positive number of seconds, not {duration!r}")
    if requests is not None and requests < 1:
        raise ValueError(f"requests must be at least 1, not {requests!r}")
    if connections < 1:
        raise ValueError(f"connections must be at least 1, not {connections!r}")
    if not targets:
        raise ValueError("no targets to request")
    run = _Run(host, port, list(targets), duration=duration, budget=requests, timeout=timeout)
    started = perf_counter()
    run.deadline = None if duration is None else started + duration
    await asyncio.gather(*(run.connection(index) for index in range(connections)))
    return LoadResult(
        samples=run.samples,
        elapsed=perf_counter() - started,
        connections_opened=run.opened,
        errors_seen=run.errors_seen,
    )


class _Run:
    def __init__(
        self, host: str, port: int, targets: list[Target], *, duration: float | None, budget: int | None,
        timeout: float,
    ) -> None:  # fmt: skip
        self.host, self.port, self.targets, self.timeout = host, port, targets, timeout
        self.budget = budget
        self.deadline: float | None = None
        self.samples: list[Sample] = []
        self.opened = 0
        self.errors_seen: list[str] = []
        self.requests = {
            target.name: _request_bytes(target, host, port) for target in targets
        }  # built once: the generator's own cost per request stays small

    def _claim(self) -> bool:
        if self.deadline is not None:
            return perf_counter() < self.deadline
        assert self.budget is not None
        if self.budget <= 0:
            return False
        self.budget -= 1  # one event loop thread: no other coroutine runs between the test and the decrement
        return True

    async def connection(self, index: int) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        turn = index
        try:
            while self._claim():
                target = self.targets[turn % len(self.targets)]
                turn += 1
                started = perf_counter()
                try:
                    if writer is None:
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(self.host, self.port), self.timeout
                        )
                        self.opened += 1
                    assert reader is not None
                    writer.write(self.requests[target.name])
                    status, keep_alive = await asyncio.wait_for(_read_response(reader), self.timeout)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    self.samples.append(Sample(target.name, NO_RESPONSE, perf_counter() - started))
                    if len(self.errors_seen) < 10:
                        self.errors_seen.append(f"{target.name}: {type(exc).__name__}: {exc}")
                    writer = await _close(writer)
                    continue
                self.samples.append(Sample(target.name, status, perf_counter() - started))
                if not keep_alive:
                    writer = await _close(writer)
        finally:
            await _close(writer)


def _request_bytes(target: Target, host: str, port: int) -> bytes:
    headers = {"Host": f"{host}:{port}", "User-Agent": "cairn-benchmarks", "Accept": "*/*", **target.headers}
    lines = [
        f"{target.method} {target.path} HTTP/1.1",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return None
    writer.close()
    with contextlib.suppress(OSError):  # the peer already reset it; it is closed either way
        await writer.wait_closed()
    return None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response; return its status and whether the connection may carry another request."""
    status_line = await reader.readline()
    if not status_line:
        raise ProtocolError("connection closed before a status line")
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    version, status = parts[0], int(parts[1])
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = await reader.readline()
        if not line:
            raise ProtocolError("connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ProtocolError(f"more than {_MAX_HEADER_LINES} header lines")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        await _read_chunked(reader)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length {length!r}")
        await reader.readexactly(int(length))
    elif status in (204, 304) or 100 <= status < 200:
        pass  # no body by definition
    else:
        await reader.read()  # the body runs to the end of the connection
        keep_alive = False
    return status, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {size_line[:40]!r}") from None
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        await reader.readexactly(size + 2)  # the chunk and its CRLF
