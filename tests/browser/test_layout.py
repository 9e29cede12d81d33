"""How the pages look and move: screenshots on a laptop, no sideways scrolling on a phone, keyboard navigation.

Screenshots land in tests/browser/artifacts/. `CAIRN_DOCS_SCREENSHOTS=1 pytest tests/browser` also refreshes the
two committed for the README (docs/dashboard.png, docs/admin-items.png).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scorecards.services import scorecard_generate
from tests.browser.conftest import PHONE, Demo, import_playwright, log_in, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
expect = import_playwright().expect

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOCS_LIMIT = 400 * 1024


def publish(path: Path, name: str) -> None:
    """Copy a screenshot to docs/ when asked to; the committed ones must stay small."""
    assert path.stat().st_size <= DOCS_LIMIT, f"{path.name} is {path.stat().st_size} bytes"
    if os.environ.get("CAIRN_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / name)


def horizontal_overflow(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_the_dashboard_and_the_item_list_on_a_laptop(page: Page, demo: Demo):
    scorecard_generate(program=demo.program, by=None)
    log_in(page, "manager")

    page.goto(f"/programs/{demo.program.key}/")
    expect(page.get_by_role("link", name="Scorecard PDF")).to_be_visible()
    expect(page.get_by_role("img", name="Maturity score by capability area")).to_be_visible()
    assert horizontal_overflow(page) <= 1
    publish(screenshot(page, "dashboard-desktop", full_page=True), "dashboard.png")

    page.goto("/admin/roadmap/checklistitem/")
    # Collapse the admin's app list, as a manager working in the list would, to give the columns room.
    page.locator("#toggle-nav-sidebar").click()
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    expect(page.locator("#result_list")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    publish(screenshot(page, "admin-items-desktop"), "admin-items.png")


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/programs/harbour-platform/"])
def test_pages_fit_a_phone_without_sideways_scrolling(page: Page, demo: Demo, path: str):
    scorecard_generate(program=demo.program, by=None)
    page.set_viewport_size(PHONE)
    if path != "/accounts/login/":
        log_in(page, "manager")

    page.goto(path)

    overflow = horizontal_overflow(page)
    name = "phone-" + (path.strip("/").replace("/", "-") or "programs")
    screenshot(page, name, full_page=True)
    assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at {PHONE['width']}px wide"


def test_the_first_tab_reaches_skip_to_content_which_moves_focus_to_main(page: Page, demo: Demo):
    log_in(page, "executive")
    page.goto(f"/programs/{demo.program.key}/")

    page.keyboard.press("Tab")

    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "the focused skip link is on screen"
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
