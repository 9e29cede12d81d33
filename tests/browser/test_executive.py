"""An executive signs in, sees their one program, downloads its scorecard, and stays out of the admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from roadmap.models import ChecklistItem
from scorecards.services import scorecard_generate
from tests.browser.conftest import Demo, import_playwright, log_in
from tests.factories import ProgramFactory, member

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
expect = import_playwright().expect


def test_an_executive_sees_their_program_downloads_its_scorecard_and_no_admin_form(page: Page, demo: Demo):
    secret = ProgramFactory(key="secret-merger", title="Secret Merger")
    member(secret, "manager", "someone-else")
    scorecard, _ = scorecard_generate(program=demo.program, by=None)
    item = ChecklistItem.objects.filter(program=demo.program).first()

    log_in(page, "executive")

    # The list shows their program and nothing else.
    expect(page).to_have_url(f"{demo.url}/")
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(demo.program.title)
    expect(page.locator("main")).not_to_contain_text(secret.title)

    rows.get_by_role("link", name=demo.program.title).click()
    expect(page).to_have_url(f"{demo.url}/programs/{demo.program.key}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(demo.program.title)
    expect(page.get_by_role("button", name="Generate scorecard")).to_have_count(0)

    response = page.goto(f"/programs/{secret.key}/")
    assert response is not None and response.status == 404
    page.go_back()

    # The download link serves the archived PDF.
    link = page.get_by_role("link", name="Scorecard PDF")
    expect(link).to_have_attribute("href", f"/api/v1/scorecards/{scorecard.pk}/pdf/")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    assert download.path().read_bytes().startswith(b"%PDF")
    fetched = page.request.get(link.get_attribute("href"))
    assert fetched.status == 200
    assert fetched.headers["content-type"] == "application/pdf"

    # Every admin door sends them to the admin's login (they are not staff) and shows no form to change a thing.
    for url in (
        "/admin/",
        f"/admin/roadmap/checklistitem/{item.pk}/change/",
        "/admin/roadmap/checklistitem/add/",
        f"/admin/roadmap/program/{demo.program.pk}/change/",
        f"/admin/scorecards/scorecard/{scorecard.pk}/change/",
    ):
        response = page.goto(url)
        assert response is not None
        assert response.status == 403 or page.url.startswith(f"{demo.url}/admin/login/"), (url, page.url)
        expect(page.locator("form#checklistitem_form")).to_have_count(0)
        expect(page.locator('form[id$="_form"]')).to_have_count(0)
