"""The one door for outbound HTTP: every request to a user-supplied URL goes through `request()`.

Evidence collectors fetch URLs that program members type in, so a plain HTTP client would let anyone with
edit rights make the server call its own admin ports, the cloud metadata service or the office network
(server-side request forgery). This module only speaks http/https, resolves the host once per connection,
refuses non-public addresses unless allowlisted (`CAIRN_COLLECTOR_ALLOWED_NETWORKS`), connects to the very
address it checked (so DNS rebinding cannot slip in between), re-checks every redirect, caps the body size
and bounds the whole call by its timeout. HTTP error statuses are returned, not raised: callers decide.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings

logger = logging.getLogger("cairn.http")

USER_AGENT = "Cairn-collector/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials for one origin and must not follow a redirect to another.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class HttpError(Exception):
    """Any failure; `transient` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class TargetRefused(HttpError):
    """The URL, or an address it resolves or redirects to, is not one Cairn may call."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class ResponseTooLarge(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class RequestTimeout(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    url: str  # final URL, after redirects
    elapsed: float  # seconds for the whole call, redirects included

    def text(self) -> str:
        message = Message()
        message["content-type"] = self.headers.get("content-type", "")
        charset = message.get_content_charset() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise HttpError(f"response is not JSON: {error}", transient=False) from error


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
    max_bytes: int | None = None,
    max_redirects: int | None = None,
    allowed_networks: Sequence[str] | None = None,
) -> Response:
    """Send one request, following redirects; `timeout` bounds the whole call, redirects included."""
    max_bytes = settings.CAIRN_COLLECTOR_MAX_BYTES if max_bytes is None else max_bytes
    max_redirects = settings.CAIRN_COLLECTOR_MAX_REDIRECTS if max_redirects is None else max_redirects
    if allowed_networks is None:
        allowed_networks = settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS
    started = time.monotonic()
    guard = _Guard.parse(allowed_networks, deadline=started + timeout)
    target = _Target.parse(url)
    method = method.upper()
    sent = dict(headers or {})
    names = {name.lower() for name in sent}
    if "user-agent" not in names:
        sent["User-Agent"] = USER_AGENT
    parts = urlsplit(url)
    if parts.username is not None and "authorization" not in names:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        sent["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")

    for hop in range(max_redirects + 1):
        status, received, content = _send(guard, method, target, sent, body, max_bytes)
        location = received.get("location")
        if status not in REDIRECT_STATUSES or not location:
            final_url = urlsplit(url)._replace(netloc=urlsplit(url).netloc.rpartition("@")[2]).geturl()
            return Response(status, received, content, final_url, time.monotonic() - started)
        if hop == max_redirects:
            break
        url = urljoin(url, location)
        next_target = _Target.parse(url)
        logger.debug("redirect %s to %s", status, next_target.loggable)
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            sent = {k: v for k, v in sent.items() if k.lower() not in ("content-type", "content-length")}
        if not target.may_keep_credentials_for(next_target):
            sent = {k: v for k, v in sent.items() if k.lower() not in CREDENTIAL_HEADERS}
        target = next_target
    raise TargetRefused(f"more than {max_redirects} redirects")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # IDNA-encoded, lower-case, no brackets
    port: int
    path: str  # path and query, as sent

    @classmethod
    def parse(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            scheme, hostname, port = parts.scheme.lower(), parts.hostname, parts.port
            host = hostname.encode("idna").decode("ascii") if hostname else ""
        except (ValueError, UnicodeError) as error:
            raise TargetRefused(f"bad URL: {error}") from error
        if scheme not in ("http", "https"):
            raise TargetRefused(f"scheme {scheme or '(none)'!r} is not http or https")
        if not host:
            raise TargetRefused("URL has no host")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(scheme, host, port or (443 if scheme == "https" else 80), path)

    @property
    def loggable(self) -> str:
        """The URL without userinfo and query, either of which may hold credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path.partition('?')[0]}"

    def may_keep_credentials_for(self, other: _Target) -> bool:
        """Same host, no downgrade to plain http, same port unless it is the standard upgrade to https."""
        if self.host != other.host or (self.scheme, other.scheme) == ("https", "http"):
            return False
        return self.port == other.port or (self.port, other.port) == (80, 443)


@dataclass(frozen=True)
class _Guard:
    """Which addresses one call may reach, and when it must be over."""

    networks: tuple[IPNetwork, ...]
    hosts: frozenset[str]
    deadline: float

    @classmethod
    def parse(cls, allowed: Sequence[str], *, deadline: float) -> _Guard:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:  # a host name; a mistyped CIDR lands here too and matches nothing
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts), deadline)

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left

    def allows(self, host: str, address: IPAddress) -> bool:
        if host.rstrip(".") in self.hosts:
            return True
        embedded = _embedded_ipv4(address)
        effective = embedded or address
        if any(effective in network for network in self.networks if network.version == effective.version):
            return True
        tunnelled: list[IPAddress | None] = []
        if isinstance(address, ipaddress.IPv6Address) and not embedded:  # 6to4 and Teredo carry IPv4 too
            tunnelled = [address.sixtofour, *(address.teredo or ())]
        return all(_is_public(each) for each in (effective, *tunnelled) if each is not None)

    def open_socket(self, host: str, port: int) -> socket.socket:
        """A socket connected to an address of `host` that passed the check; no second DNS lookup."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise HttpError(f"cannot resolve {host}: {error}", transient=True) from error
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
            if not self.allows(host, address):
                raise TargetRefused(f"{host} resolves to {address}, which is not a public address")
        last_error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.remaining())
                sock.connect(sockaddr)
            except OSError as error:
                sock.close()
                last_error = error
                continue
            return sock
        raise last_error


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to `address` really goes to (IPv4-mapped or NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address in NAT64_PREFIX:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: IPAddress) -> bool:
    return (
        address.is_global
        and not address.is_multicast  # is_global is True for global-scope multicast
        and not address.is_unspecified
        and not address.is_reserved
        and not address.is_link_local
        and not (address.version == 4 and address in CARRIER_GRADE_NAT)
    )


class _DeadlineReader(io.RawIOBase):
    """Gives each socket read only the time left, so a server trickling bytes cannot outlast the call."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, guard: _Guard) -> None:
        self._raw, self._sock, self._guard = raw, sock, guard

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._guard.remaining())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, guard))


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, guard: _Guard) -> None:
        super().__init__(host, port, timeout=guard.remaining())
        self.guard = guard
        self.response_class = functools.partial(_DeadlineResponse, guard=guard)  # type: ignore[assignment]

    def connect(self) -> None:
        self.sock = self.guard.open_socket(self.host, self.port)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, guard: _Guard) -> None:
        super().__init__(host, port, timeout=guard.remaining(), context=ssl.create_default_context())
        self.guard = guard
        self.response_class = functools.partial(_DeadlineResponse, guard=guard)  # type: ignore[assignment]

    def connect(self) -> None:
        sock = self.guard.open_socket(self.host, self.port)
        try:  # SNI and certificate checks use the host name, although the socket went to a checked address
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise


def _send(
    guard: _Guard, method: str, target: _Target, headers: dict[str, str], body: bytes | None, max_bytes: int
) -> tuple[int, dict[str, str], bytes]:
    logger.debug("%s %s", method, target.loggable)
    kind = _GuardedHTTPSConnection if target.scheme == "https" else _GuardedHTTPConnection
    try:
        connection = kind(target.host, target.port, guard=guard)
        try:
            connection.request(method, target.path, body=body, headers=headers)
            response = connection.getresponse()
            received: dict[str, str] = {}
            for name, value in response.getheaders():
                key = name.lower()
                received[key] = f"{received[key]}, {value}" if key in received else value
            length = received.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise ResponseTooLarge(f"Content-Length {length} is over the limit of {max_bytes} bytes")
            content = response.read(max_bytes + 1)
            if len(content) > max_bytes:
                raise ResponseTooLarge(f"body is over the limit of {max_bytes} bytes")
            return response.status, received, content
        finally:
            connection.close()
    except HttpError:
        raise
    except http.client.InvalidURL as error:
        raise TargetRefused(f"bad URL: {error}") from error
    except TimeoutError as error:
        raise RequestTimeout(f"{target.loggable} timed out") from error
    except ssl.SSLCertVerificationError as error:
        raise HttpError(f"{target.loggable}: {error.verify_message}", transient=False) from error
    except (OSError, http.client.HTTPException) as error:
        raise HttpError(f"{target.loggable}: {type(error).__name__} {error}", transient=True) from error
    except ValueError as error:  # a header value with a line break, for one
        raise HttpError(f"invalid request: {error}", transient=False) from error
