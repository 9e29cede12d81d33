"""The MMS-1 engine (DESIGN §5) as a pure function: the worked example, the boundaries, bad input, properties.

No database here: the engine takes plain data, and the `score --input` command reads a file.
"""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorecards.engine import MODEL_VERSION, EngineError, evaluate

WORKED_EXAMPLE = Path(__file__).resolve().parents[1] / "scorecards" / "examples" / "worked_example.json"
AS_OF = datetime(2026, 11, 28, tzinfo=UTC)
LEVELS = [
    {"level": 1, "name": "Foundation"},
    {"level": 2, "name": "Enhancement"},
    {"level": 3, "name": "Excellence"},
]
PROPERTIES = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def worked_example() -> dict[str, Any]:
    return json.loads(WORKED_EXAMPLE.read_text(encoding="utf-8"), parse_float=Decimal)


def ago(days: float) -> str:
    """An ISO moment `days` before AS_OF (negative: after it)."""
    return (AS_OF - timedelta(days=days)).isoformat()


def requirement(ident: str = "R1", **fields: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "area": "Reliability",
        "level": 1,
        "weight": 1,
        "valid_for_days": 30,
        "grace_days": 30,
        **fields,
    }


def passed(days_old: float, result: bool = True) -> dict[str, Any]:
    return {"observed_at": ago(days_old), "passed": result}


def engine_input(*requirements: dict[str, Any], levels: int = 3, budget: Any = 0.2) -> dict[str, Any]:
    return {
        "as_of": AS_OF.isoformat(),
        "waiver_budget": budget,
        "levels": LEVELS[:levels],
        "requirements": list(requirements),
    }


def row(result: dict[str, Any], ident: str = "R1") -> dict[str, Any]:
    return next(entry for entry in result["requirements"] if entry["id"] == ident)


def risk_waiver(expires_in_days: float = 90, **fields: Any) -> dict[str, Any]:
    return {"type": "risk_accepted", "expires_at": ago(-expires_in_days), "reason": "accepted", **fields}


def na_waiver(expires_in_days: float = 90, **fields: Any) -> dict[str, Any]:
    return {"type": "not_applicable", "expires_at": ago(-expires_in_days), "reason": "out of scope", **fields}


# --- the worked example ------------------------------------------------------------------------------------

# DESIGN §5, written down before looking at any output: (credit, freshness, effective credit, gate, state).
WORKED_ROWS = {
    "R1": (1.0, 1.0, 1.0, 1, "fresh"),  # passed, 5 days old
    "R2": (1.0, 0.5, 0.5, 1, "stale"),  # passed, 45 days old: halfway through grace
    "R3": (0.0, 1.0, 0.0, 1, "fresh"),  # failed, but an active risk waiver opens the gate
    "R4": (1.0, 1.0, 1.0, 1, "fresh"),
    "R5": (0.7, 1.0, 0.7, 0, "fresh"),  # metric (0.71 - 0.50) / (0.80 - 0.50) = 0.7, not a pass
    "R6": (1.0, 1.0, 1.0, 1, "fresh"),
}


@pytest.fixture(scope="module")
def worked_result() -> dict[str, Any]:
    return evaluate(worked_example())


@pytest.mark.parametrize("ident", sorted(WORKED_ROWS))
def test_it_scores_each_worked_example_requirement_as_documented(worked_result, ident):
    credit, freshness, effective, gate, state = WORKED_ROWS[ident]
    entry = row(worked_result, ident)
    assert entry["applicable"] is True
    assert (
        entry["credit"],
        entry["freshness"],
        entry["effective_credit"],
        entry["gate"],
        entry["state"],
    ) == (
        credit,
        freshness,
        effective,
        gate,
        state,
    )


def test_it_leaves_the_not_applicable_requirement_out(worked_result):
    entry = row(worked_result, "R7")
    assert entry["applicable"] is False
    assert entry["state"] == "not_applicable"
    assert "gate" not in entry and "credit" not in entry


def test_it_marks_only_the_waived_requirement_as_gated_by_a_waiver(worked_result):
    assert [entry["id"] for entry in worked_result["requirements"] if entry.get("gate_by_waiver")] == ["R3"]


def assert_worked_example_result(result: dict[str, Any]) -> None:
    assert result["model_version"] == MODEL_VERSION == "MMS-1"
    assert result["level"] == 1
    assert result["level_name"] == "Foundation"
    assert result["level_waived"] is True
    assert result["next_level"] == 2
    assert result["next_level_progress"] == 0.6
    assert result["index"] == 1.6
    assert result["score"] == 80.0
    assert {area: figures["score"] for area, figures in result["areas"].items()} == {
        "Reliability": 83.33,
        "Security": 75.0,
        "Cost": 70.0,
        "Docs": 100.0,
    }
    assert result["coverage"] == 100.0
    assert result["freshness"] == 92.31
    assert result["blocking_next_level"] == ["R5"]
    assert len(result["inputs_hash"]) == 64


def test_it_gives_the_documented_result_for_the_worked_example(worked_result):
    assert_worked_example_result(worked_result)


def test_it_gives_per_area_levels_with_the_waiver_budget_program_wide_only(worked_result):
    # Cost fails R5 at level 2; the other areas have every blocking requirement met (R3 by its waiver).
    assert {area: figures["level"] for area, figures in worked_result["areas"].items()} == {
        "Reliability": 3,
        "Security": 3,
        "Cost": 1,
        "Docs": 3,
    }


def test_it_gives_the_same_result_with_floats_or_decimals(worked_result):
    as_floats = json.loads(WORKED_EXAMPLE.read_text(encoding="utf-8"))
    assert evaluate(as_floats) == worked_result


def test_the_score_command_prints_the_worked_example_result_as_json():
    out = io.StringIO()
    call_command("score", "--input", str(WORKED_EXAMPLE), "--json", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object"
    result = json.loads(lines[0])
    assert_worked_example_result(result)
    assert result == evaluate(worked_example())


def test_the_score_command_prints_a_readable_summary():
    out = io.StringIO()
    call_command("score", "--input", str(WORKED_EXAMPLE), stdout=out)
    text = out.getvalue()
    assert text.startswith("Level 1* Foundation  index 1.6  score 80.0  coverage 100.0  freshness 92.31")
    assert "To reach level 2: 1 blocking requirement(s) fail: R5" in text


# --- boundaries --------------------------------------------------------------------------------------------


def test_it_keeps_evidence_fully_fresh_at_exactly_its_validity():
    result = evaluate(engine_input(requirement(evidence=passed(30))))
    assert (row(result)["freshness"], row(result)["state"], row(result)["gate"]) == (1.0, "fresh", 1)
    assert result["score"] == 100.0
    assert result["level"] == 1


def test_it_halves_freshness_halfway_through_grace():
    result = evaluate(engine_input(requirement(evidence=passed(45))))
    assert (row(result)["freshness"], row(result)["state"], row(result)["gate"]) == (0.5, "stale", 1)
    assert (result["score"], result["coverage"], result["freshness"]) == (50.0, 100.0, 50.0)


def test_it_still_opens_the_gate_just_before_grace_ends():
    result = evaluate(engine_input(requirement(evidence=passed(59.5))))
    assert (row(result)["gate"], row(result)["state"]) == (1, "stale")
    assert row(result)["freshness"] == 0.02  # 1 − 29.5 / 30, rounded
    assert result["level"] == 1


def test_it_expires_evidence_at_exactly_validity_plus_grace():
    result = evaluate(engine_input(requirement(evidence=passed(60))))
    entry = row(result)
    assert (entry["freshness"], entry["gate"], entry["state"], entry["effective_credit"]) == (
        0.0,
        0,
        "expired",
        0.0,
    )
    assert result["level"] == 0
    assert result["score"] == 0.0
    assert result["coverage"] == 0.0  # f = 0 is not covered
    assert result["freshness"] == 0.0  # the requirement has evidence, just no fresh evidence


def test_it_ignores_evidence_observed_after_as_of():
    result = evaluate(engine_input(requirement(evidence=passed(-1))))
    entry = row(result)
    assert (entry["state"], entry["credit"], entry["freshness"], entry["gate"]) == ("missing", 0.0, 0.0, 0)
    assert entry["age_days"] is None
    assert result["score"] == 0.0
    assert result["coverage"] == 0.0
    assert result["freshness"] is None  # as if there were no evidence at all


def test_it_counts_evidence_observed_exactly_at_as_of():
    result = evaluate(engine_input(requirement(evidence=passed(0))))
    assert (row(result)["state"], row(result)["gate"]) == ("fresh", 1)


@pytest.mark.parametrize(
    "evidence",
    [
        {"observed_at": ago(1), "passed": True, "error": True},
        {"observed_at": ago(1), "value": 0.8, "error": True},
    ],
    ids=["pass-fail", "metric"],
)
def test_it_gives_no_credit_for_a_collector_error(evidence):
    metric = {"baseline": 0.5, "target": 0.8, "direction": "higher"}
    result = evaluate(engine_input(requirement(evidence=evidence, metric=metric)))
    entry = row(result)
    assert (entry["credit"], entry["gate"], entry["state"]) == (0.0, 0, "error")
    assert result["score"] == 0.0
    assert result["level"] == 0


@pytest.mark.parametrize(
    ("direction", "baseline", "target", "value", "credit", "gate"),
    [
        ("higher", 0.5, 0.8, 0.71, 0.7, 0),
        ("higher", 0.5, 0.8, 0.8, 1.0, 1),
        ("higher", 0.5, 0.8, 0.95, 1.0, 1),  # above target: clamped
        ("higher", 0.5, 0.8, 0.2, 0.0, 0),  # below baseline: clamped
        ("lower", 10, 2, 6, 0.5, 0),  # lower is better: (b - v) / (b - T)
        ("lower", 10, 2, 4, 0.75, 0),
        ("lower", 10, 2, 2, 1.0, 1),
        ("lower", 10, 2, 1, 1.0, 1),
        ("lower", 10, 2, 12, 0.0, 0),
        ("higher", 5, 5, 5, 1.0, 1),  # baseline == target: pass or fail, no division by zero
        ("higher", 5, 5, 4.99, 0.0, 0),
        ("lower", 5, 5, 5, 1.0, 1),
        ("lower", 5, 5, 5.01, 0.0, 0),
    ],
)
def test_it_credits_metrics_by_their_direction(direction, baseline, target, value, credit, gate):
    metric = {"baseline": baseline, "target": target, "direction": direction}
    result = evaluate(
        engine_input(requirement(metric=metric, evidence={"observed_at": ago(2), "value": value}))
    )
    entry = row(result)
    assert (entry["credit"], entry["gate"], entry["passed"]) == (credit, gate, gate == 1)


@pytest.mark.parametrize(
    ("document", "credit"),
    [
        ({"effective": True, "next_review_due": ago(-10)}, 1.0),
        ({"effective": True, "next_review_due": ago(0)}, 0.0),  # due today: as_of is not before it
        ({"effective": True, "next_review_due": ago(10)}, 0.0),
        ({"effective": False, "next_review_due": ago(-10)}, 0.0),
    ],
    ids=["current", "due-now", "overdue", "no-effective-version"],
)
def test_it_credits_a_document_while_its_review_is_current(document, credit):
    result = evaluate(
        engine_input(requirement(level=None, document=document, evidence={"observed_at": ago(100)}))
    )
    assert row(result)["credit"] == credit


def test_an_expired_risk_waiver_does_not_gate():
    failing = {"evidence": passed(1, False)}
    for expires in (0, 5):  # expiring exactly at as_of, and days before it
        result = evaluate(engine_input(requirement(**failing, waiver=risk_waiver(-expires))))
        assert row(result)["gate"] == 0
        assert row(result)["waiver"] is None
        assert result["level"] == 0
        assert result["level_waived"] is False


def test_a_waiver_created_after_as_of_is_not_active():
    failing = {"evidence": passed(1, False)}
    met = requirement("R0", weight=9, evidence=passed(1))
    later = evaluate(engine_input(met, requirement(**failing, waiver=risk_waiver(created_at=ago(-1)))))
    assert (row(later)["gate"], later["level"]) == (0, 0)
    now = evaluate(engine_input(met, requirement(**failing, waiver=risk_waiver(created_at=ago(0)))))
    assert (row(now)["gate"], now["level"], now["level_waived"]) == (1, 1, True)
    not_yet = evaluate(
        engine_input(requirement(evidence=passed(1)), requirement("R2", waiver=na_waiver(created_at=ago(-1))))
    )
    assert row(not_yet, "R2")["applicable"] is True
    assert not_yet["score"] == 50.0


def test_a_risk_waiver_never_raises_a_score():
    failing = requirement(evidence=passed(1, False))
    plain = evaluate(engine_input(failing, requirement("R2", evidence=passed(1), weight=9)))
    waived = evaluate(
        engine_input({**failing, "waiver": risk_waiver()}, requirement("R2", evidence=passed(1), weight=9))
    )
    assert plain["score"] == waived["score"] == 90.0
    assert plain["level"] == 0
    assert waived["level"] == 1  # 1 of 10 waived: within β = 0.2


def test_levels_without_blocking_requirements_are_passed_through_but_never_claimed():
    at_one = requirement("R1", level=1, evidence=passed(1))
    at_three = requirement("R3", level=3, evidence=passed(1))
    result = evaluate(engine_input(at_one, at_three))
    assert result["level"] == 3
    assert result["level_name"] == "Excellence"
    assert (result["next_level"], result["next_level_progress"], result["index"]) == (3, 0.0, 3.0)

    half_of_three = requirement("R4", level=3, evidence=passed(1, False))
    result = evaluate(engine_input(at_one, at_three, half_of_three))
    assert result["level"] == 1
    assert result["next_level"] == 3  # level 2 is skipped: it has nothing to claim
    assert result["next_level_progress"] == 0.5
    assert result["index"] == 2.0  # 1 + 0.5 · (3 − 1)
    assert result["blocking_next_level"] == ["R4"]


def test_a_level_with_only_non_blocking_requirements_is_not_claimable():
    result = evaluate(
        engine_input(
            requirement("R1", level=1, evidence=passed(1)),
            requirement("R2", level=2, blocking=False, evidence=passed(1, False)),
            requirement("R3", level=3, evidence=passed(1)),
        )
    )
    assert result["level"] == 3


def test_non_blocking_requirements_never_gate():
    result = evaluate(
        engine_input(
            requirement("R1", level=1, weight=3, evidence=passed(1)),
            requirement("R2", level=1, blocking=False, evidence=passed(1, False)),
        )
    )
    assert result["level"] == 1
    assert result["score"] == 75.0  # but they count in the score
    assert result["blocking_next_level"] == []


@pytest.mark.parametrize(
    ("met_weight", "waived_weight", "level", "progress", "index"),
    [
        (8, 2, 1, 0.0, 1.0),  # waived 2 = 0.2 × 10: at the budget, satisfied
        (Decimal("7.9"), Decimal("2.1"), 0, 0.99, 0.99),  # 2.1 > 2.0: over budget; P counts only 2.0
        (5, 5, 0, 0.7, 0.7),  # P = (5 + 0.2 × 10) / 10
    ],
)
def test_the_waiver_budget_binds(met_weight, waived_weight, level, progress, index):
    result = evaluate(
        engine_input(
            requirement("R1", weight=met_weight, evidence=passed(1)),
            requirement("R2", weight=waived_weight, evidence=passed(1, False), waiver=risk_waiver()),
            levels=1,
        )
    )
    assert (result["level"], result["next_level_progress"], result["index"]) == (level, progress, index)
    assert result["level_waived"] is (level == 1)
    assert row(result, "R2")["gate"] == 1  # the gate is open; the level is what the budget refuses


def test_a_zero_waiver_budget_refuses_any_waived_level():
    result = evaluate(
        engine_input(
            requirement("R1", weight=9, evidence=passed(1)),
            requirement("R2", weight=1, evidence=passed(1, False), waiver=risk_waiver()),
            levels=1,
            budget=0,
        )
    )
    assert result["level"] == 0
    assert result["next_level_progress"] == 0.9


def test_unlevelled_requirements_count_in_the_score_but_never_gate():
    result = evaluate(
        engine_input(
            requirement("R1", level=1, evidence=passed(1)),
            requirement("U1", level=None, weight=3, evidence=passed(1, False)),
            requirement("U2", level=None, weight=4),
        )
    )
    assert result["level"] == 1
    assert result["index"] == 1.0
    assert result["score"] == 12.5  # 1 of 8
    assert result["blocking_next_level"] == []


def test_only_unlevelled_requirements_give_a_score_and_level_zero():
    result = evaluate(engine_input(requirement("U1", level=None, evidence=passed(1))))
    assert (result["level"], result["index"], result["next_level"], result["score"]) == (0, 0.0, 0, 100.0)


@pytest.mark.parametrize(
    "requirements",
    [
        [],
        [requirement("R1", evidence=passed(1), waiver=na_waiver())],
        [requirement("R1", waiver=na_waiver()), requirement("R2", level=None, waiver=na_waiver())],
    ],
    ids=["none", "one-not-applicable", "all-not-applicable"],
)
def test_the_score_is_null_when_nothing_is_applicable(requirements):
    result = evaluate(engine_input(*requirements))
    assert (result["score"], result["coverage"], result["freshness"]) == (None, None, None)
    assert (result["level"], result["index"]) == (0, 0.0)
    assert result["areas"] == {}


def test_the_score_is_zero_not_null_when_nothing_is_met():
    result = evaluate(engine_input(requirement("R1"), requirement("R2", level=None)))
    assert (result["score"], result["coverage"], result["freshness"]) == (0.0, 0.0, None)
    assert result["areas"] == {"Reliability": {"score": 0.0, "level": 0}}


# --- invalid input -----------------------------------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any):
    def change(data: dict[str, Any]) -> None:
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _delete(path: tuple[Any, ...]):
    def change(data: dict[str, Any]) -> None:
        target = data
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


# Requirement positions in the worked example: R1 = 0, R2 = 1, R3 = 2 (the risk-waived one).
INVALID = {
    "unknown-top-level-key": (_set(("colour",), "blue"), None, "input"),
    "unknown-requirement-key": (_set(("requirements", 0, "colour"), "blue"), "R1", "requirement"),
    "unknown-evidence-key": (_set(("requirements", 0, "evidence", "colour"), "blue"), "R1", "evidence"),
    "zero-weight": (_set(("requirements", 0, "weight"), 0), "R1", "weight"),
    "negative-weight": (_set(("requirements", 0, "weight"), -1), "R1", "weight"),
    "text-weight": (_set(("requirements", 0, "weight"), "heavy"), "R1", "weight"),
    "level-above-the-list": (_set(("requirements", 0, "level"), 4), "R1", "level"),
    "level-zero": (_set(("requirements", 0, "level"), 0), "R1", "level"),
    "level-as-text": (_set(("requirements", 0, "level"), "1"), "R1", "level"),
    "level-as-float": (_set(("requirements", 0, "level"), 1.5), "R1", "level"),
    "level-as-bool": (_set(("requirements", 0, "level"), True), "R1", "level"),
    "waiver-without-expiry": (
        _delete(("requirements", 2, "waiver", "expires_at")),
        "R3",
        "waiver.expires_at",
    ),
    "unknown-waiver-type": (_set(("requirements", 2, "waiver", "type"), "exempt"), "R3", "waiver.type"),
    "malformed-waiver-expiry": (
        _set(("requirements", 2, "waiver", "expires_at"), "soon"),
        "R3",
        "waiver.expires_at",
    ),
    "malformed-as-of": (_set(("as_of",), "28/11/2026"), None, "as_of"),
    "impossible-as-of": (_set(("as_of",), "2026-02-30"), None, "as_of"),
    "as-of-not-text": (_set(("as_of",), 20261128), None, "as_of"),
    "missing-as-of": (_delete(("as_of",)), None, "as_of"),
    "malformed-observed-at": (
        _set(("requirements", 0, "evidence", "observed_at"), "last week"),
        "R1",
        "evidence.observed_at",
    ),
    "impossible-observed-at": (
        _set(("requirements", 0, "evidence", "observed_at"), "2026-11-31T00:00:00Z"),
        "R1",
        "evidence.observed_at",
    ),
    "evidence-without-time": (
        _delete(("requirements", 0, "evidence", "observed_at")),
        "R1",
        "evidence.observed_at",
    ),
    "duplicate-id": (_set(("requirements", 1, "id"), "R1"), "R1", "id"),
    "levels-not-from-one": (
        _set(("levels",), [{"level": 2, "name": "Enhancement"}, {"level": 3, "name": "Excellence"}]),
        None,
        "levels",
    ),
    "levels-with-a-gap": (
        _set(("levels",), [{"level": 1, "name": "Foundation"}, {"level": 3, "name": "Excellence"}]),
        None,
        "levels",
    ),
    "no-levels": (_set(("levels",), []), None, "levels"),
    "unknown-metric-direction": (
        _set(("requirements", 4, "metric", "direction"), "sideways"),
        "R5",
        "metric.direction",
    ),
    "negative-validity": (_set(("requirements", 0, "valid_for_days"), -1), "R1", "valid_for_days"),
    "negative-grace": (_set(("requirements", 0, "grace_days"), -1), "R1", "grace_days"),
    "blocking-not-bool": (_set(("requirements", 0, "blocking"), "yes"), "R1", "blocking"),
    "passed-not-bool": (_set(("requirements", 0, "evidence", "passed"), "yes"), "R1", "evidence.passed"),
    # "false" is truthy: taken as is, it would silently turn good evidence into a collector error.
    "error-not-bool": (_set(("requirements", 0, "evidence", "error"), "false"), "R1", "evidence.error"),
    "waiver-budget-above-one": (_set(("waiver_budget",), 1.5), None, "waiver_budget"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_it_refuses_invalid_input_naming_the_requirement_and_field(case):
    change, ident, field = INVALID[case]
    data = worked_example()
    change(data)
    with pytest.raises(EngineError) as caught:
        evaluate(data)
    assert (caught.value.requirement, caught.value.field) == (ident, field)
    message = str(caught.value)
    assert field in message
    if ident:
        assert f"requirement {ident}" in message


def test_it_names_a_requirement_without_an_id_by_its_position():
    data = worked_example()
    del data["requirements"][1]["id"]
    with pytest.raises(EngineError) as caught:
        evaluate(data)
    assert (caught.value.requirement, caught.value.field) == ("#2", "id")


@pytest.mark.parametrize(
    "case", ["unknown-requirement-key", "malformed-as-of", "duplicate-id", "zero-weight"]
)
def test_the_score_command_exits_with_code_2_on_invalid_input(case, tmp_path):
    change, ident, field = INVALID[case]
    data = json.loads(WORKED_EXAMPLE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "input.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        call_command("score", "--input", str(path), "--json", stdout=io.StringIO())
    assert caught.value.returncode == 2
    assert field in str(caught.value)
    if ident:
        assert ident in str(caught.value)


@pytest.mark.parametrize("content", [None, "{not json", ""], ids=["missing-file", "not-json", "empty"])
def test_the_score_command_exits_with_code_2_on_an_unreadable_file(content, tmp_path):
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        call_command("score", "--input", str(path), stdout=io.StringIO())
    assert caught.value.returncode == 2


# --- properties --------------------------------------------------------------------------------------------

AREAS = ["Reliability", "Security", "Cost"]
HOURS_BEFORE_AS_OF = st.integers(min_value=-3 * 24, max_value=30 * 24)  # some evidence comes after as_of
# Integers mapped to Decimal: far cheaper to generate than st.decimals, same values.
numbers = st.integers(0, 100).map(lambda tenths: Decimal(tenths) / 10)
weights = st.integers(50, 1000).map(lambda hundredths: Decimal(hundredths) / 100)
# Strategies are built once here: building them inside the composite costs more than drawing from them.
level_counts = st.integers(2, 3)
requirement_counts = st.integers(0, 15)
areas = st.sampled_from(AREAS)
levels_of = {count: st.none() | st.integers(1, count) for count in (2, 3)}
booleans = st.booleans()
small_days = st.integers(0, 10)
evidence_kinds = st.sampled_from(["absent", "passed", "failed", "metric", "error"])
directions = st.sampled_from(["higher", "lower"])
waiver_kinds = st.sampled_from([None, None, "risk_accepted", "not_applicable"])
expiry_days = st.integers(-20, 60)
creation_days = st.integers(-5, 60)
budgets = st.sampled_from([Decimal(0), Decimal("0.2"), Decimal("0.5"), Decimal(1)])


@st.composite
def requirement_sets(draw: st.DrawFn) -> dict[str, Any]:
    """2–3 levels and 0–15 requirements with random areas, levels, weights, evidence and waivers."""
    level_count = draw(level_counts)
    requirements = []
    for position in range(draw(requirement_counts)):
        entry: dict[str, Any] = {
            "id": f"R{position}",
            "area": draw(areas),
            "level": draw(levels_of[level_count]),
            "weight": draw(weights),
            "blocking": draw(booleans),
            "valid_for_days": draw(small_days),
            "grace_days": draw(small_days),
        }
        kind = draw(evidence_kinds)
        if kind != "absent":
            observed_at = ago(draw(HOURS_BEFORE_AS_OF) / 24)
            if kind == "metric":
                entry["metric"] = {
                    "baseline": draw(numbers),
                    "target": draw(numbers),
                    "direction": draw(directions),
                }
                entry["evidence"] = {"observed_at": observed_at, "value": draw(numbers)}
            elif kind == "error":
                entry["evidence"] = {"observed_at": observed_at, "passed": draw(booleans), "error": True}
            else:
                entry["evidence"] = {"observed_at": observed_at, "passed": kind == "passed"}
        if (waiver_kind := draw(waiver_kinds)) is not None:
            waiver = {"type": waiver_kind, "expires_at": ago(-draw(expiry_days)), "reason": "because"}
            if draw(booleans):
                waiver["created_at"] = ago(draw(creation_days))
            entry["waiver"] = waiver
        requirements.append(entry)
    return {
        "as_of": AS_OF.isoformat(),
        "waiver_budget": draw(budgets),
        "levels": LEVELS[:level_count],
        "requirements": requirements,
    }


def _active(waiver: dict[str, Any] | None, kind: str) -> bool:
    if waiver is None or waiver["type"] != kind:
        return False
    expires = datetime.fromisoformat(waiver["expires_at"])
    created = datetime.fromisoformat(waiver["created_at"]) if "created_at" in waiver else None
    return expires > AS_OF and (created is None or created <= AS_OF)


def _headline(result: dict[str, Any]) -> tuple[Any, ...]:
    return result["score"], result["level"], result["index"]


def _with(data: dict[str, Any], position: int, **fields: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    entry = changed["requirements"][position]
    for name, value in fields.items():
        if value is None:
            entry.pop(name, None)
        else:
            entry[name] = value
    return changed


def _not_worse(before: dict[str, Any], after: dict[str, Any]) -> None:
    if before["score"] is not None:
        assert after["score"] >= before["score"]
    assert after["level"] >= before["level"]
    assert after["index"] >= before["index"]


@PROPERTIES
@given(requirement_sets())
def test_property_figures_stay_in_range_and_the_score_is_null_iff_nothing_applies(data):
    result = evaluate(data)
    applicable = [
        entry for entry in data["requirements"] if not _active(entry.get("waiver"), "not_applicable")
    ]
    assert (result["score"] is None) == (not applicable)
    assert (result["coverage"] is None) == (not applicable)
    if applicable:
        assert 0 <= result["score"] <= 100
        assert 0 <= result["coverage"] <= 100
    has_evidence = [entry for entry in result["requirements"] if entry.get("age_days") is not None]
    assert (result["freshness"] is None) == (not has_evidence)
    if result["freshness"] is not None:
        assert 0 <= result["freshness"] <= 100
    for figures in result["areas"].values():
        assert 0 <= figures["score"] <= 100
    assert 0 <= result["level"] <= result["index"] <= result["next_level"] <= len(data["levels"])
    assert result["index"] < result["next_level"] or result["index"] == result["level"]
    assert 0 <= result["next_level_progress"] <= 1


@PROPERTIES
@given(requirement_sets(), st.data())
def test_property_a_failed_requirement_passing_never_lowers_score_level_or_index(data, draw):
    if not data["requirements"]:
        return
    position = draw.draw(st.integers(0, len(data["requirements"]) - 1))
    observed_at = ago(draw.draw(HOURS_BEFORE_AS_OF) / 24)
    failed = _with(data, position, evidence={"observed_at": observed_at, "passed": False}, metric=None)
    now_passed = _with(data, position, evidence={"observed_at": observed_at, "passed": True}, metric=None)
    _not_worse(evaluate(failed), evaluate(now_passed))


@PROPERTIES
@given(requirement_sets(), st.data())
def test_property_younger_evidence_never_lowers_score_level_or_index(data, draw):
    if not data["requirements"]:
        return
    position = draw.draw(st.integers(0, len(data["requirements"]) - 1))
    evidence = data["requirements"][position].get("evidence") or {"passed": draw.draw(st.booleans())}
    older = draw.draw(st.integers(0, 30 * 24))
    younger = draw.draw(st.integers(0, older))
    before = _with(data, position, evidence={**evidence, "observed_at": ago(older / 24)})
    after = _with(data, position, evidence={**evidence, "observed_at": ago(younger / 24)})
    _not_worse(evaluate(before), evaluate(after))


@PROPERTIES
@given(requirement_sets(), st.data())
def test_property_an_active_risk_waiver_never_changes_score_coverage_or_freshness(data, draw):
    if not data["requirements"]:
        return
    position = draw.draw(st.integers(0, len(data["requirements"]) - 1))
    without = evaluate(_with(data, position, waiver=None))
    waived = evaluate(_with(data, position, waiver=risk_waiver(draw.draw(st.integers(1, 90)))))
    assert (waived["score"], waived["coverage"], waived["freshness"]) == (
        without["score"],
        without["coverage"],
        without["freshness"],
    )
    assert {a: f["score"] for a, f in waived["areas"].items()} == {
        a: f["score"] for a, f in without["areas"].items()
    }
    assert waived["level"] >= without["level"]


@PROPERTIES
@given(requirement_sets(), st.data())
def test_property_a_not_applicable_waiver_is_the_same_as_removing_the_requirement(data, draw):
    if not data["requirements"]:
        return
    position = draw.draw(st.integers(0, len(data["requirements"]) - 1))
    waived = evaluate(_with(data, position, waiver=na_waiver(draw.draw(st.integers(1, 90)))))
    removed_data = copy.deepcopy(data)
    del removed_data["requirements"][position]
    removed = evaluate(removed_data)
    for name in ("score", "coverage", "freshness", "level", "index", "next_level", "level_waived", "areas"):
        assert waived[name] == removed[name], name


@PROPERTIES
@given(requirement_sets())
def test_property_without_risk_waivers_the_level_is_the_lowest_area_level(data):
    for entry in data["requirements"]:
        if entry.get("waiver", {}).get("type") == "risk_accepted":
            del entry["waiver"]
    result = evaluate(data)
    area_levels = [figures["level"] for figures in result["areas"].values()]
    assert result["level"] == (min(area_levels) if area_levels else 0)


@PROPERTIES
@given(requirement_sets())
def test_property_the_same_input_gives_the_same_result_and_hash(data):
    first = evaluate(data)
    again = evaluate(copy.deepcopy(data))
    assert again == first
    assert again["inputs_hash"] == first["inputs_hash"]


@PROPERTIES
@given(requirement_sets(), st.randoms(use_true_random=False))
def test_property_the_order_of_requirements_does_not_matter(data, random):
    shuffled = copy.deepcopy(data)
    random.shuffle(shuffled["requirements"])
    original, reordered = evaluate(data), evaluate(shuffled)
    assert _headline(reordered) == _headline(original)
    assert (reordered["coverage"], reordered["freshness"], reordered["areas"]) == (
        original["coverage"],
        original["freshness"],
        original["areas"],
    )
    assert sorted(reordered["blocking_next_level"]) == sorted(original["blocking_next_level"])
