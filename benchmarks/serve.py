"""Run Cairn under gunicorn on a free loopback port for the web benchmarks and `make soak`.

Production-like: DEBUG off, a real SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, persistent database connections. Only
HTTPS is off (there is no TLS on loopback), so neither the redirect nor the Secure cookie flag gets in the way.
The settings module is benchmarks.settings: cairn.settings plus the bare baseline views under /bench/.

Workers, for a 2-core machine that also runs PostgreSQL and the load generator: 2 gthread workers (one process
per core; the GIL makes more threads add no CPU) with 4 threads each, so a worker waiting on PostgreSQL serves
another request meanwhile, and gthread keeps HTTP/1.1 connections alive as the load generator expects (sync
workers close every connection). Both sides of every ratio run on the same server.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WORKERS = 2
THREADS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for Django's `DATABASES['default']` as it is now (inside fresh_database, the bench one)."""
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError(f"the web benchmarks run on PostgreSQL, not {settings_dict['ENGINE']}")
    user = urllib.parse.quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{urllib.parse.quote(password, safe='')}" if password else user
    host = settings_dict.get("HOST") or HOST
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{urllib.parse.quote(settings_dict['NAME'], safe='')}"


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def session_cookie(self, username: str, password: str) -> str:
        """Sign in through the login form, as a browser would; return the Cookie header for the session."""
        opener = urllib.request.build_opener(_NoRedirect)
        with opener.open(self.url("/accounts/login/"), timeout=30) as page:
            html = page.read().decode()
            cookies = _cookies(page.headers.get_all("Set-Cookie") or [])
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if token is None:
            raise RuntimeError("the login page has no CSRF token")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 — always http://127.0.0.1
            self.url("/accounts/login/"),
            data=form,
            headers={"Cookie": _cookie_header(cookies), "Referer": self.url("/accounts/login/")},
        )
        try:
            response = opener.open(request, timeout=30)
        except urllib.error.HTTPError as redirect:  # _NoRedirect turns the 302 into this
            response = redirect
        cookies.update(_cookies(response.headers.get_all("Set-Cookie") or []))
        if response.status != 302 or "sessionid" not in cookies:
            raise RuntimeError(f"signing in as {username!r} failed: HTTP {response.status}")
        return f"sessionid={cookies['sessionid']}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _cookies(set_cookie_headers: list[str]) -> dict[str, str]:
    pairs = (header.split(";", 1)[0].partition("=") for header in set_cookie_headers)
    return {name.strip(): value.strip() for name, _, value in pairs}


def _cookie_header(cookies: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def environment(database: str, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        DATABASE_URL=database,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        CELERY_BROKER_URL="",  # nothing these pages do is queued; never reach for a broker
        LOG_LEVEL="WARNING",
        # One signed-in user stands in for many: production's per-user API limit (1000/minute) would answer
        # most of the load with 429s. The same limits apply to both sides of every ratio.
        CAIRN_API_THROTTLE_USER="1000000/minute",
        CAIRN_API_THROTTLE_ANON="1000000/minute",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@contextmanager
def gunicorn(
    database: str, *, workers: int = WORKERS, threads: int = THREADS, timeout: float = 60
) -> Iterator[Server]:
    """gunicorn serving Cairn against `database` (a DATABASE_URL) until the block ends; stopped with SIGTERM."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "cairn.wsgi",
        f"--bind={HOST}:{port}",
        f"--workers={workers}",
        "--worker-class=gthread",
        f"--threads={threads}",
        "--keep-alive=30",  # the load generator sends the next request at once; never drop it between two
        "--graceful-timeout=10",
        "--log-level=warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=environment(database))  # noqa: S603 — our own command
    try:
        server = Server(HOST, port)
        _wait_until_answering(server, process, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(server: Server, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode} before answering")
        try:
            # The login page needs the database and the templates: answering it means the app is really up.
            with urllib.request.urlopen(server.url("/accounts/login/"), timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"gunicorn answers the login page with HTTP {error.code} (see its log above)"
            ) from None
        except OSError:  # not listening yet
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on {server.url('/')} within {timeout:.0f} s")
