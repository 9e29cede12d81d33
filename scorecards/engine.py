"""The maturity engine, model MMS-1 (DESIGN §5): plain data in, plain data out, no database.

Every number is computed with Decimal from the input as given and rounded to two places only in the output, so
the same input always gives the same result and the same inputs hash. `evaluate()` takes the JSON contract
(a dict as `json.loads(..., parse_float=Decimal)` gives it, or with floats); `EngineError` names the
requirement and the field of anything it cannot use.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any

MODEL_VERSION = "MMS-1"
DEFAULT_WAIVER_BUDGET = Decimal("0.2")
DEFAULT_VALID_FOR_DAYS = 365
DEFAULT_GRACE_DAYS = 30
ZERO, ONE, HUNDRED = Decimal(0), Decimal(1), Decimal(100)
SECONDS_PER_DAY = Decimal(86400)
_CONTEXT = Context(prec=34)

TOP_KEYS = {"as_of", "waiver_budget", "levels", "requirements"}
REQUIREMENT_KEYS = {
    "id", "area", "level", "weight", "blocking", "valid_for_days", "grace_days", "evidence", "metric", "document",
    "waiver", "kind", "title",
}  # fmt: skip
EVIDENCE_KEYS = {"observed_at", "passed", "value", "error", "source"}
METRIC_KEYS = {"baseline", "target", "direction"}
DOCUMENT_KEYS = {"effective", "next_review_due"}
WAIVER_KEYS = {"type", "expires_at", "created_at", "reason"}
WAIVER_TYPES = {"not_applicable", "risk_accepted"}


class EngineError(ValueError):
    """Input the engine cannot evaluate; says which requirement and which field."""

    def __init__(self, message: str, *, requirement: str | None = None, field: str | None = None) -> None:
        where = " ".join(
            part for part in (f"requirement {requirement}" if requirement else "", field or "") if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.requirement = requirement
        self.field = field


@dataclass
class Requirement:
    id: str
    area: str
    level: int | None
    weight: Decimal
    blocking: bool
    valid_for: Decimal
    grace: Decimal
    observed_at: datetime | None = None
    passed: bool | None = None
    value: Decimal | None = None
    error: bool = False
    metric: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    waiver_type: str | None = None
    waiver_active: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluated:
    requirement: Requirement
    applicable: bool
    credit: Decimal = ZERO
    freshness: Decimal = ZERO
    gate: int = 0
    state: str = "missing"
    passed: bool = False
    risk_waived: bool = False  # g = 1 only because of an active risk waiver
    age_days: Decimal | None = None

    @property
    def effective(self) -> Decimal:
        return self.credit * self.freshness


# --- input ---------------------------------------------------------------------------------------------------


def _number(value: Any, requirement: str | None, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise EngineError("must be a number.", requirement=requirement, field=name)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise EngineError(f"{value!r} is not a number.", requirement=requirement, field=name) from None
    if not number.is_finite():
        raise EngineError("must be a finite number.", requirement=requirement, field=name)
    return number


def _moment(value: Any, requirement: str | None, name: str) -> datetime:
    if not isinstance(value, str):
        raise EngineError(
            "must be an ISO 8601 date or date-time string.", requirement=requirement, field=name
        )
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else None
        if moment is None:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        raise EngineError(
            f"{value!r} is not an ISO 8601 date.", requirement=requirement, field=name
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _unknown(data: dict[str, Any], allowed: set[str], requirement: str | None, where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise EngineError(
            f"unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}.",
            requirement=requirement,
            field=where,
        )


def _mapping(value: Any, requirement: str | None, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EngineError("must be an object.", requirement=requirement, field=name)
    return value


@dataclass
class EngineInput:
    as_of: datetime
    budget: Decimal
    levels: list[dict[str, Any]]
    requirements: list[Requirement]
    canonical: dict[str, Any]


def parse_input(data: Any) -> EngineInput:
    data = _mapping(data, None, "input")
    _unknown(data, TOP_KEYS, None, "input")
    if "as_of" not in data:
        raise EngineError("is required.", field="as_of")
    as_of = _moment(data["as_of"], None, "as_of")
    budget = _number(data.get("waiver_budget", DEFAULT_WAIVER_BUDGET), None, "waiver_budget")
    if not ZERO <= budget <= ONE:
        raise EngineError("must be between 0 and 1.", field="waiver_budget")
    levels = data.get("levels")
    if not isinstance(levels, list) or not levels:
        raise EngineError("give at least one level as [{level, name}].", field="levels")
    for position, entry in enumerate(levels, start=1):
        if (
            not isinstance(entry, dict)
            or entry.get("level") != position
            or not isinstance(entry.get("name"), str)
        ):
            raise EngineError(
                f"entry {position} must be {{'level': {position}, 'name': '...'}}.", field="levels"
            )
    raw_requirements = data.get("requirements")
    if not isinstance(raw_requirements, list):
        raise EngineError("must be a list.", field="requirements")
    requirements: list[Requirement] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_requirements, start=1):
        requirement = _requirement(raw, position, len(levels), as_of)
        if requirement.id in seen:
            raise EngineError("appears twice.", requirement=requirement.id, field="id")
        seen.add(requirement.id)
        requirements.append(requirement)
    canonical = {
        "as_of": as_of.isoformat(),
        "waiver_budget": str(budget),
        "levels": levels,
        "requirements": [_canonical(raw) for raw in raw_requirements],
    }
    return EngineInput(
        as_of=as_of, budget=budget, levels=levels, requirements=requirements, canonical=canonical
    )


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        return str(Decimal(str(value)).normalize())
    return value


def _requirement(raw: Any, position: int, level_count: int, as_of: datetime) -> Requirement:
    raw = _mapping(raw, f"#{position}", "requirement")
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        raise EngineError(
            "every requirement needs a non-empty string id.", requirement=f"#{position}", field="id"
        )
    _unknown(raw, REQUIREMENT_KEYS, ident, "requirement")
    area = raw.get("area")
    if not isinstance(area, str) or not area:
        raise EngineError("must be a non-empty string.", requirement=ident, field="area")
    level = raw.get("level")
    if level is not None and (
        isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= level_count
    ):
        raise EngineError(
            f"must be null or a level from 1 to {level_count}.", requirement=ident, field="level"
        )
    weight = _number(raw.get("weight", 1), ident, "weight")
    if weight <= 0:
        raise EngineError("must be greater than 0.", requirement=ident, field="weight")
    blocking = raw.get("blocking", True)
    if not isinstance(blocking, bool):
        raise EngineError("must be true or false.", requirement=ident, field="blocking")
    valid_for = _number(raw.get("valid_for_days", DEFAULT_VALID_FOR_DAYS), ident, "valid_for_days")
    grace = _number(raw.get("grace_days", DEFAULT_GRACE_DAYS), ident, "grace_days")
    for name, days in (("valid_for_days", valid_for), ("grace_days", grace)):
        if days < 0:
            raise EngineError("must not be negative.", requirement=ident, field=name)
    requirement = Requirement(
        id=ident, area=area, level=level, weight=weight, blocking=blocking, valid_for=valid_for, grace=grace,
        extra={key: raw[key] for key in ("kind", "title") if key in raw},
    )  # fmt: skip
    if (evidence := raw.get("evidence")) is not None:
        evidence = _mapping(evidence, ident, "evidence")
        _unknown(evidence, EVIDENCE_KEYS, ident, "evidence")
        if "observed_at" not in evidence:
            raise EngineError("is required in evidence.", requirement=ident, field="evidence.observed_at")
        observed = _moment(evidence["observed_at"], ident, "evidence.observed_at")
        if observed <= as_of:  # evidence from after as_of does not exist yet
            requirement.observed_at = observed
            if "passed" in evidence and not isinstance(evidence["passed"], bool):
                raise EngineError("must be true or false.", requirement=ident, field="evidence.passed")
            requirement.passed = evidence.get("passed")
            if evidence.get("value") is not None:
                requirement.value = _number(evidence["value"], ident, "evidence.value")
            if not isinstance(evidence.get("error", False), bool):
                raise EngineError("must be true or false.", requirement=ident, field="evidence.error")
            requirement.error = evidence.get("error", False)
    if (metric := raw.get("metric")) is not None:
        metric = _mapping(metric, ident, "metric")
        _unknown(metric, METRIC_KEYS, ident, "metric")
        direction = metric.get("direction", "higher")
        if direction not in ("higher", "lower"):
            raise EngineError("must be 'higher' or 'lower'.", requirement=ident, field="metric.direction")
        requirement.metric = {
            "baseline": _number(metric.get("baseline"), ident, "metric.baseline"),
            "target": _number(metric.get("target"), ident, "metric.target"),
            "direction": direction,
        }
    if (document := raw.get("document")) is not None:
        document = _mapping(document, ident, "document")
        _unknown(document, DOCUMENT_KEYS, ident, "document")
        due = document.get("next_review_due")
        requirement.document = {
            "effective": bool(document.get("effective", False)),
            "next_review_due": _moment(due, ident, "document.next_review_due") if due else None,
        }
    if (waiver := raw.get("waiver")) is not None:
        waiver = _mapping(waiver, ident, "waiver")
        _unknown(waiver, WAIVER_KEYS, ident, "waiver")
        if waiver.get("type") not in WAIVER_TYPES:
            raise EngineError(
                f"must be one of {', '.join(sorted(WAIVER_TYPES))}.", requirement=ident, field="waiver.type"
            )
        if not waiver.get("expires_at"):
            raise EngineError("a waiver needs an expiry.", requirement=ident, field="waiver.expires_at")
        expires = _moment(waiver["expires_at"], ident, "waiver.expires_at")
        created = (
            _moment(waiver["created_at"], ident, "waiver.created_at") if waiver.get("created_at") else None
        )
        requirement.waiver_type = waiver["type"]
        requirement.waiver_active = as_of < expires and (created is None or as_of >= created)
    return requirement


# --- evaluation ----------------------------------------------------------------------------------------------


def _clamp(value: Decimal) -> Decimal:
    return max(ZERO, min(ONE, value))


def _evaluate_one(requirement: Requirement, as_of: datetime) -> Evaluated:
    if requirement.waiver_active and requirement.waiver_type == "not_applicable":
        return Evaluated(requirement, applicable=False, state="not_applicable")
    result = Evaluated(requirement, applicable=True)
    has_evidence = requirement.observed_at is not None
    if has_evidence and not requirement.error:
        assert requirement.observed_at is not None
        seconds = Decimal((as_of - requirement.observed_at).total_seconds())
        age = seconds / SECONDS_PER_DAY
        result.age_days = age
        valid, grace = requirement.valid_for, requirement.grace
        if age <= valid:
            result.freshness, result.state = ONE, "fresh"
        elif age < valid + grace:
            result.freshness, result.state = ONE - (age - valid) / grace, "stale"
        else:
            result.freshness, result.state = ZERO, "expired"
        result.credit = _credit(requirement, as_of)
        result.passed = result.credit == ONE
        # Evidence is valid through day V (f = 1 there); with no grace the gate closes after V, not at it.
        alive = age < valid + grace or (grace == 0 and age <= valid)
    else:
        result.state = "error" if has_evidence else "missing"
        alive = False
    if result.passed and alive:
        result.gate = 1
    elif requirement.waiver_active and requirement.waiver_type == "risk_accepted":
        result.gate, result.risk_waived = 1, True
    return result


def _credit(requirement: Requirement, as_of: datetime) -> Decimal:
    if requirement.document is not None:
        due = requirement.document["next_review_due"]
        return ONE if requirement.document["effective"] and due is not None and as_of < due else ZERO
    if requirement.metric is not None and requirement.value is not None:
        baseline, target = requirement.metric["baseline"], requirement.metric["target"]
        value = requirement.value
        if requirement.metric["direction"] == "higher":
            if target == baseline:
                return ONE if value >= target else ZERO
            return _clamp((value - baseline) / (target - baseline))
        if target == baseline:
            return ONE if value <= target else ZERO
        return _clamp((baseline - value) / (baseline - target))
    return ONE if requirement.passed else ZERO


def _share(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return HUNDRED * numerator / denominator if denominator else None


def _round(value: Decimal | None) -> float | None:
    if value is None:
        return None
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def evaluate(data: Any) -> dict[str, Any]:
    """Evaluate the JSON contract of DESIGN §5 and return the result object."""
    with localcontext(_CONTEXT):
        parsed = parse_input(data)
        return _evaluate(parsed)


def _evaluate(parsed: EngineInput) -> dict[str, Any]:
    evaluated = [_evaluate_one(requirement, parsed.as_of) for requirement in parsed.requirements]
    applicable = [item for item in evaluated if item.applicable]
    budget = parsed.budget
    level_numbers = [entry["level"] for entry in parsed.levels]

    blocking_by_level: dict[int, list[Evaluated]] = defaultdict(list)
    for item in applicable:
        if item.requirement.blocking and item.requirement.level is not None:
            blocking_by_level[item.requirement.level].append(item)
    claimable = [level for level in level_numbers if blocking_by_level.get(level)]

    def level_state(level: int) -> tuple[bool, Decimal, Decimal, Decimal]:
        """(satisfied, level weight, met unwaived weight, waived weight) of a claimable level."""
        items = blocking_by_level[level]
        total = sum((item.requirement.weight for item in items), ZERO)
        met = sum((item.requirement.weight for item in items if item.gate and not item.risk_waived), ZERO)
        waived = sum((item.requirement.weight for item in items if item.risk_waived), ZERO)
        satisfied = all(item.gate for item in items) and waived <= budget * total
        return satisfied, total, met, waived

    level = 0
    for candidate in claimable:
        if not level_state(candidate)[0]:
            break
        level = candidate
    level_waived = any(
        item.risk_waived for lvl in claimable if lvl <= level for item in blocking_by_level[lvl]
    )
    above = [candidate for candidate in claimable if candidate > level]
    next_level, progress = level, ZERO
    if above:
        next_level = above[0]
        _, total, met, waived = level_state(next_level)
        progress = (met + min(waived, budget * total)) / total
    index = Decimal(level) + progress * (next_level - level)

    total_weight = sum((item.requirement.weight for item in applicable), ZERO)
    score = _share(sum((item.requirement.weight * item.effective for item in applicable), ZERO), total_weight)
    coverage = _share(
        sum((item.requirement.weight for item in applicable if item.freshness > 0), ZERO), total_weight
    )
    with_evidence = [item for item in applicable if item.age_days is not None]
    freshness = _share(
        sum((item.requirement.weight * item.freshness for item in with_evidence), ZERO),
        sum((item.requirement.weight for item in with_evidence), ZERO),
    )

    areas: dict[str, dict[str, Any]] = {}
    by_area: dict[str, list[Evaluated]] = defaultdict(list)
    for item in applicable:
        by_area[item.requirement.area].append(item)
    for area in sorted(by_area):
        items = by_area[area]
        weight = sum((item.requirement.weight for item in items), ZERO)
        area_level = 0
        for candidate in claimable:
            if not all(
                item.gate
                for item in items
                if item.requirement.blocking
                and item.requirement.level is not None
                and item.requirement.level <= candidate
            ):
                break
            area_level = candidate
        areas[area] = {
            "score": _round(
                _share(sum((item.requirement.weight * item.effective for item in items), ZERO), weight)
            ),
            "level": area_level,
        }

    names = {entry["level"]: entry["name"] for entry in parsed.levels}
    failing_next = [
        item.requirement.id
        for item in blocking_by_level.get(next_level, [])
        if not item.gate and next_level > level
    ]
    return {
        "model_version": MODEL_VERSION,
        "as_of": parsed.as_of.isoformat(),
        "inputs_hash": inputs_hash(parsed.canonical),
        "level": level,
        "level_name": names.get(level, ""),
        "level_waived": level_waived,
        "index": _round(index),
        "next_level": next_level,
        "next_level_progress": _round(progress),
        "blocking_next_level": failing_next,
        "score": _round(score),
        "coverage": _round(coverage),
        "freshness": _round(freshness),
        "areas": areas,
        "requirements": [_requirement_row(item) for item in evaluated],
    }


def _requirement_row(item: Evaluated) -> dict[str, Any]:
    requirement = item.requirement
    row: dict[str, Any] = {
        "id": requirement.id,
        "area": requirement.area,
        "level": requirement.level,
        "weight": _round(requirement.weight),
        "blocking": requirement.blocking,
        "applicable": item.applicable,
        **requirement.extra,
    }
    if not item.applicable:
        return {**row, "state": "not_applicable", "waiver": "not_applicable"}
    return {
        **row,
        "credit": _round(item.credit),
        "freshness": _round(item.freshness),
        "effective_credit": _round(item.effective),
        "gate": item.gate,
        "state": item.state,
        "passed": item.passed,
        "age_days": _round(item.age_days),
        "waiver": requirement.waiver_type if requirement.waiver_active else None,
        "gate_by_waiver": item.risk_waived,
    }


def inputs_hash(canonical: dict[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
