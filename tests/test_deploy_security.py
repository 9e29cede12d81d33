"""Deployment security: the deploy checks, response headers and the policies pages must satisfy, sign-in and
API throttles, revocable API tokens, and collector credentials that never reach a log, a row or the API."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.core.cache import cache
from django.db import models
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from cairn.auth import client_address
from metrics import services as metric_services
from metrics.collectors import EXCERPT_CHARS
from metrics.models import CollectionRun, EvidenceSource, Measurement
from tests.factories import ItemFactory, MetricFactory, UserFactory
from tests.services.conftest import _reachable, require

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"  # tests/factories.py
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
TOO_MANY = "Too many failed sign-in attempts. Try again in"


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()  # throttles count in the cache, which outlives a test
    yield
    cache.clear()


# --- manage.py check --deploy with a bare environment -------------------------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """manage.py with nothing but PATH, HOME and `env`, as `env -i` would run it."""
    bare = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(Path.home())),
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120
    )


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Python code run after django.setup() with the production settings and nothing but `env`."""
    bare = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "cairn.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )


def import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return python("", **env)


def test_it_passes_the_deployment_checks_with_only_debug_secret_key_and_allowed_hosts():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="cairn.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deployment_checks_report_a_weak_secret_key(settings):
    """The command above really runs the security checks: they flag a short key (checked in-process)."""
    settings.SECRET_KEY = "short"

    issues = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])

    assert "security.W009" in {issue.id for issue in issues}


def test_it_exits_naming_secret_key_when_it_is_missing_and_debug_is_off():
    result = manage("check", "--deploy", DEBUG="false", ALLOWED_HOSTS="cairn.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_production_settings_turn_on_hsts_secure_cookies_and_the_ssl_redirect():
    """tests/settings.py switches the redirect and secure cookies off for the test client; production does not."""
    script = (
        "from django.conf import settings as s; import json; print(json.dumps([s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_PROXY_SSL_HEADER, s.CACHES['default']['BACKEND']]))"
    )
    result = python(
        script,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="cairn.example.com",
        CAIRN_CACHE_URL="redis://127.0.0.1:6379/4",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        31536000,
        True,
        True,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        "django.core.cache.backends.redis.RedisCache",
    ]


def test_it_refuses_a_cache_url_that_is_not_redis():
    result = import_settings(DEBUG="true", CAIRN_CACHE_URL="memcached://127.0.0.1:11211")
    assert result.returncode != 0
    assert "CAIRN_CACHE_URL must be a Redis URL" in result.stderr


def test_it_refuses_a_throttle_rate_it_cannot_read():
    result = import_settings(DEBUG="true", CAIRN_API_THROTTLE_USER="lots")
    assert result.returncode != 0
    assert "CAIRN_API_THROTTLE_USER='lots' is not a rate" in result.stderr


def test_it_redirects_plain_http_to_https_unless_the_proxy_says_https(settings, db):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    plain = client.get(LOGIN)
    behind_tls_proxy = client.get(LOGIN, HTTP_X_FORWARDED_PROTO="https")

    assert plain.status_code == 301
    assert plain["Location"] == f"https://testserver{LOGIN}"
    assert behind_tls_proxy.status_code == 200
    assert behind_tls_proxy["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


# --- headers and content security policies ------------------------------------------------------------------


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def assert_satisfies(html: str, policy: str) -> None:
    """What a browser would refuse on this page under this policy: inline scripts, handlers, styles, other sites."""
    rules = directives(policy)
    scripts = rules.get("script-src", rules.get("default-src", []))
    styles = rules.get("style-src", rules.get("default-src", []))
    for attributes, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S):
        if "src=" in attributes:
            [src] = re.findall(r'src="([^"]+)"', attributes)
            assert src.startswith("/") and "'self'" in scripts, src
        elif 'type="application/json"' not in attributes:  # data blocks never run
            assert "'unsafe-inline'" in scripts or sha256_source(body) in scripts, body[:80]
    for handler in re.findall(r'\son[a-z]+="([^"]*)"', html):
        assert "'unsafe-hashes'" in scripts and sha256_source(handler) in scripts, handler
    if "'unsafe-inline'" not in styles:
        assert not re.search(r"\sstyle=", html), re.search(r".{60}\sstyle=.{60}", html, flags=re.S)
        for body in re.findall(r"<style\b[^>]*>(.*?)</style>", html, flags=re.S):
            assert sha256_source(body) in styles, body[:80]
    for href in re.findall(r'<link\b[^>]*href="([^"]+)"', html):
        assert href.startswith("/"), href
    assert "http://" not in re.sub(r'xmlns(:\w+)?="[^"]+"|<!DOCTYPE[^>]*>', "", html)


def assert_site_wide_headers(response: Any) -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_the_dashboard_and_login_pages_carry_a_strict_policy_they_satisfy(team):
    MetricFactory(program=team.program, name="Deployments per week", target=Decimal("10"))
    ItemFactory(section=team.section, status="done")
    signed_in = Client()
    signed_in.force_login(team.executive)

    pages = {
        LOGIN: Client().get(LOGIN),
        "/": signed_in.get("/"),
        "/programs/alpha/": signed_in.get("/programs/alpha/"),
    }

    for path, response in pages.items():
        assert response.status_code == 200, path
        assert_site_wide_headers(response)
        policy = response["Content-Security-Policy"]
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert directives(policy)["default-src"] == ["'none'"]
        assert directives(policy)["style-src"] == ["'self'"]
        assert_satisfies(response.content.decode(), policy)
    assert "<svg" in pages["/programs/alpha/"].content.decode()  # the charts were there to be checked
    assert "<progress" in pages["/"].content.decode()


def test_the_admin_gets_a_policy_its_pages_satisfy_without_inline_scripts(team, superuser):
    client = Client()
    client.force_login(superuser)
    paths = [
        "/admin/",
        "/admin/roadmap/checklistitem/",
        f"/admin/roadmap/checklistitem/{team.owned_item.pk}/change/",
        f"/admin/roadmap/checklistitem/{team.owned_item.pk}/history/",
        "/admin/roadmap/checklistitem/export/",
        "/admin/metrics/evidencesource/add/",
    ]

    for path in [*paths, ADMIN_LOGIN]:
        response = (Client() if path == ADMIN_LOGIN else client).get(path)
        assert response.status_code == 200, path
        assert_site_wide_headers(response)
        policy = response["Content-Security-Policy"]
        assert "'unsafe-inline'" not in directives(policy)["script-src"]
        assert_satisfies(response.content.decode(), policy)


def test_the_api_docs_run_their_script_from_a_file_under_their_own_policy(team):
    client = Client()
    client.force_login(team.executive)

    page = client.get("/api/docs/")

    assert page.status_code == 200
    policy = page["Content-Security-Policy"]
    assert "'unsafe-inline'" not in directives(policy)["script-src"]
    assert directives(policy)["connect-src"] == ["'self'"]
    html = page.content.decode()
    assert_satisfies(html, policy)
    [script_url] = [
        src for src in re.findall(r'<script src="([^"]+)"', html) if "script" in src.split("?")[-1]
    ]
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_api_responses_carry_the_site_wide_headers(team):
    client = APIClient()
    client.force_authenticate(team.manager)

    response = client.get("/api/v1/programs/")

    assert response.status_code == 200
    assert_site_wide_headers(response)
    assert directives(response["Content-Security-Policy"])["default-src"] == ["'none'"]


# --- sign-in throttling --------------------------------------------------------------------------------------


def sign_in(client: Client, username: str, password: str, path: str = LOGIN) -> Any:
    return client.post(path, {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_it_refuses_a_sixth_attempt_for_a_username_even_with_the_right_password(team):
    client = Client()
    for _ in range(5):
        response = sign_in(client, "maria", "wrong password")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    response = sign_in(client, "MARIA", PASSWORD)  # another spelling of the same name counts alike
    refused = sign_in(client, "maria", PASSWORD)

    assert TOO_MANY + " 15 minutes." in response.content.decode()
    assert TOO_MANY + " 15 minutes." in refused.content.decode()
    assert not signed_in(client)
    assert sign_in(Client(), "carla", PASSWORD).status_code == 302, "another username is not affected"


def test_it_says_how_many_minutes_are_left_and_lets_in_after_the_window(team, monkeypatch):
    started = time.time()
    client = Client()
    for _ in range(5):
        sign_in(client, "maria", "wrong password")

    monkeypatch.setattr(time, "time", lambda: started + 10 * 60 + 5)
    assert TOO_MANY + " 5 minutes." in sign_in(client, "maria", PASSWORD).content.decode()

    monkeypatch.setattr(time, "time", lambda: started + 15 * 60 + 5)
    assert sign_in(client, "maria", PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_successful_sign_in_clears_the_usernames_failures(team):
    for _ in range(4):
        sign_in(Client(), "maria", "wrong password")
    assert sign_in(Client(), "maria", PASSWORD).status_code == 302
    for _ in range(4):
        sign_in(Client(), "maria", "wrong password")

    client = Client()
    assert sign_in(client, "maria", PASSWORD).status_code == 302
    assert signed_in(client)


def test_it_refuses_an_address_after_twenty_failures_across_usernames(team):
    for number in range(20):
        sign_in(Client(), f"guess{number}", "wrong password")

    refused = Client()
    elsewhere = Client(REMOTE_ADDR="192.0.2.44")

    assert TOO_MANY in sign_in(refused, "maria", PASSWORD).content.decode()
    assert not signed_in(refused)
    assert sign_in(elsewhere, "maria", PASSWORD).status_code == 302


def test_both_login_pages_share_the_count_and_the_admin_shows_the_message(team):
    for path in (LOGIN, LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN):
        sign_in(Client(), "maria", "wrong password", path)

    client = Client()
    response = sign_in(client, "maria", PASSWORD, ADMIN_LOGIN)

    assert response.status_code == 200
    assert TOO_MANY + " 15 minutes." in response.content.decode()
    assert not signed_in(client)


def test_the_right_password_of_a_user_kept_out_of_the_admin_is_not_a_failure(team):
    """An executive has no admin access: being refused there with the right password is not a guess."""
    for _ in range(6):
        assert sign_in(Client(), "eve", PASSWORD, ADMIN_LOGIN).status_code == 200

    assert sign_in(Client(), "eve", PASSWORD).status_code == 302


def test_it_takes_the_address_the_trusted_proxy_saw(settings):
    factory = RequestFactory()
    spoofed = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.7")
    direct = factory.get("/", REMOTE_ADDR="198.51.100.8")

    settings.CAIRN_TRUSTED_PROXIES = 1
    assert client_address(spoofed) == "198.51.100.7"
    assert client_address(direct) == "198.51.100.8"
    settings.CAIRN_TRUSTED_PROXIES = 0
    assert client_address(spoofed) == "10.0.0.2"


CACHE_URL = os.environ.get("CAIRN_TEST_CACHE_URL", "redis://127.0.0.1:6379/4")


@pytest.mark.services
def test_web_processes_sharing_a_redis_cache_share_the_count(team, settings):
    """Five failures in another process (another gunicorn worker) lock the username here too."""
    require(_reachable(CACHE_URL), f"no Redis at {CACHE_URL} (set CAIRN_TEST_CACHE_URL)")
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "cairn",
    }
    settings.CACHES = {"default": redis}  # as cairn/settings.py configures it from CAIRN_CACHE_URL
    # Fresh names, so nothing is left to clean up and nothing else on this Redis is touched; keys expire.
    username = f"shared-{secrets.token_hex(4)}"
    address = f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    UserFactory(username=username)
    script = (
        "from django.test import RequestFactory; from cairn.auth import login_failure_record; "
        f"request = RequestFactory().post('/', REMOTE_ADDR={address!r}); "
        f"[login_failure_record(request=request, username={username!r}) for _ in range(5)]"
    )

    other_worker = python(script, DEBUG="true", CAIRN_CACHE_URL=CACHE_URL)
    assert other_worker.returncode == 0, other_worker.stderr

    client = Client(REMOTE_ADDR=address)
    assert TOO_MANY in sign_in(client, username, PASSWORD).content.decode()
    assert not signed_in(client)


# --- API tokens and API throttles ----------------------------------------------------------------------------

TOKEN_URL = "/api/v1/auth/token/"


def test_it_hands_out_a_token_that_authenticates_and_revokes_it(team):
    answer = APIClient().post(TOKEN_URL, {"username": "maria", "password": PASSWORD})
    again = APIClient().post(TOKEN_URL, {"username": "maria", "password": PASSWORD})

    assert answer.status_code == 200
    key = answer.json()["token"]
    assert again.json()["token"] == key
    caller = APIClient()
    caller.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert caller.get("/api/v1/programs/").status_code == 200

    assert caller.delete(TOKEN_URL).status_code == 204

    refused = caller.get("/api/v1/programs/")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == "Token"
    assert not Token.objects.filter(key=key).exists()
    fresh = APIClient().post(TOKEN_URL, {"username": "maria", "password": PASSWORD}).json()["token"]
    assert fresh != key


def test_it_answers_400_on_bad_credentials_and_401_to_an_anonymous_revocation(team):
    wrong = APIClient().post(TOKEN_URL, {"username": "maria", "password": "wrong password"})
    missing = APIClient().post(TOKEN_URL, {"username": "maria"})

    assert wrong.status_code == 400
    assert "non_field_errors" in wrong.json()
    assert missing.status_code == 400
    assert "password" in missing.json()
    assert not Token.objects.exists()
    assert APIClient().delete(TOKEN_URL).status_code == 401


def test_the_token_endpoint_counts_failures_with_the_login_pages(team):
    for _ in range(3):
        APIClient().post(TOKEN_URL, {"username": "maria", "password": "wrong password"})
    for _ in range(2):
        sign_in(Client(), "maria", "wrong password")

    refused = APIClient().post(TOKEN_URL, {"username": "maria", "password": PASSWORD})

    assert refused.status_code == 429
    assert TOO_MANY + " 15 minutes." in refused.json()["detail"]
    assert 890 <= int(refused["Retry-After"]) <= 900
    assert not Token.objects.exists()


def test_only_a_superuser_sees_and_revokes_tokens_in_the_admin(team, superuser):
    token = Token.objects.create(user=team.contributor)
    listing = "/admin/authtoken/tokenproxy/"
    for persona in ("manager", "contributor", "auditor", "executive", "outsider"):
        client = Client()
        client.force_login(team.user(persona))
        assert client.get(listing).status_code in (302, 403), persona
        assert client.post(f"{listing}{team.contributor.pk}/delete/", {"post": "yes"}).status_code in (
            302,
            403,
        )
        assert Token.objects.filter(pk=token.pk).exists()

    admin = Client()
    admin.force_login(superuser)
    assert token.key in admin.get(listing).content.decode()
    assert admin.post(f"{listing}{team.contributor.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(pk=token.pk).exists()


def test_it_throttles_the_api_per_user_and_anonymous_callers_per_address(team, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "3/minute")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "2/minute")
    busy, other = APIClient(), APIClient()
    busy.force_authenticate(team.manager)
    other.force_authenticate(team.executive)

    statuses = [busy.get("/api/v1/programs/").status_code for _ in range(4)]
    anonymous = [APIClient().post(TOKEN_URL, {}).status_code for _ in range(3)]

    assert statuses == [200, 200, 200, 429]
    assert other.get("/api/v1/programs/").status_code == 200
    assert anonymous == [400, 400, 429]


def test_the_default_api_rates_come_from_the_environment():
    rates = django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert set(rates) == {"anon", "user"}
    assert (
        "rest_framework.throttling.UserRateThrottle"
        in django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
    )


# --- collector credentials never logged, stored or served ---------------------------------------------------


class EchoHandler(BaseHTTPRequestHandler):
    """Echoes the request headers in the body and a response header; /flaky fails once, /moved redirects."""

    protocol_version = "HTTP/1.1"
    calls: dict[str, int]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        calls = self.server.calls  # type: ignore[attr-defined]
        calls[self.path] = calls.get(self.path, 0) + 1
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/flaky" + self.path.removeprefix("/moved"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        failing = self.path.startswith("/flaky") and calls[self.path] == 1
        status = 500 if failing else 401 if self.path.startswith("/denied") else 200
        body = json.dumps({"headers": dict(self.headers.items())}).encode()
        if self.path.startswith("/padded"):  # the credential straddles the end of the stored excerpt
            body = b"x" * (EXCERPT_CHARS - 15) + self.headers.get("Authorization", "").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Authorization", self.headers.get("Authorization", ""))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo_server(settings: Any) -> Iterator[str]:
    settings.CAIRN_COLLECTOR_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.CAIRN_COLLECTOR_BACKOFF_MS = 1
    settings.CAIRN_COLLECTOR_MAX_ATTEMPTS = 3
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    server.daemon_threads = True
    server.calls = {}  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def text_of(model: type[models.Model]) -> str:
    kinds = (models.CharField, models.TextField, models.JSONField)
    columns = [field.attname for field in model._meta.concrete_fields if isinstance(field, kinds)]
    return "\n".join(str(value) for row in model.objects.values_list(*columns) for value in row)


def test_collector_credentials_never_reach_a_log_a_row_or_the_api(team, echo_server, monkeypatch, caplog):
    token = "tok-" + secrets.token_hex(16)
    password = "pw-" + secrets.token_hex(12)
    basic = base64.b64encode(f"robot:{password}".encode()).decode()
    monkeypatch.setenv("CAIRN_SECRET_ECHO_TOKEN", token)
    monkeypatch.setenv("CAIRN_SECRET_ECHO_BASIC", f"robot:{password}")
    caplog.set_level(
        logging.DEBUG
    )  # the root logger, so every logger (cairn, metrics, celery, django) reports
    for name in ("cairn", "metrics", "celery", "django", "urllib3", "http.client"):
        caplog.set_level(logging.DEBUG, logger=name)
    metric = MetricFactory(program=team.program, key="echo")
    sources = []
    for number, (auth, variable, path) in enumerate(
        [
            (EvidenceSource.Auth.BEARER, "CAIRN_SECRET_ECHO_TOKEN", "/moved/bearer"),
            (EvidenceSource.Auth.BASIC, "CAIRN_SECRET_ECHO_BASIC", "/moved/basic"),
            (EvidenceSource.Auth.BEARER, "CAIRN_SECRET_ECHO_TOKEN", "/denied/bearer"),
            (EvidenceSource.Auth.BASIC, "CAIRN_SECRET_ECHO_BASIC", "/denied/basic"),
        ]
    ):
        source = EvidenceSource(
            program=team.program,
            kind=EvidenceSource.Kind.HTTP_CHECK,
            name=f"echo {number}",
            config={"url": f"{echo_server}{path}"},
            metric=metric if number == 0 else None,
            timeout_seconds=Decimal("2"),
            auth=auth,
            secret_env=variable,
        )
        metric_services.source_save(source=source, by=team.manager, item_ids=[team.owned_item.pk])
        sources.append(source)

    runs = metric_services.sources_collect_now(sources=sources, by=team.manager)

    runs = [CollectionRun.objects.get(pk=run.pk) for run in runs]
    assert [run.attempts for run in runs[:2]] == [2, 2], "each failed once with a 500, then succeeded"
    assert [run.status for run in runs] == [CollectionRun.Status.SUCCESS] * 2 + [
        CollectionRun.Status.FAILED
    ] * 2
    assert "***" in runs[0].excerpt, "the server did echo the credential, and it was redacted"
    assert any(record.name.startswith(("cairn", "metrics")) for record in caplog.records), "loggers listened"
    api = APIClient()
    api.force_authenticate(team.manager)
    served = "".join(
        api.get(path).content.decode()
        for path in ("/api/v1/collection-runs/", "/api/v1/evidence-sources/", "/api/v1/evidence/")
    ) + "".join(api.get(f"/api/v1/collection-runs/{run.pk}/").content.decode() for run in runs)
    logged = caplog.text + "\n".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    stored = "\n".join(
        text_of(model) for model in (CollectionRun, EvidenceSource, EvidenceSource.history.model, Measurement)
    )
    for secret in (token, password, basic):
        assert secret not in logged
        assert secret not in stored
        assert secret not in served


@pytest.mark.parametrize("auth", [EvidenceSource.Auth.BEARER, EvidenceSource.Auth.BASIC])
def test_it_redacts_a_credential_cut_in_two_by_the_end_of_the_excerpt(team, echo_server, monkeypatch, auth):
    secret = secrets.token_hex(20)
    monkeypatch.setenv(
        "CAIRN_SECRET_PADDED", secret if auth == EvidenceSource.Auth.BEARER else f"robot:{secret}"
    )
    sent = (
        secret
        if auth == EvidenceSource.Auth.BEARER
        else base64.b64encode(f"robot:{secret}".encode()).decode()
    )
    source = EvidenceSource(
        program=team.program,
        kind=EvidenceSource.Kind.HTTP_CHECK,
        name="padded",
        config={"url": f"{echo_server}/padded"},
        timeout_seconds=Decimal("2"),
        auth=auth,
        secret_env="CAIRN_SECRET_PADDED",
    )
    metric_services.source_save(source=source, by=team.manager, item_ids=[])

    [run] = metric_services.sources_collect_now(sources=[source], by=team.manager)

    run.refresh_from_db()
    assert run.status == CollectionRun.Status.SUCCESS
    assert run.excerpt.startswith("x" * (EXCERPT_CHARS - 15))
    assert sent[:6] not in run.excerpt
    assert run.excerpt.endswith("***")
