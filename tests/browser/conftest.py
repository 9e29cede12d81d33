"""The browser suite: Debian's Chromium, driven by Playwright, against Django's live server.

Locally the suite skips when Chromium or Playwright is missing; under CI=true it fails instead, because CI must
run it (`.ci/run` installs the `chromium` package). No browser is ever downloaded: Playwright launches
/usr/bin/chromium. Screenshots go to tests/browser/artifacts/, and so do the trace and a screenshot of every
page of a test that failed (open a trace with `playwright show-trace FILE`).
"""

from __future__ import annotations

import importlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from roadmap.demo import EXAMPLE_KEY
from roadmap.models import Program
from tests.conftest import UNDER_CI

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "browser-suite-password"
DEMO_USERS = ("manager", "contributor", "executive", "auditor")


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if UNDER_CI:
        pytest.fail(f"CI needs the browser suite: {reason}")
    pytest.skip(reason)


def import_playwright() -> ModuleType:
    """`playwright.sync_api` for a test module; without it the module skips locally and fails under CI."""
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        reason = "Playwright is not installed (pip install '.[test]')"
        if UNDER_CI:
            pytest.fail(f"CI needs the browser suite: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_playwright = import_playwright().sync_playwright
    # Playwright's sync API keeps an asyncio loop running in this thread, and Django's ORM refuses to run
    # while a loop runs unless told the caller is synchronous — which the tests are.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so fixtures can tell whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class Demo:
    url: str
    program: Program


@pytest.fixture
def demo(settings: Any, tmp_path: Path, live_server: Any) -> Demo:
    """`make run`'s example program and demo users, with a password the tests know, served live."""
    settings.DEMO_MODE = True
    settings.MEDIA_ROOT = str(tmp_path / "media")
    call_command("load_demo", stdout=io.StringIO())
    call_command("load_demo_metrics", stdout=io.StringIO())
    for user in get_user_model().objects.filter(username__in=DEMO_USERS):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return Demo(url=live_server.url, program=Program.objects.get(key=EXAMPLE_KEY))


@pytest.fixture
def context(browser: Browser, demo: Demo, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, base_url=demo.url, accept_downloads=True)
    context.set_default_timeout(10_000)
    # The site has no favicon; answering Chromium's request for one keeps 404 warnings out of the log.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    context.tracing.start(screenshots=True, snapshots=True)
    yield context
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = artifact_name(request.node.name)
        for number, page in enumerate(context.pages):
            page.screenshot(path=ARTIFACTS / f"{name}-failed-{number}.png", full_page=True)
        context.tracing.stop(path=ARTIFACTS / f"{name}-trace.zip")
    else:
        context.tracing.stop()
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def artifact_name(test_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """A PNG of the page in tests/browser/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    return path


def log_in(page: Page, username: str, *, at: str = "/accounts/login/") -> None:
    """Sign in through a real login form: the site's own (`/accounts/login/`) or the admin's."""
    page.goto(at)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form [type=submit]").click()
    page.wait_for_load_state()
    assert "/login/" not in page.url, f"{username} could not sign in at {at}"
