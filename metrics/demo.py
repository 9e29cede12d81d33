"""The example program's metrics and one collector, for `make run`: values to chart and a source to "Run now"."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from metrics.models import EvidenceSource, Measurement, Metric
from metrics.services import metric_save, source_save
from roadmap.models import ChecklistItem, Program

# key, name, unit, direction, baseline, target, twelve weekly values (oldest first; None: not measured yet)
DEMO_METRICS = [
    ("availability-30d", "Availability (30 days)", "%", "higher", "99.0", "99.9",
     ["99.21", "99.30", "99.28", "99.45", "99.52", "99.50", "99.61", "99.70", "99.66", "99.74", "99.80", "99.83"]),
    ("mttr", "Mean time to restore", "min", "lower", "240", "60",
     ["230", "210", "215", "180", "160", "150", "140", "120", "118", "100", "95", "88"]),
    ("deploys-per-week", "Deployments per week", "/week", "higher", None, None, None),
]  # fmt: skip


@transaction.atomic
def demo_metrics_load(program: Program, *, base_url: str = "http://127.0.0.1:8000") -> bool:
    """Add the demo metrics, their history and a health check to `program` once; later calls change nothing."""
    if program.metrics.exists():
        return False
    now = timezone.now()
    for order, (key, name, unit, direction, baseline, target, values) in enumerate(DEMO_METRICS):
        metric = metric_save(
            metric=Metric(
                program=program,
                key=key,
                name=name,
                unit=unit,
                direction=direction,
                baseline=Decimal(baseline) if baseline else None,
                target=Decimal(target) if target else None,
                frequency="weekly",
                valid_for_days=14,
                grace_days=14,
                order=order,
            ),
            by=None,
            reason="demo",
        )
        Measurement.objects.bulk_create(
            Measurement(
                metric=metric,
                value=Decimal(value),
                observed_at=now - timedelta(weeks=len(values) - 1 - week),
                source=Measurement.Source.IMPORT,
                note="demo history",
            )
            for week, value in enumerate(values or [])
        )
    item = (
        ChecklistItem.objects.filter(program=program, kind=ChecklistItem.Kind.PRACTICE)
        .order_by("order")
        .first()
    )
    source = EvidenceSource(
        program=program,
        name="Cairn admin answers",
        kind=EvidenceSource.Kind.HTTP_CHECK,
        config={"url": f"{base_url}/admin/login/", "expected_status": [200], "max_latency_ms": 2000},
        interval_seconds=300,
        timeout_seconds=Decimal("5"),
    )
    source_save(source=source, by=None, item_ids=[item.pk] if item else [])
    return True
