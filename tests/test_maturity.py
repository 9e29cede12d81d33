"""Maturity from the database: the engine's input, snapshots, trend, phase status, and the API, admin and CLI doors."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import ControlledDocument
from metrics.models import Metric
from roadmap.models import ChecklistItem, Program
from roadmap.services import checklist_items_set_status
from scorecards import engine, services, tasks
from scorecards.models import Snapshot
from scorecards.selectors import DOCUMENT_AREA, maturity_input
from strategy.services import strategy_import
from tests.factories import ItemFactory, PhaseFactory, SectionFactory, member

pytestmark = pytest.mark.django_db

STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)
WORKED_EXAMPLE = Path(__file__).resolve().parents[1] / "scorecards" / "examples" / "worked_example.json"
Status = ChecklistItem.Status


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def run_score(*args: str) -> str:
    out = io.StringIO()
    call_command("score", *args, stdout=out)
    return out.getvalue()


def requirement_rows(result: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [row for row in result["requirements"] if row["id"].startswith(prefix)]


# --- the what-if API --------------------------------------------------------------------------------------


def test_it_scores_the_worked_example_over_the_api(team):
    body = json.loads(WORKED_EXAMPLE.read_text(encoding="utf-8"))
    response = client_for(team.executive).post("/api/v1/score/", body, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["model_version"] == "MMS-1"
    assert (result["level"], result["level_waived"], result["next_level"]) == (1, True, 2)
    assert (result["next_level_progress"], result["index"], result["score"]) == (0.6, 1.6, 80.0)
    assert {area: figures["score"] for area, figures in result["areas"].items()} == {
        "Reliability": 83.33,
        "Security": 75.0,
        "Cost": 70.0,
        "Docs": 100.0,
    }
    assert (result["coverage"], result["freshness"]) == (100.0, 92.31)
    # The API, the CLI and the engine agree to the hash on the same input.
    assert result == json.loads(run_score("--input", str(WORKED_EXAMPLE), "--json"))


def test_it_answers_400_naming_the_requirement_and_field_of_a_bad_body(team):
    body = json.loads(WORKED_EXAMPLE.read_text(encoding="utf-8"))
    body["requirements"][3]["weight"] = 0
    response = client_for(team.contributor).post("/api/v1/score/", body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert (answer["requirement"], answer["field"]) == ("R4", "weight")
    assert "R4" in answer["detail"]


def test_it_answers_400_to_a_body_that_is_not_an_object(team):
    response = client_for(team.contributor).post("/api/v1/score/", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "input"


def test_it_refuses_the_what_if_api_to_anonymous_users(db):
    body = json.loads(WORKED_EXAMPLE.read_text(encoding="utf-8"))
    assert APIClient().post("/api/v1/score/", body, format="json").status_code in (401, 403)


# --- the engine's input from the database -----------------------------------------------------------------


@pytest.fixture
def corpus_program(db: Any) -> Program:
    strategy_import(data=STRATEGY.read_bytes(), by=None)
    return Program.objects.get()


def test_it_builds_the_corpus_strategy_requirements(corpus_program):
    built = maturity_input(corpus_program, timezone.now())
    requirements = built.data["requirements"]
    items = [entry for entry in requirements if entry["id"].startswith("item:")]
    documents = [entry for entry in requirements if entry["id"].startswith("document:")]
    assert len(items) == 264
    assert len(documents) == 1
    assert not [entry for entry in requirements if entry["id"].startswith("metric:")]  # no targets yet
    assert len(requirements) == 265
    assert len(built.not_measurable) == 32 == Metric.objects.filter(program=corpus_program).count()
    assert all(entry["why"] == "no target yet" for entry in built.not_measurable)

    assert documents[0]["level"] is None
    assert documents[0]["area"] == DOCUMENT_AREA
    phase_items = ChecklistItem.objects.filter(program=corpus_program, phase__isnull=False)
    levels_by_key = {f"item:{item.key}": item.phase.order for item in phase_items.select_related("phase")}
    assert sorted(set(levels_by_key.values())) == [1, 2, 3]
    for entry in items:
        if entry["id"] in levels_by_key:
            assert entry["level"] == levels_by_key[entry["id"]], entry["id"]
        else:  # practices and capability tasks are scored but do not gate
            assert entry["level"] is None, entry["id"]
    assert {entry["kind"] for entry in items if entry["level"] is None} == {"task", "practice"}


def test_the_corpus_strategy_climbs_to_level_1_when_phase_1_is_done(corpus_program):
    result = engine.evaluate(maturity_input(corpus_program, timezone.now()).data)
    assert (result["level"], result["index"], result["score"]) == (0, 0.0, 0.0)  # zero, not null
    items = requirement_rows(result, "item:")
    assert all(row["freshness"] == 0.0 and row["state"] == "missing" for row in items)
    assert result["coverage"] <= round(100 / 265, 2)  # only the document may have evidence

    manager = member(corpus_program, "manager", "mona")
    items_by_phase = {
        order: list(ChecklistItem.objects.filter(program=corpus_program, phase__order=order))
        for order in (1, 2)
    }
    checklist_items_set_status(
        item_ids=[item.pk for item in items_by_phase[1]], status=Status.DONE, by=manager
    )
    result = engine.evaluate(maturity_input(corpus_program, timezone.now()).data)
    assert result["level"] == 1
    assert result["level_name"] == "Cloud Foundation"
    assert result["next_level"] == 2
    assert sorted(result["blocking_next_level"]) == sorted(f"item:{item.key}" for item in items_by_phase[2])
    assert result["score"] > 0

    capability_task = ChecklistItem.objects.filter(
        program=corpus_program, phase__isnull=True, kind=ChecklistItem.Kind.TASK
    ).first()
    checklist_items_set_status(item_ids=[capability_task.pk], status=Status.DONE, by=manager)
    after = engine.evaluate(maturity_input(corpus_program, timezone.now()).data)
    assert after["score"] > result["score"]
    assert (after["level"], after["index"]) == (result["level"], result["index"])


def test_it_gives_done_items_evidence_from_their_attestation_or_completion(team):
    attested = ItemFactory(
        section=team.section,
        status=Status.DONE,
        completed_at=datetime(2026, 3, 1, tzinfo=UTC),
        attested_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    completed = ItemFactory(
        section=team.section, status=Status.DONE, completed_at=datetime(2026, 3, 3, tzinfo=UTC)
    )
    ItemFactory(section=team.section, status=Status.NOT_APPLICABLE, status_reason="not ours")
    ItemFactory(section=team.section, archived_at=datetime(2026, 1, 1, tzinfo=UTC))
    requirements = {
        entry["id"]: entry
        for entry in maturity_input(team.program, datetime(2026, 4, 1, tzinfo=UTC)).data["requirements"]
    }
    assert set(requirements) == {
        f"item:{item.key}" for item in (team.owned_item, team.unowned_item, attested, completed)
    }
    assert requirements[f"item:{attested.key}"]["evidence"]["observed_at"] == "2026-03-02T00:00:00+00:00"
    assert requirements[f"item:{attested.key}"]["evidence"]["passed"] is True
    assert requirements[f"item:{completed.key}"]["evidence"]["observed_at"] == "2026-03-03T00:00:00+00:00"
    assert "evidence" not in requirements[f"item:{team.owned_item.key}"]


def test_it_turns_metrics_with_a_target_into_requirements(team):
    Metric.objects.create(program=team.program, key="uptime", name="Uptime", target=Decimal("99.9"), level=2)
    Metric.objects.create(program=team.program, key="mttr", name="MTTR")
    built = maturity_input(team.program, timezone.now())
    metrics = [entry for entry in built.data["requirements"] if entry["id"].startswith("metric:")]
    assert [(entry["id"], entry["level"]) for entry in metrics] == [("metric:uptime", 2)]
    assert metrics[0]["metric"]["target"] == Decimal("99.9")
    assert [entry["key"] for entry in built.not_measurable] == ["mttr"]


def _program_with_items(team: Any, count: int) -> Program:
    program = team.program
    sections = [SectionFactory(program=program, phase=team.phase, parent=team.section) for _ in range(3)]
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program,
            section=sections[number % 3],
            phase=team.phase,
            key=f"bulk-{number}",
            title=f"Bulk item {number}",
            level=1 + number % 3,
            status=Status.DONE if number % 2 else Status.NOT_STARTED,
            completed_at=datetime(2026, 3, 1, tzinfo=UTC) if number % 2 else None,
        )
        for number in range(count - 2)  # the team fixture has two items already
    )
    Metric.objects.create(program=program, key="uptime", name="Uptime", target=Decimal("99.9"))
    Metric.objects.create(program=program, key="mttr", name="MTTR")
    ControlledDocument.objects.create(program=program, title="Strategy", next_review_due=date(2027, 1, 1))
    return program


def test_building_the_input_runs_the_same_queries_for_100_or_5000_items(team, django_assert_num_queries):
    as_of = datetime(2026, 4, 1, tzinfo=UTC)
    program = _program_with_items(team, 100)
    with CaptureQueriesContext(connection) as small:
        assert len(maturity_input(program, as_of).data["requirements"]) == 102
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            program=program, section=team.section, key=f"more-{number}", title=f"More {number}", level=1
        )
        for number in range(4900)
    )
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(maturity_input(program, as_of).data["requirements"]) == 5002


# --- snapshots and the daily job --------------------------------------------------------------------------


def test_snapshot_save_writes_a_day_once(team):
    first, created = services.snapshot_save(program=team.program, day=date(2026, 3, 1))
    again, created_again = services.snapshot_save(program=team.program, day=date(2026, 3, 1))
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Snapshot.objects.count() == 1
    assert first.model_version == "MMS-1"
    assert first.result["as_of"] == "2026-03-01T23:59:59+00:00"
    assert first.inputs_hash == first.result["inputs_hash"]
    assert first.level == first.result["level"]


def test_the_snapshot_task_run_twice_stores_one_snapshot(team):
    first = tasks.snapshot_program.delay(program_id=team.program.pk, day="2026-03-02").get()
    second = tasks.snapshot_program.delay(program_id=team.program.pk, day="2026-03-02").get()
    assert first == second
    assert Snapshot.objects.filter(program=team.program).count() == 1


def test_the_daily_job_snapshots_only_active_programs(team, django_capture_on_commit_callbacks):
    Program.objects.filter(pk=team.program.pk).update(status=Program.Status.ACTIVE)
    Program.objects.filter(pk=team.other_program.pk).update(status=Program.Status.DRAFT)
    # The daily job enqueues each program's snapshot once its own transaction has committed.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.snapshots_daily.delay().get() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.snapshots_daily.delay().get() == 1  # a second tick finds today's snapshot stored
    assert list(Snapshot.objects.values_list("program__key", "as_of")) == [("alpha", timezone.localdate())]


# --- trend ------------------------------------------------------------------------------------------------

TODAY = date(2026, 6, 1)


def stored(
    program: Program, days_ago: int, *, score: str, level: int, coverage: str, gates: dict[str, int]
) -> Snapshot:
    return Snapshot.objects.create(
        program=program,
        as_of=TODAY - timedelta(days=days_ago),
        model_version="MMS-1",
        inputs_hash="0" * 64,
        config_hash="0" * 64,
        level=level,
        index=Decimal(level),
        score=Decimal(score),
        coverage=Decimal(coverage),
        freshness=None,
        result={"requirements": [{"id": ident, "gate": gate} for ident, gate in gates.items()]},
    )


def current(score: float, level: int, coverage: float, gates: dict[str, int]) -> dict[str, Any]:
    return {
        "score": score,
        "level": level,
        "coverage": coverage,
        "requirements": [{"id": ident, "gate": gate} for ident, gate in gates.items()],
    }


def test_the_trend_flags_a_regression_and_names_the_flipped_requirements(team):
    stored(team.program, 30, score="70", level=1, coverage="40", gates={"item:a": 1, "item:b": 0})
    stored(team.program, 7, score="90", level=2, coverage="60", gates={"item:a": 1, "item:b": 1})
    trend = services.trend(team.program, current(85.0, 1, 50.0, {"item:a": 1, "item:b": 0}), TODAY)
    assert trend["delta_score"] == {"7d": -5.0, "30d": 15.0, "90d": None}
    assert trend["regression"] is True
    reasons = " | ".join(trend["regression_reasons"])
    assert "score fell 5.00" in reasons
    assert "level fell from 2 to 1" in reasons
    assert "coverage fell 10.00" in reasons
    assert (trend["level_changed_from"], trend["level_changed_on"]) == (2, "2026-05-25")
    assert trend["flipped_requirements"] == [{"id": "item:b", "gate_before": 1, "gate_now": 0}]


def test_the_trend_does_not_flag_small_drops(team):
    stored(team.program, 7, score="90", level=1, coverage="60", gates={"item:a": 1})
    trend = services.trend(team.program, current(85.01, 1, 50.01, {"item:a": 1}), TODAY)
    assert trend["regression"] is False
    assert trend["regression_reasons"] == []
    assert trend["flipped_requirements"] == []
    assert trend["level_changed_from"] is None


def test_the_trend_gives_the_weekly_slope(team):
    stored(team.program, 14, score="70", level=1, coverage="50", gates={})
    stored(team.program, 7, score="80", level=1, coverage="50", gates={})
    trend = services.trend(team.program, current(90.0, 1, 50.0, {}), TODAY)
    assert trend["weekly_slope"] == 10.0
    assert trend["delta_score"]["7d"] == 10.0


def test_the_trend_ignores_other_programs_and_model_versions(team):
    stored(team.other_program, 7, score="10", level=3, coverage="10", gates={})
    old_model = stored(team.program, 7, score="10", level=3, coverage="10", gates={})
    Snapshot.objects.filter(pk=old_model.pk).update(model_version="MMS-0")
    trend = services.trend(team.program, current(90.0, 1, 50.0, {}), TODAY)
    assert trend["delta_score"] == {"7d": None, "30d": None, "90d": None}
    assert trend["regression"] is False


# --- phases against plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "index", "planned", "status"),
    [
        (date(2026, 7, 15), "0.99", 1.0, "red"),  # the window closed under target
        (date(2026, 7, 15), "1", 1.0, "green"),
        (date(2026, 4, 1), "0.5", 0.5, "green"),  # halfway through Jan–Jun: planned 0.5
        (date(2026, 4, 1), "0.2", 0.5, "amber"),
        (date(2026, 4, 1), "0", 0.5, "amber"),  # exactly 0.5 below plan
        (date(2026, 6, 29), "0.45", 0.99, "red"),  # more than 0.5 below plan
        (date(2026, 6, 30), "0.6", 1.0, "amber"),  # the last day of the window is still open
        (date(2025, 12, 1), "0", 0.0, "green"),  # not started yet
    ],
)
def test_phase_status_compares_the_index_with_the_plan(team, today, index, planned, status):
    [row] = services.phase_status(team.program, index=Decimal(index), today=today)
    assert (row["code"], row["target_level"]) == ("P1", 1)
    assert (row["planned_start"], row["planned_end"]) == ("2026-01-01", "2026-06-30")
    assert row["planned_index"] == planned
    assert row["status"] == status


def test_later_phases_plan_from_the_previous_target(team):
    after = team.phase.order
    PhaseFactory(
        program=team.program, code="P2", order=after + 1, start_month=7, end_month=12, target_level=2
    )
    PhaseFactory(
        program=team.program, code="P3", order=after + 2, start_month=13, end_month=18, target_level=None
    )
    rows = services.phase_status(team.program, index=Decimal("1.2"), today=date(2026, 10, 1))
    assert [(row["code"], row["planned_index"], row["status"]) for row in rows] == [
        ("P1", 1.0, "green"),
        ("P2", 1.5, "amber"),  # 1 + (2 − 1) × 92/183
        ("P3", None, "grey"),
    ]


# --- the maturity and snapshot APIs -----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["manager", "executive", "auditor"])
def test_members_read_their_program_maturity(team, persona):
    response = client_for(team.user(persona)).get("/api/v1/programs/alpha/maturity/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"result", "phases", "trend", "not_measurable"}
    assert body["result"]["model_version"] == "MMS-1"
    assert [phase["code"] for phase in body["phases"]] == ["P1"]
    assert "delta_score" in body["trend"]


def test_outsiders_and_anonymous_users_cannot_read_a_program_maturity(team):
    assert client_for(team.outsider).get("/api/v1/programs/alpha/maturity/").status_code == 404
    assert client_for(team.outsider).get("/api/v1/programs/beta/maturity/").status_code == 200
    assert APIClient().get("/api/v1/programs/alpha/maturity/").status_code in (401, 403)


def test_the_maturity_api_reads_a_past_date_and_refuses_a_bad_one(team):
    client = client_for(team.auditor)
    response = client.get("/api/v1/programs/alpha/maturity/?as_of=2026-01-01")
    assert response.status_code == 200
    assert response.json()["result"]["as_of"].startswith("2026-01-01T23:59:59")
    bad = client.get("/api/v1/programs/alpha/maturity/?as_of=bad")
    assert bad.status_code == 400
    assert "as_of" in json.dumps(bad.json())


def test_the_maturity_api_shows_the_trend_from_stored_snapshots(team):
    today = timezone.localdate()
    Snapshot.objects.create(
        program=team.program,
        as_of=today - timedelta(days=7),
        model_version="MMS-1",
        inputs_hash="0" * 64,
        config_hash="0" * 64,
        level=0,
        index=Decimal(0),
        score=Decimal("40"),
        coverage=Decimal("0"),
        result={"requirements": []},
    )
    trend = client_for(team.executive).get("/api/v1/programs/alpha/maturity/").json()["trend"]
    assert trend["delta_score"]["7d"] == -40.0  # nothing is done today: the score is 0.0
    assert trend["regression"] is True


def test_the_snapshots_api_lists_only_visible_programs_without_the_result(team):
    mine, _ = services.snapshot_save(program=team.program, day=date(2026, 3, 1))
    theirs, _ = services.snapshot_save(program=team.other_program, day=date(2026, 3, 1))
    client = client_for(team.auditor)
    listing = client.get("/api/v1/snapshots/")
    assert listing.status_code == 200
    rows = listing.json()["results"]
    assert [row["id"] for row in rows] == [mine.pk]
    assert "result" not in rows[0]
    assert rows[0]["program"] == "alpha"
    detail = client.get(f"/api/v1/snapshots/{mine.pk}/")
    assert detail.status_code == 200
    assert detail.json()["result"]["inputs_hash"] == mine.inputs_hash
    assert client.get(f"/api/v1/snapshots/{theirs.pk}/").status_code == 404
    outsider_rows = client_for(team.outsider).get("/api/v1/snapshots/").json()["results"]
    assert [row["id"] for row in outsider_rows] == [theirs.pk]
    assert APIClient().get("/api/v1/snapshots/").status_code in (401, 403)


def test_the_snapshots_list_runs_a_constant_number_of_queries(team, django_assert_num_queries):
    services.snapshot_save(program=team.program, day=date(2026, 3, 1))
    client = client_for(team.auditor)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/api/v1/snapshots/").status_code == 200
    for day in range(2, 12):
        services.snapshot_save(program=team.program, day=date(2026, 3, day))
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(client.get("/api/v1/snapshots/").json()["results"]) == 11


# --- admin ------------------------------------------------------------------------------------------------


def test_the_admin_shows_a_managers_program_maturity(team, client):
    client.force_login(team.manager)
    response = client.get(reverse("admin:scorecards_snapshot_maturity", args=["alpha"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Level" in page
    assert "Alpha" in page


def test_the_admin_hides_another_programs_maturity(team, client):
    client.force_login(team.outsider)
    assert client.get(reverse("admin:scorecards_snapshot_maturity", args=["alpha"])).status_code == 404
    assert client.get(reverse("admin:scorecards_snapshot_maturity", args=["beta"])).status_code == 200


# --- the score command ------------------------------------------------------------------------------------


def test_the_score_command_prints_a_program_as_one_json_object(team):
    lines = run_score("--program", "alpha", "--json").splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert {"level", "score", "phases", "trend", "not_measurable"} <= set(result)
    assert result["model_version"] == "MMS-1"
    assert result["score"] == 0.0


def test_the_score_command_saves_a_snapshot_once(team):
    first = run_score("--program", "alpha", "--as-of", "2026-03-01", "--save")
    second = run_score("--program", "alpha", "--as-of", "2026-03-01", "--save")
    assert "Snapshot 2026-03-01 stored." in first
    assert "Snapshot 2026-03-01 already stored." in second
    assert Snapshot.objects.filter(program=team.program).count() == 1


def test_the_score_command_evaluates_a_past_date(team):
    result = json.loads(run_score("--program", "alpha", "--as-of", "2026-01-01", "--json"))
    assert result["as_of"].startswith("2026-01-01")
    assert Snapshot.objects.count() == 0


@pytest.mark.parametrize(
    "args", [("--program", "nope"), ("--program", "alpha", "--as-of", "someday")], ids=["unknown", "bad-date"]
)
def test_the_score_command_exits_with_code_2_on_a_bad_program_or_date(team, args):
    with pytest.raises(CommandError) as caught:
        run_score(*args)
    assert caught.value.returncode == 2
