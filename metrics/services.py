"""Metrics and evidence use cases: define, measure, attach evidence, configure sources and collect.

Collection happens in three steps so that the network never holds a database transaction or connection:
claim the runs (one row per source and slot, guarded by a unique constraint), fetch concurrently in threads
(collectors are pure), then record each result in its own transaction. A run is finished exactly once: the
finish is a conditional update on `status = running`, and measurements and evidence hang off the run with
unique constraints, so a redelivered task or a second worker cannot record a second result.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import re
import secrets
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from cairn.lib import http
from cairn.lib.history import save_with_history
from metrics.collectors import Result, Status, collector_for
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from roadmap import access
from roadmap.models import ChecklistItem, Program

if TYPE_CHECKING:
    from roadmap.models import AnyUser

logger = logging.getLogger(__name__)


def abandoned_after() -> timedelta:
    """Slack beyond a run's own worst case (attempts × timeout + backoff) before it counts as abandoned."""
    return timedelta(seconds=settings.CAIRN_COLLECTOR_ABANDONED_AFTER_SECONDS)


# Collectors may only read credentials meant for them: without the prefix a manager could have the worker send
# SECRET_KEY or DATABASE_URL as a bearer token to a server of their choosing.
SECRET_ENV_PREFIX = "CAIRN_SECRET_"  # noqa: S105 — a name prefix, not a secret
_SECRET_ENV_NAME = re.compile(r"CAIRN_SECRET_[A-Z0-9_]+")


def secret_env_allowed(name: str) -> bool:
    return _SECRET_ENV_NAME.fullmatch(name) is not None


# --- definitions and manual data -----------------------------------------------------------------------------


def _require_manager(user: AnyUser | None, program_id: int) -> None:
    if user is not None and not access.can_manage_program(user, program_id):
        raise PermissionDenied("Only a manager of the program may do this.")


def metric_save(*, metric: Metric, by: AnyUser | None, reason: str = "") -> Metric:
    """Create or change a metric definition (managers). A new metric without a key gets one from its name."""
    _require_manager(by, metric.program_id)
    if not metric.key:
        metric.key = slugify(metric.name)[:200] or "metric"
    if metric.category_id is not None and metric.category.program_id != metric.program_id:
        raise ValidationError({"category": "The category must be a section of the same program."})
    metric.full_clean()
    with transaction.atomic():
        save_with_history(metric, by=by, reason=reason or "edited")
    return metric


def measurement_record(
    *,
    metric: Metric,
    value: Decimal,
    observed_at: datetime | None = None,
    by: AnyUser | None,
    source: str = Measurement.Source.MANUAL,
    note: str = "",
) -> Measurement:
    """A value entered by hand or through the API: managers, or the metric's owner."""
    if by is not None and not (access.can_manage_program(by, metric.program_id) or metric.owner_id == by.pk):
        raise PermissionDenied("Only a manager of the program or the metric's owner may record values.")
    if metric.archived_at is not None:
        raise ValidationError({"metric": "This metric is archived."})
    now = timezone.now()
    observed_at = observed_at or now
    if observed_at > now + timedelta(minutes=5):
        raise ValidationError({"observed_at": "A measurement cannot describe the future."})
    measurement = Measurement(
        metric=metric, value=value, observed_at=observed_at, source=source, note=note, recorded_by=by
    )
    measurement.full_clean(exclude=["run"])
    measurement.save()
    return measurement


def evidence_valid_until(item: ChecklistItem, observed_at: datetime, days: int | None = None) -> datetime:
    days = days or item.valid_for_days or settings.CAIRN_EVIDENCE_VALID_DAYS
    return observed_at + timedelta(days=days)


def evidence_attach(
    *,
    item: ChecklistItem,
    by: AnyUser | None,
    url: str = "",
    upload: UploadedFile | None = None,
    observed_at: datetime | None = None,
    valid_until: datetime | None = None,
    passed: bool = True,
    note: str = "",
) -> Evidence:
    """A link or a file that shows an item is met: managers, or the contributor who owns the item."""
    if by is not None and not access.can_change_item(by, item):
        raise PermissionDenied("Only a manager of the program or the item's owner may attach evidence.")
    if bool(url) == (upload is not None):
        raise ValidationError({"url": "Give either a link or a file."})
    observed_at = observed_at or timezone.now()
    evidence = Evidence(
        item=item,
        kind=Evidence.Kind.LINK if url else Evidence.Kind.FILE,
        url=url,
        observed_at=observed_at,
        valid_until=valid_until or evidence_valid_until(item, observed_at),
        passed=passed,
        note=note,
        recorded_by=by,
    )
    if evidence.valid_until <= evidence.observed_at:
        raise ValidationError({"valid_until": "Evidence must stay valid after the moment it describes."})
    if upload is not None:
        if upload.size is not None and upload.size > settings.CAIRN_EVIDENCE_MAX_FILE_BYTES:
            raise ValidationError(
                {"file": f"The file is larger than {settings.CAIRN_EVIDENCE_MAX_FILE_BYTES} bytes."}
            )
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        evidence.sha256 = digest.hexdigest()
        upload.seek(0)
    # Everything is checked before the file is stored, and a failed insert takes the file with it.
    evidence.full_clean(exclude=["file", "run"])
    if upload is not None:
        evidence.file.save(os.path.basename(upload.name or "evidence"), upload, save=False)
    try:
        evidence.save()
    except Exception:
        if evidence.file:
            evidence.file.delete(save=False)
        raise
    return evidence


# --- sources -------------------------------------------------------------------------------------------------


def push_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def source_save(
    *, source: EvidenceSource, by: AnyUser | None, item_ids: Iterable[int] | None = None
) -> str | None:
    """Create or change a source: its configuration is checked for its kind and what it feeds must belong to
    its program. Answers the push token when one was just made (shown once; only its hash is kept)."""
    _require_manager(by, source.program_id)
    collector = collector_for(source.kind)
    source.config = collector.validate(source.config or {})
    if source.auth != EvidenceSource.Auth.NONE and not source.secret_env:
        raise ValidationError({"secret_env": "Name the environment variable that holds the credential."})
    if source.secret_env and not secret_env_allowed(source.secret_env):
        raise ValidationError(
            {
                "secret_env": f"Give the name of an environment variable starting with {SECRET_ENV_PREFIX} "
                "(letters, digits and _), not its value: only those are credentials for collectors."
            }
        )
    if source.metric_id is not None and source.metric.program_id != source.program_id:
        raise ValidationError({"metric": "The metric must belong to the source's program."})
    items = None
    if item_ids is not None:
        items = list(ChecklistItem.objects.filter(pk__in=list(item_ids)))
        if any(item.program_id != source.program_id for item in items):
            raise ValidationError({"items": "Every item must belong to the source's program."})
    source.full_clean(exclude=["items"])
    token = None
    if source.kind == EvidenceSource.Kind.PUSH and not source.push_token_hash:
        token = secrets.token_urlsafe(32)
        source.push_token_hash = push_token_hash(token)
    if source.kind != EvidenceSource.Kind.PUSH and source.enabled and source.next_run_at is None:
        source.next_run_at = timezone.now()
    if source.pk is None:
        source.created_by = by if by is not None and by.is_authenticated else None
    with transaction.atomic():
        save_with_history(source, by=by, reason="configured")
        if items is not None:
            source.items.set(items)
    return token


def source_rotate_token(*, source: EvidenceSource, by: AnyUser | None) -> str:
    """A new push token; the old one stops working at once."""
    _require_manager(by, source.program_id)
    if source.kind != EvidenceSource.Kind.PUSH:
        raise ValidationError({"kind": "Only push sources have a token."})
    token = secrets.token_urlsafe(32)
    EvidenceSource.objects.filter(pk=source.pk).update(push_token_hash=push_token_hash(token))
    source.push_token_hash = push_token_hash(token)
    return token


def source_for_push_token(source_id: int, token: str) -> EvidenceSource | None:
    source = EvidenceSource.objects.filter(pk=source_id, kind=EvidenceSource.Kind.PUSH).first()
    if source is None or not source.push_token_hash or not source.enabled or source.archived_at is not None:
        return None
    return source if secrets.compare_digest(source.push_token_hash, push_token_hash(token)) else None


def source_push(
    *,
    source: EvidenceSource,
    value: Decimal | None = None,
    passed: bool | None = None,
    observed_at: datetime | None = None,
    note: str = "",
) -> CollectionRun:
    """A result posted by an external system: recorded like a collected one."""
    if value is None and passed is None:
        raise ValidationError({"value": "Give a value, a pass/fail result, or both."})
    if value is not None and source.metric_id is None:
        raise ValidationError({"value": "This source feeds no metric; send `passed` only."})
    if passed is not None and not source.items.exists():
        raise ValidationError({"passed": "This source feeds no checklist items; send `value` only."})
    now = timezone.now()
    if observed_at is not None and observed_at > now + timedelta(minutes=5):
        raise ValidationError({"observed_at": "A result cannot describe the future."})
    run = CollectionRun.objects.create(
        source=source, trigger=CollectionRun.Trigger.PUSH, started_at=now, attempts=1
    )
    status = Status.SUCCESS if passed is not False else Status.FAILED
    result = Result(status=status, passed=passed, value=value, observed_at=observed_at or now, excerpt=note)
    run_finish(run=run, result=result, duration_ms=0)
    run.refresh_from_db()
    return run


# --- collection ----------------------------------------------------------------------------------------------


@dataclass
class Job:
    """A claimed run and what the thread needs to execute it, loaded before the pool starts."""

    run: CollectionRun
    kind: str
    config: dict[str, Any]
    headers: dict[str, str]
    timeout: float
    max_attempts: int
    setup_error: str = ""


def _credential_headers(source: EvidenceSource) -> dict[str, str]:
    """Headers carrying the source's credential, read from the environment now; never stored or logged."""
    if source.auth == EvidenceSource.Auth.NONE:
        return {}
    if not secret_env_allowed(source.secret_env):
        raise ValidationError(
            f"{source.secret_env} is not a collector credential (names start {SECRET_ENV_PREFIX})."
        )
    secret = os.environ.get(source.secret_env)
    if not secret:
        raise ValidationError(
            f"The environment variable {source.secret_env} is not set where collection runs."
        )
    if source.auth == EvidenceSource.Auth.BEARER:
        return {"Authorization": f"Bearer {secret}"}
    if ":" not in secret:
        raise ValidationError(f"The environment variable {source.secret_env} must hold user:password.")
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def _job(run: CollectionRun, max_attempts: int) -> Job:
    source = run.source
    job = Job(
        run=run,
        kind=source.kind,
        config=source.config,
        headers={},
        timeout=float(source.timeout_seconds),
        max_attempts=max_attempts,
    )
    try:
        job.config = collector_for(source.kind).validate(source.config)
        job.headers = _credential_headers(source)
    except ValidationError as exc:
        job.setup_error = "; ".join(exc.messages)
    return job


def _redact(result: Result, headers: dict[str, str]) -> None:
    """A server that echoes request headers must not get the credential stored in the run's excerpt."""
    for value in headers.values():
        for secret in {value, value.partition(" ")[2]} - {""}:
            result.excerpt = result.excerpt.replace(secret, "***")
            result.error = result.error.replace(secret, "***")
            # The excerpt was cut to its length before this: it may end in the first part of the credential.
            for length in range(len(secret) - 1, 3, -1):
                if result.excerpt.endswith(secret[:length]):
                    result.excerpt = result.excerpt[:-length] + "***"
                    break


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: between half and all of base·2^(attempt−1) before the next attempt."""
    ceiling = settings.CAIRN_COLLECTOR_BACKOFF_MS / 1000 * 2 ** (attempt - 1)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 — jitter, not security


def job_execute(job: Job) -> tuple[Result, int, int]:
    """Run one job with retries on transient errors. Answers the result, attempts made and duration (ms)."""
    started = time.monotonic()
    if job.setup_error:
        return Result(status=Status.ERROR, error=job.setup_error), 0, 0
    collector = collector_for(job.kind)
    attempt = 0
    while True:
        attempt += 1
        try:
            result = collector.collect(job.config, headers=job.headers, timeout=job.timeout)
        except http.HttpError as exc:
            result = Result.failure(exc)
        except Exception as exc:  # a collector bug must not take the round down with it
            logger.exception("collector %s failed on run %s", job.kind, job.run.pk)
            result = Result(status=Status.ERROR, error=f"internal error: {type(exc).__name__}")
        if not result.transient or attempt >= job.max_attempts:
            if result.transient and result.fails_when_exhausted:
                result.status, result.transient = Status.FAILED, False
            _redact(result, job.headers)
            return result, attempt, int((time.monotonic() - started) * 1000)
        time.sleep(backoff_seconds(attempt))


def run_finish(*, run: CollectionRun, result: Result, duration_ms: int, attempts: int | None = None) -> bool:
    """Record a run's result once. Answers False when the run was already finished (a duplicate execution)."""
    source = run.source
    recorded = result.status in (Status.SUCCESS, Status.FAILED)
    with transaction.atomic():
        finished = CollectionRun.objects.filter(pk=run.pk, status=CollectionRun.Status.RUNNING).update(
            status=result.status,
            finished_at=timezone.now(),
            attempts=attempts if attempts is not None else run.attempts,
            duration_ms=duration_ms,
            passed=result.passed,
            value=result.value,
            error=result.error[:5000],
            excerpt=result.excerpt,
        )
        if finished != 1:
            return False
        observed = result.observed_at or timezone.now()
        # Only a completed run speaks for the requirement; errors and timeouts leave the evidence as it was.
        if recorded and result.value is not None and source.metric_id is not None:
            Measurement.objects.create(
                metric_id=source.metric_id,
                value=result.value,
                observed_at=observed,
                source=Measurement.Source.API
                if run.trigger == CollectionRun.Trigger.PUSH
                else Measurement.Source.COLLECTOR,
                run=run,
            )
        if recorded and result.passed is not None:
            items = list(source.items.filter(archived_at__isnull=True))
            Evidence.objects.bulk_create(
                Evidence(
                    item=item,
                    kind=Evidence.Kind.CHECK,
                    observed_at=observed,
                    valid_until=evidence_valid_until(item, observed, source.evidence_valid_days),
                    passed=result.passed,
                    run=run,
                    note=result.error[:500],
                )
                for item in items
            )
    logger.info("collection run %s of source %s: %s", run.pk, source.pk, result.status)
    return True


def jobs_execute(jobs: list[Job]) -> list[CollectionRun]:
    """Fetch every job concurrently, each with its own timeout, then record the results one by one."""
    if not jobs:
        return []
    workers = min(settings.CAIRN_COLLECTOR_CONCURRENCY, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
        outcomes = list(pool.map(job_execute, jobs))
    for job, (result, attempts, duration_ms) in zip(jobs, outcomes, strict=True):
        run_finish(run=job.run, result=result, duration_ms=duration_ms, attempts=attempts)
    runs = CollectionRun.objects.filter(pk__in=[job.run.pk for job in jobs]).select_related("source")
    by_pk = {run.pk: run for run in runs}
    return [by_pk[job.run.pk] for job in jobs]


def _next_slot(slot: datetime, interval: int, now: datetime) -> datetime:
    """The first slot after `now` on the source's grid; a worker that was down skips to the present."""
    step = timedelta(seconds=interval)
    missed = max(0, int((now - slot) / step))
    return slot + step * (missed + 1)


def runs_claim_due(*, now: datetime | None = None) -> list[CollectionRun]:
    """Claim the scheduled slot of every due source, and take over runs abandoned by a dead worker."""
    now = now or timezone.now()
    claimed: list[CollectionRun] = []
    for source in EvidenceSource.objects.due(now).only("pk", "next_run_at", "interval_seconds"):
        slot = source.next_run_at
        assert slot is not None
        moved = EvidenceSource.objects.filter(pk=source.pk, next_run_at=slot).update(
            next_run_at=_next_slot(slot, source.interval_seconds, now)
        )
        if moved != 1:
            continue  # another tick claimed this slot
        try:
            with transaction.atomic():
                claimed.append(CollectionRun.objects.create(source_id=source.pk, slot=slot, started_at=now))
        except IntegrityError:
            continue  # this slot already has its run
    claimed.extend(runs_reclaim_abandoned(now=now))
    return claimed


def run_deadline(source: EvidenceSource, max_attempts: int) -> timedelta:
    backoff = settings.CAIRN_COLLECTOR_BACKOFF_MS / 1000 * (2**max_attempts)
    return timedelta(seconds=float(source.timeout_seconds) * max_attempts + backoff) + abandoned_after()


def runs_reclaim_abandoned(*, now: datetime) -> list[CollectionRun]:
    """Scheduled runs still `running` long after they could have finished: their worker died. Claim them again
    (a conditional update on their start time) so the slot still gets exactly one result."""
    max_attempts = settings.CAIRN_COLLECTOR_MAX_ATTEMPTS
    reclaimed = []
    candidates = CollectionRun.objects.filter(
        status=CollectionRun.Status.RUNNING, started_at__lt=now - abandoned_after()
    ).select_related("source")
    for run in candidates:
        if run.started_at > now - run_deadline(run.source, max_attempts):
            continue
        if run.slot is None:  # "Run now" has no slot to fill again: say what happened
            abandoned = Result(status=Status.ERROR, error="abandoned: the process running it stopped")
            run_finish(run=run, result=abandoned, duration_ms=0)
            continue
        if CollectionRun.objects.filter(pk=run.pk, status=run.status, started_at=run.started_at).update(
            started_at=now
        ):
            run.started_at = now
            reclaimed.append(run)
    return reclaimed


def collect_due(*, now: datetime | None = None, task_id: str = "") -> list[CollectionRun]:
    """One scheduled round: every due source, concurrently. Celery beat calls this every tick."""
    runs = runs_claim_due(now=now)
    if task_id and runs:
        CollectionRun.objects.filter(pk__in=[run.pk for run in runs]).update(celery_task_id=task_id)
    runs = list(CollectionRun.objects.filter(pk__in=[run.pk for run in runs]).select_related("source"))
    return jobs_execute([_job(run, settings.CAIRN_COLLECTOR_MAX_ATTEMPTS) for run in runs])


def sources_collect_now(
    *, sources: Iterable[EvidenceSource], by: AnyUser | None, max_attempts: int | None = None
) -> list[CollectionRun]:
    """Run the given pull sources now, outside their schedule ("Run now", `collect_evidence`)."""
    sources = list(sources)
    for source in sources:
        _require_manager(by, source.program_id)
        if source.kind == EvidenceSource.Kind.PUSH:
            raise ValidationError({"kind": f"{source.name} is a push source: systems post to it."})
    now = timezone.now()
    user = by if by is not None and by.is_authenticated else None
    runs = [
        CollectionRun.objects.create(
            source=source, trigger=CollectionRun.Trigger.MANUAL, started_at=now, triggered_by=user
        )
        for source in sources
    ]
    for run, source in zip(runs, sources, strict=True):
        run.source = source
    attempts = max_attempts or settings.CAIRN_COLLECTOR_MAX_ATTEMPTS
    return jobs_execute([_job(run, attempts) for run in runs])


def program_sources(program: Program | None = None) -> list[EvidenceSource]:
    sources = EvidenceSource.objects.filter(enabled=True, archived_at__isnull=True).exclude(
        kind=EvidenceSource.Kind.PUSH
    )
    if program is not None:
        sources = sources.filter(program=program)
    return list(sources.select_related("program").order_by("program_id", "pk"))
