"""Read paths for metrics and evidence: latest values, evidence age and freshness, in a fixed number of queries.

Freshness follows the maturity model (DESIGN §5): evidence is fresh until it is `valid_for` days old (or until its
own `valid_until`), stale during the grace period after that, and expired beyond it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from roadmap.models import ChecklistItem

FRESHNESS_STATES = ["fresh", "stale", "expired", "missing"]


@dataclass(frozen=True)
class Freshness:
    state: str  # fresh | stale | expired | missing
    observed_at: datetime | None = None
    valid_until: datetime | None = None
    age_days: int | None = None
    passed: bool | None = None
    value: Decimal | None = None

    @property
    def label(self) -> str:
        if self.observed_at is None:
            return "no evidence"
        return f"{self.state}, {self.age_days} d old"


def freshness(
    *,
    observed_at: datetime | None,
    valid_until: datetime | None,
    grace_days: int | None,
    now: datetime,
    passed: bool | None = None,
    value: Decimal | None = None,
) -> Freshness:
    if observed_at is None:
        return Freshness(state="missing")
    assert valid_until is not None
    grace = timedelta(days=grace_days if grace_days is not None else settings.CAIRN_EVIDENCE_GRACE_DAYS)
    if now <= valid_until:
        state = "fresh"
    elif now < valid_until + grace:
        state = "stale"
    else:
        state = "expired"
    return Freshness(
        state=state,
        observed_at=observed_at,
        valid_until=valid_until,
        age_days=max(0, (now - observed_at).days),
        passed=passed,
        value=value,
    )


def _latest(queryset: QuerySet, field: str) -> Subquery:
    return Subquery(queryset.values(field)[:1])


def items_with_latest_evidence(items: QuerySet[ChecklistItem], as_of: datetime | None = None) -> QuerySet:
    """Annotate each item with its newest evidence (observed at or before `as_of`): one query in all."""
    latest = Evidence.objects.filter(item=OuterRef("pk")).order_by("-observed_at", "-pk")
    if as_of is not None:
        latest = latest.filter(observed_at__lte=as_of)
    return items.annotate(
        evidence_observed_at=_latest(latest, "observed_at"),
        evidence_valid_until=_latest(latest, "valid_until"),
        evidence_passed=_latest(latest, "passed"),
        evidence_kind=_latest(latest, "kind"),
    )


def items_in_freshness_state(items: QuerySet, state: str, now: datetime) -> QuerySet:
    """Narrow items annotated by `items_with_latest_evidence` to one freshness state, in the database.

    The grace period is per item (or the default); interval arithmetic differs between databases, so the
    condition is spelled out once per distinct grace value (one small query to find them).
    """
    if state == "missing":
        return items.filter(evidence_observed_at__isnull=True)
    if state == "fresh":
        return items.filter(evidence_valid_until__gte=now)
    if state not in ("stale", "expired"):
        return items.none()
    default = settings.CAIRN_EVIDENCE_GRACE_DAYS
    condition = Q(pk__in=[])
    for grace_days in set(items.order_by().values_list("grace_days", flat=True).distinct()):
        grace_end_after_now = Q(
            evidence_valid_until__gt=now - timedelta(days=grace_days if grace_days is not None else default)
        )
        same_grace = Q(grace_days=grace_days) if grace_days is not None else Q(grace_days__isnull=True)
        condition |= same_grace & (grace_end_after_now if state == "stale" else ~grace_end_after_now)
    return items.filter(evidence_valid_until__lt=now).filter(condition)


def metrics_with_latest_value(metrics: QuerySet[Metric], as_of: datetime | None = None) -> QuerySet:
    """Annotate each metric with its newest measurement (at or before `as_of`): one query in all."""
    latest = Measurement.objects.filter(metric=OuterRef("pk")).order_by("-observed_at", "-pk")
    if as_of is not None:
        latest = latest.filter(observed_at__lte=as_of)
    return metrics.annotate(
        latest_value=_latest(latest, "value"), latest_observed_at=_latest(latest, "observed_at")
    )


def item_freshness(item: ChecklistItem, now: datetime) -> Freshness:
    """For an item annotated by `items_with_latest_evidence`."""
    return freshness(
        observed_at=item.evidence_observed_at,  # type: ignore[attr-defined]
        valid_until=item.evidence_valid_until,  # type: ignore[attr-defined]
        grace_days=item.grace_days,
        now=now,
        passed=item.evidence_passed,  # type: ignore[attr-defined]
    )


def metric_freshness(metric: Metric, now: datetime) -> Freshness:
    """For a metric annotated by `metrics_with_latest_value`."""
    observed = metric.latest_observed_at  # type: ignore[attr-defined]
    valid_days = metric.valid_for_days or settings.CAIRN_EVIDENCE_VALID_DAYS
    return freshness(
        observed_at=observed,
        valid_until=observed + timedelta(days=valid_days) if observed is not None else None,
        grace_days=metric.grace_days,
        now=now,
        value=metric.latest_value,  # type: ignore[attr-defined]
    )


def sources_with_last_run(sources: QuerySet[EvidenceSource]) -> QuerySet:
    latest = CollectionRun.objects.filter(source=OuterRef("pk")).order_by("-started_at", "-pk")
    return sources.annotate(
        last_run_status=_latest(latest, "status"),
        last_run_at=_latest(latest, "started_at"),
        last_run_error=_latest(latest, "error"),
    )


def measurement_series(
    metric_ids: Iterable[int], *, limit: int = 12, as_of: datetime | None = None
) -> dict[int, list[Measurement]]:
    """The last `limit` measurements of each metric (observed at or before `as_of`), oldest first (one query),
    for sparklines."""
    ids = list(metric_ids)
    series: dict[int, list[Measurement]] = {metric_id: [] for metric_id in ids}
    if not ids:
        return series
    measurements = Measurement.objects.filter(metric_id__in=ids)
    if as_of is not None:
        measurements = measurements.filter(observed_at__lte=as_of)
    # A window function keeps the newest `limit` rows per metric in the database, however long the history.
    rows = (
        measurements.annotate(
            recency=Window(
                RowNumber(), partition_by=[F("metric_id")], order_by=[F("observed_at").desc(), F("pk").desc()]
            )
        )
        .filter(recency__lte=limit)
        .only("metric_id", "value", "observed_at")
        .order_by("metric_id", "observed_at", "pk")
    )
    for measurement in rows:
        series[measurement.metric_id].append(measurement)
    return series
