"""A program manager imports a checklist through the admin, closes two items in bulk, and sees the dashboard move."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from roadmap.models import ChecklistItem
from tests.browser.conftest import Demo, import_playwright, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
expect = import_playwright().expect

CHECKLIST = """\
phase,section,title,status,owner,due_date,weight,level,blocking
P3,Roadmap > Phase 3: Optimisation > Elasticity,Right-size the tracking containers from a month of usage,not started,contributor,2027-06-30,1,3,no
P3,Roadmap > Phase 3: Optimisation > Elasticity,Scale the billing workers to zero between batch runs,not started,manager,2027-07-15,1,3,no
P3,Roadmap > Phase 3: Optimisation > Governance as Code,Review the organisation policies with security every quarter,in progress,contributor,2027-08-01,1,3,yes
"""
NEW_TITLES = [line.split(",")[2] for line in CHECKLIST.splitlines()[1:]]


def phase_progress(page: Page, code: str) -> tuple[str, int, int]:
    """The dashboard's progress text for a phase, and its `done of total` counts."""
    page.goto("/programs/harbour-platform/")
    label = page.locator(f'td[data-phase-progress="{code}"]').inner_text().strip()
    done, total = map(int, re.search(r"(\d+) of (\d+) done", label).groups())
    return label, done, total


def test_a_manager_imports_a_checklist_and_closes_two_items(page: Page, demo: Demo, tmp_path: Path):
    checklist = tmp_path / "optimisation.csv"
    checklist.write_text(CHECKLIST, encoding="utf-8")
    log_in(page, "manager", at="/admin/login/")

    # Upload → preview → confirm, from the item changelist's Import button.
    page.goto("/admin/roadmap/checklistitem/")
    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("Program").select_option(label=str(demo.program))
    page.get_by_label("File", exact=True).set_input_files(checklist)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("body")).to_contain_text("nothing has been written yet")
    preview = page.locator("tr.import-new")
    expect(preview).to_have_count(3)
    for title in NEW_TITLES:
        expect(preview.filter(has_text=title)).to_have_count(1)
    assert not ChecklistItem.objects.filter(title__in=NEW_TITLES).exists(), "a preview writes nothing"
    page.get_by_role("button", name="Confirm import").click()
    expect(page.locator("ul.messagelist")).to_contain_text("3 added")
    assert (
        ChecklistItem.objects.filter(program=demo.program, phase__code="P3", title__in=NEW_TITLES).count()
        == 3
    )

    before, done_before, total = phase_progress(page, "P3")

    # Filter the changelist to phase P3's open items, tick two, and run the bulk action.
    page.goto("/admin/roadmap/checklistitem/")
    phase_filter = page.locator('#changelist-filter details[data-filter-title="phase"]')
    phase_filter.get_by_role("link", name=re.compile(r"^P3\b")).click()
    status_filter = page.locator('#changelist-filter details[data-filter-title="status"]')
    status_filter.get_by_role("link", name="Not started").click()
    expect(status_filter.locator("li.selected")).to_have_text("Not started")
    expect(phase_filter.locator("li.selected")).to_have_text("P3: Optimisation")
    boxes = page.locator("#result_list input.action-select")
    expect(boxes.first).to_be_visible()
    assert boxes.count() >= 2
    chosen = [int(boxes.nth(n).get_attribute("value")) for n in range(2)]
    for n in range(2):
        boxes.nth(n).check()
    page.locator("select[name=action]").select_option("mark_done")
    page.locator("button[name=index]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("2 item(s) marked done.")
    assert set(ChecklistItem.objects.filter(pk__in=chosen).values_list("phase__code", "status")) == {
        ("P3", "done")
    }

    after, done_after, total_after = phase_progress(page, "P3")
    assert after != before
    assert (done_after, total_after) == (done_before + 2, total)
