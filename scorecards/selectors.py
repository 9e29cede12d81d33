"""The engine's input built from the database, in a fixed number of queries whatever the program's size.

Requirements are the program's active checklist items (not-applicable items are out of scope, as in progress),
its metrics that have a target, and its controlled documents (review currency). Waivers in force at the as-of
date ride on their item or metric requirement. An item's evidence is the newer of its attestation (done, and
when) and its latest recorded evidence; a metric's is its latest measurement.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from django.conf import settings
from django.db.models import Exists, Max, OuterRef

from governance.models import ControlledDocument, DocumentVersion
from governance.waivers import waivers_in_force
from metrics.models import Metric
from metrics.selectors import items_with_latest_evidence, metrics_with_latest_value
from roadmap.models import ChecklistItem, Program, Section
from roadmap.selectors import section_path_tuples
from scorecards.engine import DEFAULT_WAIVER_BUDGET

DOCUMENT_AREA = "Document control"
# Document currency is judged by its next review date, not by the age of its last review.
DOCUMENT_VALID_FOR_DAYS = 36500


@dataclass
class MaturityInput:
    data: dict[str, Any]
    not_measurable: list[dict[str, Any]] = field(default_factory=list)
    config_hash: str = ""


def _moment(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return datetime.combine(value, time.min, tzinfo=UTC).isoformat()


def _areas(program: Program, sections: list[Section]) -> dict[int, str]:
    """Each section's capability area: the nearest flagged ancestor, else its ancestor at the program's area depth."""
    paths = section_path_tuples(sections)
    by_id = {section.pk: section for section in sections}
    flagged_titles = {paths[s.pk]: s.title for s in sections if s.is_capability_area}
    areas: dict[int, str] = {}
    for section in by_id.values():
        path = paths[section.pk]
        flagged = next(
            (
                flagged_titles[path[:depth]]
                for depth in range(len(path), 0, -1)
                if path[:depth] in flagged_titles
            ),
            None,
        )
        areas[section.pk] = flagged or path[: max(1, program.area_depth)][-1]
    return areas


def _waivers_by_requirement(program: Program, as_of: datetime) -> dict[str, dict[str, Any]]:
    """The waivers in force at `as_of`, keyed by the requirement id they apply to (one query)."""
    rows = (
        waivers_in_force(program.pk, as_of)
        .order_by("approved_at", "pk")
        .values_list("type", "expires_at", "approved_at", "item__key", "metric__key")
    )
    return {
        f"item:{item_key}" if item_key is not None else f"metric:{metric_key}": {
            "type": waiver_type,
            "expires_at": _moment(expires_at),
            # The engine counts a waiver from its created_at; for Cairn that is the moment it was approved.
            "created_at": _moment(approved_at),
        }
        for waiver_type, expires_at, approved_at, item_key, metric_key in rows
    }


def maturity_input(program: Program, as_of: datetime) -> MaturityInput:
    sections = list(
        Section.objects.filter(program=program).only("pk", "parent_id", "title", "is_capability_area")
    )
    areas = _areas(program, sections)
    valid_default = settings.CAIRN_EVIDENCE_VALID_DAYS
    grace_default = settings.CAIRN_EVIDENCE_GRACE_DAYS
    requirements: list[dict[str, Any]] = []
    waivers = _waivers_by_requirement(program, as_of)

    items = items_with_latest_evidence(
        ChecklistItem.objects.filter(program=program, archived_at__isnull=True).exclude(
            status=ChecklistItem.Status.NOT_APPLICABLE
        ),
        as_of,
    ).order_by("order", "pk")
    for item in items.values(
        "key", "title", "kind", "section_id", "level", "weight", "blocking", "status", "valid_for_days",
        "grace_days", "attested_at", "completed_at", "evidence_observed_at", "evidence_valid_until",
        "evidence_passed", "evidence_kind",
    ):  # fmt: skip
        requirement: dict[str, Any] = {
            "id": f"item:{item['key']}",
            "kind": item["kind"],
            "title": item["title"],
            "area": areas.get(item["section_id"], program.title),
            "level": item["level"],
            "weight": item["weight"],
            "blocking": item["blocking"],
            "valid_for_days": item["valid_for_days"] if item["valid_for_days"] is not None else valid_default,
            "grace_days": item["grace_days"] if item["grace_days"] is not None else grace_default,
        }
        attested = item["attested_at"] or item["completed_at"]
        if item["status"] != ChecklistItem.Status.DONE:
            attested = None
        recorded = item["evidence_observed_at"]
        if recorded is not None and (attested is None or recorded >= attested):
            # Recorded evidence (a link, a file or a collector's check) is newer than the attestation: it
            # speaks, with its own validity. Only completed runs write evidence, so errors never pass.
            requirement["evidence"] = {
                "observed_at": _moment(recorded),
                "passed": item["evidence_passed"],
                "source": item["evidence_kind"],
            }
            if item["evidence_valid_until"] is not None:
                valid_for = item["evidence_valid_until"] - recorded
                requirement["valid_for_days"] = max(1, round(valid_for.total_seconds() / 86400))
        elif attested is not None:
            # A manual item's evidence is its attestation: who marked it done, and when.
            requirement["evidence"] = {
                "observed_at": _moment(attested),
                "passed": True,
                "source": "attestation",
            }
        if (waiver := waivers.get(requirement["id"])) is not None:
            requirement["waiver"] = waiver
        requirements.append(requirement)

    not_measurable = []
    metrics = metrics_with_latest_value(
        Metric.objects.filter(program=program, archived_at__isnull=True), as_of
    )
    for metric in metrics.order_by("order", "pk"):
        if metric.target is None:
            not_measurable.append({"key": metric.key, "name": metric.name, "why": "no target yet"})
            continue
        requirement = {
            "id": f"metric:{metric.key}",
            "kind": "metric",
            "title": metric.name,
            "area": areas.get(metric.category_id, program.title) if metric.category_id else program.title,
            "level": metric.level,
            "weight": metric.weight,
            "valid_for_days": metric.valid_for_days if metric.valid_for_days is not None else valid_default,
            "grace_days": metric.grace_days if metric.grace_days is not None else grace_default,
            "metric": {
                "baseline": metric.baseline if metric.baseline is not None else 0,
                "target": metric.target,
                "direction": metric.direction,
            },
        }
        if metric.latest_observed_at is not None:
            requirement["evidence"] = {
                "observed_at": _moment(metric.latest_observed_at),
                "value": metric.latest_value,
                "source": "measurement",
            }
        if (waiver := waivers.get(requirement["id"])) is not None:
            requirement["waiver"] = waiver
        requirements.append(requirement)

    documents = ControlledDocument.objects.filter(program=program).annotate(
        # Current means a version is in force (and the review is not overdue: the engine checks the date).
        has_version=Exists(
            DocumentVersion.objects.filter(document=OuterRef("pk"), state=DocumentVersion.State.EFFECTIVE)
        ),
        latest_version_at=Max("versions__created_at"),
    )
    for document in documents.order_by("pk"):
        requirement = {
            "id": f"document:{document.doc_id or document.pk}",
            "kind": "document",
            "title": document.title,
            "area": DOCUMENT_AREA,
            "level": None,
            "weight": 1,
            "valid_for_days": DOCUMENT_VALID_FOR_DAYS,
            "grace_days": 0,
            "document": {
                "effective": document.has_version,
                "next_review_due": _moment(document.next_review_due),
            },
        }
        reviewed = document.last_reviewed_on or document.last_updated_on or document.latest_version_at
        if reviewed is not None:
            requirement["evidence"] = {"observed_at": _moment(reviewed), "source": "review"}
        requirements.append(requirement)

    levels = [{"level": entry["level"], "name": entry["name"]} for entry in program.levels]
    config = {
        "levels": levels,
        "waiver_budget": str(DEFAULT_WAIVER_BUDGET),
        "valid": valid_default,
        "grace": grace_default,
    }
    data = {
        "as_of": _moment(as_of),
        "waiver_budget": DEFAULT_WAIVER_BUDGET,
        "levels": levels,
        "requirements": requirements,
    }
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return MaturityInput(data=data, not_measurable=not_measurable, config_hash=config_hash)
