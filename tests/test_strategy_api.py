"""Strategy import and export over the REST API: POST /api/v1/imports/strategy/, GET /api/v1/programs/<key>/strategy/.

The team fixture gives program "alpha" one member per role; the outsider manages "beta" only. Managers (of any
program) hold roadmap.add_program through their group; contributors, executives and auditors do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.models import ControlledDocument, DocumentVersion
from metrics.models import Metric
from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership, Role, Section
from roadmap.services import checklist_items_set_status

pytestmark = pytest.mark.django_db

IMPORT_URL = "/api/v1/imports/strategy/"
CORPUS_STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)
PILOT = (
    "# Pilot Strategy\n\n**Document Version:** 2.0\n\n## Roadmap\n\n### Phase 1: Start (Months 1-3)\n"
    "**Objectives:** Begin\n\n**Setup:**\n- [ ] Buy servers\n- [x] Hire team\n\n---\n\n"
    "**Document Control:**\n- **Owner:** CTO\n- **Approver:** CEO\n"
)
PILOT_TASKS = 2
REPORT_KEYS = {
    "program",
    "created",
    "dry_run",
    "phases",
    "sections",
    "items",
    "metrics",
    "document",
    "warnings",
}


def client_for(user: Any | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def upload(data: str | bytes, name: str = "s.md") -> SimpleUploadedFile:
    raw = data.encode() if isinstance(data, str) else data
    return SimpleUploadedFile(name, raw, content_type="text/markdown")


def post_import(user: Any | None, data: str | bytes, **fields: Any) -> Any:
    return client_for(user).post(IMPORT_URL, {"file": upload(data), **fields}, format="multipart")


def db_state() -> dict[str, int]:
    """Row counts of everything an import writes, to show that a refused or dry import wrote nothing."""
    models = [
        Program,
        Phase,
        Section,
        ChecklistItem,
        Metric,
        ControlledDocument,
        DocumentVersion,
        ProgramMembership,
    ]
    return {model.__name__: model.objects.count() for model in models}


def synthetic_strategy(item_count: int, sections: int = 5) -> str:
    lines = ["# Bulk Strategy", "", "## Roadmap", ""]
    for number in range(item_count):
        if number % (item_count // sections) == 0:
            lines += ["", f"### Area {number // (item_count // sections) + 1}", ""]
        lines.append(f"- [ ] Task {number}")
    return "\n".join(lines) + "\n"


# --- import -------------------------------------------------------------------------------------------------


def test_a_manager_imports_a_strategy_into_their_program(team: Any) -> None:
    response = post_import(team.manager, PILOT, program="alpha")

    assert response.status_code == 200, response.content
    report = response.json()
    assert set(report) == REPORT_KEYS
    assert (report["program"], report["created"], report["dry_run"]) == ("alpha", False, False)
    assert report["items"]["added"] == PILOT_TASKS
    assert report["phases"] >= 1
    assert report["document"]["owner"] == "CTO"
    items = ChecklistItem.objects.filter(program=team.program, source_line__isnull=False)
    assert set(items.values_list("title", "status")) == {
        ("Buy servers", ChecklistItem.Status.NOT_STARTED),
        ("Hire team", ChecklistItem.Status.DONE),
    }


def test_a_dry_run_reports_the_same_counts_and_writes_nothing(team: Any) -> None:
    before = db_state()

    dry = post_import(team.manager, PILOT, program="alpha", dry_run="true")

    assert dry.status_code == 200, dry.content
    assert dry.json()["dry_run"] is True
    assert db_state() == before
    real = post_import(team.manager, PILOT, program="alpha")
    assert real.status_code == 200, real.content
    assert {**dry.json(), "dry_run": False} == real.json()


def test_a_dry_run_of_a_new_program_answers_200_and_creates_nothing(team: Any) -> None:
    before = db_state()

    response = post_import(team.manager, PILOT, dry_run="true")

    assert response.status_code == 200, response.content
    assert (response.json()["program"], response.json()["created"]) == ("pilot-strategy", True)
    assert db_state() == before


def test_a_user_who_may_add_programs_creates_one_and_becomes_its_manager(team: Any) -> None:
    assert team.manager.has_perm("roadmap.add_program")

    response = post_import(team.manager, PILOT, program="pilot")

    assert response.status_code == 201, response.content
    assert (response.json()["program"], response.json()["created"]) == ("pilot", True)
    program = Program.objects.get(key="pilot")
    assert program.title == "Pilot Strategy"
    assert ProgramMembership.objects.get(program=program, user=team.manager).role == Role.MANAGER
    assert ChecklistItem.objects.filter(program=program).count() == PILOT_TASKS


def test_without_a_program_key_the_key_is_derived_from_the_title(team: Any) -> None:
    response = post_import(team.manager, PILOT)

    assert response.status_code == 201, response.content
    assert Program.objects.filter(key="pilot-strategy").exists()


def test_the_corpus_strategy_imports_every_item_metric_and_phase(team: Any) -> None:
    response = post_import(team.manager, CORPUS_STRATEGY.read_bytes(), program="cloud")

    assert response.status_code == 201, response.content
    report = response.json()
    assert report["items"] == {"added": 216 + 48, "changed": 0, "archived": 0, "unchanged": 0}
    assert report["metrics"]["added"] == 32
    assert report["phases"] == 3
    assert report["document"]["owner"] == "Chief Cloud Officer"
    assert ChecklistItem.objects.filter(program__key="cloud").count() == 264
    assert Metric.objects.filter(program__key="cloud").count() == 32


def test_reimporting_the_same_document_changes_nothing(team: Any) -> None:
    post_import(team.manager, PILOT, program="alpha")
    before = db_state()

    response = post_import(team.manager, PILOT, program="alpha")

    assert response.status_code == 200, response.content
    assert response.json()["items"] == {"added": 0, "changed": 0, "archived": 0, "unchanged": PILOT_TASKS}
    assert db_state() == before


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor", "outsider"])
def test_only_a_manager_of_the_program_may_import_into_it(team: Any, persona: str) -> None:
    before = db_state()

    response = post_import(team.user(persona), PILOT, program="alpha")

    assert response.status_code == 403, response.content
    assert db_state() == before
    assert not ChecklistItem.objects.filter(title="Buy servers").exists()


@pytest.mark.parametrize("persona", ["contributor", "executive", "auditor"])
def test_members_without_add_program_cannot_create_a_program(team: Any, persona: str) -> None:
    user = team.user(persona)
    assert not user.has_perm("roadmap.add_program")
    before = db_state()

    response = post_import(user, PILOT, program="pilot")

    assert response.status_code == 403, response.content
    assert db_state() == before


def test_the_outsider_manages_beta_so_may_create_a_program_but_not_touch_alpha(team: Any) -> None:
    assert team.outsider.has_perm("roadmap.add_program")

    assert post_import(team.outsider, PILOT, program="alpha").status_code == 403
    assert post_import(team.outsider, PILOT, program="pilot").status_code == 201
    assert not Program.objects.for_user(team.outsider).filter(key="alpha").exists()


def test_anonymous_callers_cannot_import(team: Any) -> None:
    before = db_state()

    response = post_import(None, PILOT, program="alpha")

    assert response.status_code in (401, 403)
    assert db_state() == before


@pytest.mark.parametrize(
    ("data", "line", "says"),
    [
        pytest.param(b"# Title\n\n## Part\n- [ ] caf\xe9\n", 4, "not UTF-8", id="not-utf8"),
        pytest.param(b"", 1, "empty", id="empty"),
        pytest.param(b"Just some prose.\n\nNo headings here.\n", 1, "no headings", id="no-headings"),
    ],
)
def test_a_bad_document_is_a_400_naming_the_line(team: Any, data: bytes, line: int, says: str) -> None:
    before = db_state()

    response = post_import(team.manager, data, program="alpha")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["line"] == line
    assert f"line {line}" in body["detail"]
    assert says in body["detail"]
    assert db_state() == before


def test_a_request_without_a_file_is_a_400(team: Any) -> None:
    response = client_for(team.manager).post(IMPORT_URL, {"program": "alpha"}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()


def test_a_file_over_the_size_limit_is_a_400_naming_the_limit(team: Any, settings: Any) -> None:
    settings.CAIRN_STRATEGY_MAX_BYTES = 2048
    oversized = PILOT + "".join(f"- [ ] Padding task {n}\n" for n in range(200))
    assert len(oversized.encode()) > 2048
    before = db_state()

    response = post_import(team.manager, oversized, program="alpha")

    assert response.status_code == 400, response.content
    assert "2,048" in response.json()["detail"]
    assert "CAIRN_STRATEGY_MAX_BYTES" in response.json()["detail"]
    assert db_state() == before


def insert_batches(model: Any, rows: int) -> int:
    """How many INSERTs the database needs for `rows` rows of `model` (SQLite caps the parameters per query)."""
    fields = model._meta.concrete_fields
    per_insert = min(500, connection.ops.bulk_batch_size(fields, [None] * rows) or rows)
    return -(-rows // per_insert)


def test_the_import_writes_in_bulk_whatever_the_number_of_items(
    team: Any, django_assert_max_num_queries: Any
) -> None:
    with CaptureQueriesContext(connection) as small:
        assert post_import(team.manager, synthetic_strategy(50), program="bulk-50").status_code == 201
    assert ChecklistItem.objects.filter(program__key="bulk-50").count() == 50
    # Only the items and their history rows grow with the document, and only by INSERT batches.
    batching = sum(
        insert_batches(model, 500) - insert_batches(model, 50)
        for model in (ChecklistItem, ChecklistItem.history.model)
    )

    with django_assert_max_num_queries(len(small.captured_queries) + batching + 10):
        assert post_import(team.manager, synthetic_strategy(500), program="bulk-500").status_code == 201
    assert ChecklistItem.objects.filter(program__key="bulk-500").count() == 500


# --- export -------------------------------------------------------------------------------------------------


def test_a_member_exports_the_program_as_a_markdown_attachment(team: Any) -> None:
    response = client_for(team.executive).get("/api/v1/programs/alpha/strategy/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"] == 'attachment; filename="alpha.md"'
    assert "Alpha" in response.content.decode()


def test_the_export_ticks_items_done_since_the_import(team: Any) -> None:
    assert post_import(team.manager, PILOT, program="alpha").status_code == 200
    item = ChecklistItem.objects.get(program=team.program, title="Buy servers")
    checklist_items_set_status(item_ids=[item.pk], status=ChecklistItem.Status.DONE, by=team.manager)

    text = client_for(team.executive).get("/api/v1/programs/alpha/strategy/").content.decode()

    assert "- [x] Buy servers" in text
    assert "- [x] Hire team" in text
    assert "- [ ] Buy servers" not in text


def test_the_outsider_cannot_export_a_program_they_cannot_see(team: Any) -> None:
    response = client_for(team.outsider).get("/api/v1/programs/alpha/strategy/")

    assert response.status_code == 404
    assert "Alpha" not in response.content.decode()


def test_anonymous_callers_cannot_export(team: Any) -> None:
    assert client_for(None).get("/api/v1/programs/alpha/strategy/").status_code in (401, 403)
