"""The executive dashboard: the program list, one program's page, generating and downloading scorecards."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.models import ControlledDocument
from metrics.models import Evidence, Measurement, Metric
from roadmap.models import ChecklistItem, Program, ProgramMembership, Role
from roadmap.services import checklist_items_set_status, membership_save
from scorecards import services
from scorecards.models import Scorecard
from strategy.services import strategy_import
from tests.factories import (
    ItemFactory,
    MetricFactory,
    PhaseFactory,
    ProgramFactory,
    SectionFactory,
    UserFactory,
    member,
)

pytestmark = pytest.mark.django_db

STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)
MEMBERS = ["manager", "contributor", "executive", "auditor"]
DASHBOARD = "/programs/alpha/"
GENERATE = "/programs/alpha/scorecards/"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return response.content.decode()


def without_svg(html: str) -> str:
    return re.sub(r"<svg.*?</svg>", "", html, flags=re.S)


# --- the program list -------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_of_the_list_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_it_lists_only_the_programs_the_user_is_a_member_of(team):
    ItemFactory(section=team.section, status=ChecklistItem.Status.DONE)
    ItemFactory(
        section=team.section, status=ChecklistItem.Status.BLOCKED, status_reason="Waiting for a vendor"
    )
    ItemFactory(section=team.section, due_date=timezone.localdate() - timedelta(days=3))

    html = text(client_for(team.executive).get("/"))

    assert 'href="/programs/alpha/"' in html
    assert "Alpha" in html
    assert "/programs/beta/" not in html
    assert "Beta" not in html
    # owned, unowned, done, blocked, overdue: five applicable items, one done
    assert "1 of 5 done" in html
    assert "1 overdue" in html
    assert "1 blocked" in html


def test_it_lists_reviews_coming_due_and_aged_evidence_as_needing_attention(team):
    today = timezone.localdate()
    document = ControlledDocument.objects.create(
        program=team.program, title="Strategy", next_review_due=today + timedelta(days=300)
    )
    assert "review due" not in text(client_for(team.executive).get("/"))
    document.next_review_due = today - timedelta(days=10)
    document.last_reviewed_on = today - timedelta(days=2)  # held after it came due: answered
    document.save()
    assert "review due" not in text(client_for(team.executive).get("/"))
    document.next_review_due, document.last_reviewed_on = today + timedelta(days=3), None
    document.save()
    now = timezone.now()
    Evidence.objects.create(
        item=team.owned_item,
        kind=Evidence.Kind.LINK,
        url="https://wiki.example.com/old",
        observed_at=now - timedelta(days=40),
        valid_until=now - timedelta(days=10),
    )
    Evidence.objects.create(
        item=team.unowned_item,
        kind=Evidence.Kind.LINK,
        url="https://wiki.example.com/new",
        observed_at=now,
        valid_until=now + timedelta(days=30),
    )

    html = text(client_for(team.executive).get("/"))

    assert "1 review due" in html
    assert "1 with stale evidence" in html


def test_it_tells_a_user_without_programs_so(db):
    html = text(client_for(UserFactory()).get("/"))
    assert "You are not a member of any program yet" in html


# --- who sees a dashboard ---------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", MEMBERS)
def test_it_shows_the_dashboard_to_every_member(team, persona):
    response = client_for(team.user(persona)).get(DASHBOARD)
    assert response.status_code == 200
    assert "<h1>Alpha</h1>" in text(response)


def test_it_hides_the_dashboard_from_an_outsider(team):
    assert client_for(team.outsider).get(DASHBOARD).status_code == 404


def test_it_answers_404_for_a_program_that_does_not_exist(team):
    assert client_for(team.manager).get("/programs/nope/").status_code == 404


def test_it_sends_anonymous_visitors_of_a_dashboard_to_the_login_page(team, client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={DASHBOARD}"


# --- what a dashboard shows -------------------------------------------------------------------------------


def test_it_shows_the_headline_figures_phases_metrics_and_risks(team):
    ItemFactory(section=team.section, status=ChecklistItem.Status.DONE)
    ItemFactory(
        section=team.section,
        title="Sign the paging contract",
        status=ChecklistItem.Status.BLOCKED,
        status_reason="Waiting for procurement",
    )
    MetricFactory(program=team.program, name="Deployments per week", target=Decimal("10"))

    response = client_for(team.executive).get(DASHBOARD)

    html = without_svg(text(response))
    for heading in ("Level", "Index", "Score", "Coverage", "Freshness"):
        assert f"<h2>{heading}</h2>" in html
    report = response.context["report"]
    assert f'<p class="big">{report.current.level}' in html
    assert f'<p class="big">{report.current.index:.2f}</p>' in html
    assert 'data-phase-progress="P1"' in html
    phase = report.phases[0]
    assert phase.progress_label in html
    assert f'<span class="badge {phase.rag}">{phase.rag}</span>' in html
    assert "Deployments per week" in html
    assert "defined, not yet measurable" in html
    assert "Top risks" in html
    assert "Sign the paging contract" in html
    assert "Waiting for procurement" in html


def test_it_draws_labelled_inline_svg_charts(team):
    html = text(client_for(team.executive).get(DASHBOARD))
    labels = re.findall(r'<svg role="img" aria-label="([^"]+)"', html)
    assert set(labels) >= {
        "Maturity score by capability area",
        "Score over the stored snapshots",
        "Phases with their status",
    }
    assert html.count("<svg") == len(labels), "every chart is labelled for screen readers"
    assert "<script" not in html, "the page needs no JavaScript"


def test_its_charts_keep_their_ids_to_themselves(team):
    """Several inline SVGs share one document: a repeated clip-path id would clip every chart by the first's box."""
    MetricFactory(program=team.program)
    html = text(client_for(team.executive).get(DASHBOARD))
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(name for name in ids if ids.count(name) > 1)
    for reference in re.findall(r"url\(#([^)]+)\)", html):
        assert reference in ids
    assert "<title>...</title>" not in html


def test_it_warns_about_an_overdue_document_review():
    strategy_import(data=STRATEGY.read_bytes(), by=None)
    program = Program.objects.get(key="advanced-cloud-infrastructure-strategy")
    document = ControlledDocument.objects.get(program=program)
    assert document.next_review_due == date(2025, 3, 1)
    executive = member(program, "executive")

    html = without_svg(text(client_for(executive).get(f"/programs/{program.key}/")))

    days = (timezone.localdate() - date(2025, 3, 1)).days
    assert f"Review overdue by {days} days" in html
    assert "Advanced Cloud Infrastructure Strategy" in html
    assert Metric.objects.filter(program=program).exists()
    assert "defined, not yet measurable" in html


def test_it_escapes_item_and_area_titles(team):
    area = SectionFactory(program=team.program, title="<b>Area</b> & <script>alert(2)</script>")
    area.is_capability_area = True
    area.save()
    ItemFactory(
        section=area,
        title="<script>alert(1)</script>",
        status=ChecklistItem.Status.BLOCKED,
        status_reason="<img src=x onerror=alert(3)>",
    )

    metric = Metric.objects.create(
        program=team.program, key="hostile", name='<script>alert(4)</script>"', target=1
    )
    Measurement.objects.create(
        metric=metric, value=Decimal("0.5"), observed_at=timezone.now() - timedelta(days=1)
    )
    Measurement.objects.create(metric=metric, value=Decimal("0.7"), observed_at=timezone.now())

    html = text(client_for(team.executive).get(DASHBOARD))

    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html  # the metrics table and the sparkline's label
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html
    assert "<img src=x" not in html
    assert "<b>Area</b>" not in html


# --- generating a scorecard -------------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "shown"), [("manager", True), ("contributor", False), ("executive", False),
                                                ("auditor", False)])  # fmt: skip
def test_it_shows_the_generate_button_to_managers_only(team, persona, shown):
    html = text(client_for(team.user(persona)).get(DASHBOARD))
    assert ("Generate scorecard" in html) is shown
    assert (f'action="{GENERATE}"' in html) is shown


def test_it_generates_a_scorecard_for_a_manager(team):
    response = client_for(team.manager).post(GENERATE, follow=True)

    assert response.redirect_chain == [(DASHBOARD, 302)]
    scorecard = Scorecard.objects.get(program=team.program)
    assert scorecard.generated_by == team.manager
    html = text(response)
    assert f"Generated the scorecard as of {scorecard.as_of:%d %b %Y}." in html
    assert f'href="/api/v1/scorecards/{scorecard.pk}/pdf/"' in html


def test_it_generates_one_scorecard_a_day(team):
    client = client_for(team.manager)
    client.post(GENERATE)

    response = client.post(GENERATE, follow=True)

    assert Scorecard.objects.filter(program=team.program).count() == 1
    assert "Already generated today:" in text(response)


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor"])
def test_it_refuses_to_generate_for_other_members(team, persona):
    assert client_for(team.user(persona)).post(GENERATE).status_code == 403
    assert not Scorecard.objects.exists()


def test_it_hides_generation_from_an_outsider(team):
    assert client_for(team.outsider).post(GENERATE).status_code == 404
    assert not Scorecard.objects.exists()


def test_it_accepts_only_post_for_generation(team):
    assert client_for(team.manager).get(GENERATE).status_code == 405
    assert not Scorecard.objects.exists()


def test_it_sends_anonymous_generation_to_the_login_page(team, client):
    response = client.post(GENERATE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Scorecard.objects.exists()


# --- downloading the latest scorecard ---------------------------------------------------------------------


@pytest.mark.parametrize("persona", MEMBERS)
def test_it_offers_no_download_before_a_scorecard_exists(team, persona):
    html = text(client_for(team.user(persona)).get(DASHBOARD))
    assert "Scorecard PDF" not in html


@pytest.mark.parametrize(
    ("persona", "shown"), [("manager", True), ("executive", True), ("auditor", True), ("contributor", False)]
)
def test_it_links_the_latest_scorecard_for_its_readers(team, persona, shown):
    scorecard, _ = services.scorecard_generate(program=team.program, by=None)

    html = text(client_for(team.user(persona)).get(DASHBOARD))

    assert (f'href="/api/v1/scorecards/{scorecard.pk}/pdf/"' in html) is shown
    assert ("Scorecard PDF" in html) is shown


def test_the_download_link_serves_the_pdf(team):
    scorecard, _ = services.scorecard_generate(program=team.program, by=None)
    response = client_for(team.executive).get(f"/api/v1/scorecards/{scorecard.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content if response.streaming else [response.content]).startswith(
        b"%PDF"
    )


# --- constant queries -------------------------------------------------------------------------------------


def _items(program: Program, count: int, owners: list[Any]) -> None:
    """`count` varied items across phases and sections: done, blocked, overdue, owned, blocking or not."""
    sections = list(program.sections.filter(title__startswith="Load ").order_by("pk"))
    if not sections:
        phases = [PhaseFactory(program=program, code=f"Q{n}", start_month=6 * n + 1, end_month=6 * n + 6)
                  for n in range(3)]  # fmt: skip
        sections = [SectionFactory(program=program, phase=phases[n % 3], title=f"Load {n}") for n in range(4)]
        sections[0].is_capability_area = True
        sections[0].save()
    statuses = list(ChecklistItem.Status.values)
    past = timezone.localdate() - timedelta(days=10)
    items = []
    for n in range(count):
        section = sections[n % len(sections)]
        status = statuses[n % len(statuses)]
        items.append(
            ItemFactory.build(
                program=program,
                section=section,
                phase=section.phase,
                status=status,
                status_reason="why" if status in ("blocked", "not_applicable") else "",
                owner=owners[n % len(owners)],
                due_date=past if n % 3 == 0 else None,
                blocking=n % 2 == 0,
                level=1 + n % 3,
            )
        )
    ChecklistItem.objects.bulk_create(items)


def _queries(client: Client, url: str) -> int:
    client.get(url)  # warm caches (content types, sessions) so both counts compare like with like
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_dashboard_runs_the_same_queries_for_20_and_400_items(team, django_assert_num_queries, settings):
    settings.CAIRN_DASHBOARD_CACHE_SECONDS = 0  # the scoring itself, on every request
    owners = [team.manager, team.contributor, team.executive, None]
    MetricFactory(program=team.program)
    _items(team.program, 20, owners)
    client = client_for(team.manager)
    expected = _queries(client, DASHBOARD)

    _items(team.program, 380, owners)

    assert ChecklistItem.objects.filter(program=team.program).count() >= 400
    with django_assert_num_queries(expected):
        assert client.get(DASHBOARD).status_code == 200


def test_the_program_list_runs_the_same_queries_for_2_and_10_programs(db, django_assert_num_queries):
    user = UserFactory()

    def programs(count: int) -> None:
        for _ in range(count):
            program = ProgramFactory()
            membership_save(
                membership=ProgramMembership(user=user, program=program, role=Role.EXECUTIVE), by=None
            )
            _items(program, 6, [user, None])

    programs(2)
    client = client_for(user)
    expected = _queries(client, "/")

    programs(8)

    with django_assert_num_queries(expected):
        response = client.get("/")
    assert len(response.context["summaries"]) == 10


# --- signing in -------------------------------------------------------------------------------------------


def test_the_login_page_labels_its_fields(client):
    html = text(client.get("/accounts/login/"))
    assert '<label for="id_username">Username</label>' in html
    assert 'id="id_username"' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'id="id_password"' in html


def test_it_signs_in_and_returns_to_the_dashboard(team, client):
    response = client.post(
        "/accounts/login/",
        {"username": "eve", "password": "correct horse battery", "next": DASHBOARD},
    )
    assert response.status_code == 302
    assert response["Location"] == DASHBOARD


def test_it_shows_how_the_figures_moved_since_the_last_stored_snapshot(team):
    yesterday = timezone.localdate() - timedelta(days=1)
    snapshot = services.snapshot_build(program=team.program, day=yesterday)
    snapshot.score, snapshot.index, snapshot.level = Decimal("12.345"), Decimal("0.5"), 0
    snapshot.save()
    ItemFactory(section=team.section, status=ChecklistItem.Status.DONE, completed_at=timezone.now())

    html = text(client_for(team.executive).get(DASHBOARD))

    current = services.snapshot_build(program=team.program, day=timezone.localdate(), as_of=timezone.now())
    expected = f"{float(current.score) - 12.345:+.1f}"  # one decimal, as the PDF rounds the score
    assert f'<span class="up" title="up {expected.lstrip("+")}">▲ {expected}</span>' in html
    assert f"compared with {yesterday:%-d %b %Y}" in html


def test_it_names_web_fonts_in_its_charts(team):
    html = text(client_for(team.executive).get(DASHBOARD))

    assert "Helvetica-Bold" not in html  # a PDF font name; browsers fall back to a serif
    assert 'font-weight="bold"' in html  # the phase strip's codes (attributes: the CSP refuses style="…")


def test_it_scores_a_program_once_for_all_its_readers_while_nothing_changes(team, monkeypatch):
    MetricFactory(program=team.program)
    _items(team.program, 20, [team.manager, None])
    scored = []
    build = services.snapshot_build
    monkeypatch.setattr(services, "snapshot_build", lambda **kwargs: scored.append(1) or build(**kwargs))

    first = client_for(team.executive).get(DASHBOARD)
    second = client_for(team.manager).get(DASHBOARD)

    assert first.status_code == second.status_code == 200
    assert len(scored) == 1
    assert first.context["report"].current == second.context["report"].current
    assert second.context["can_generate"] and not first.context["can_generate"]  # per reader, never cached


def test_it_shows_an_item_change_on_the_next_request_despite_the_cache(team):
    client = client_for(team.executive)
    before = client.get(DASHBOARD).context["report"].phases[0].progress_label
    checklist_items_set_status(item_ids=[team.unowned_item.pk], status="done", by=team.manager)

    after = client.get(DASHBOARD).context["report"].phases[0].progress_label

    assert before != after


def test_it_shows_a_new_measurement_on_the_next_request_despite_the_cache(team):
    metric = MetricFactory(program=team.program, name="Deploys", target=Decimal("10"))
    client = client_for(team.executive)
    before = {m.key: m.latest for m in client.get(DASHBOARD).context["report"].metrics}
    Measurement.objects.create(metric=metric, value=Decimal("7"), observed_at=timezone.now())

    after = {m.key: m.latest for m in client.get(DASHBOARD).context["report"].metrics}

    assert before[metric.key] != after[metric.key]
