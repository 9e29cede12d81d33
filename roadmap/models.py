"""The roadmap: a program, its phases, the section tree of its strategy document and the checklist items.

Models guard the invariants of one row (a reason for blocked items, a phase window that ends after it starts);
workflows that touch several rows live in `roadmap.services`, read paths and roll-ups in `roadmap.selectors`.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from cairn.lib.dates import add_months

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser


class Role(models.TextChoices):
    MANAGER = "manager", "Program manager"
    CONTRIBUTOR = "contributor", "Contributor"
    EXECUTIVE = "executive", "Executive"
    AUDITOR = "auditor", "Auditor"


def default_levels() -> list[dict[str, object]]:
    return [
        {"level": 1, "name": "Foundation"},
        {"level": 2, "name": "Enhancement"},
        {"level": 3, "name": "Excellence"},
    ]


class ProgramQuerySet(models.QuerySet["Program"]):
    def for_user(self, user: AnyUser) -> ProgramQuerySet:
        """Programs the user may see: superusers see all, everyone else those they are a member of."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user)

    def managed_by(self, user: AnyUser) -> ProgramQuerySet:
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user, memberships__role=Role.MANAGER)


class Program(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold"
        CLOSED = "closed", "Closed"

    key = models.SlugField(
        max_length=64, unique=True, help_text="Short stable identifier used in URLs and the CLI."
    )
    title = models.CharField(max_length=200)
    subtitle = models.CharField(max_length=200, blank=True)
    summary = models.TextField(blank=True)
    start_date = models.DateField(
        null=True, blank=True, help_text="Month 1 of the roadmap; phase windows are counted from it."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    levels = models.JSONField(default=default_levels, help_text="Ordered maturity levels: [{level, name}].")
    area_depth = models.PositiveSmallIntegerField(
        default=2, help_text="Heading depth whose sections are scored as capability areas."
    )
    level_rules = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'Maturity levels for imported items by section: [{"pattern": "Cloud Capabilities > *", "level": 2}]. '
            "The first pattern matching an item's section path wins; without a match, items in Phase N get level N."
        ),
    )
    in_progress_credit = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.50"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Share of an item's weight credited while it is in progress (0 to 1).",
    )
    rag_red_below = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.40"),
        help_text="Red when progress / expected is below this.",
    )
    rag_amber_below = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        help_text="Amber when progress / expected is below this.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()
    objects = ProgramQuerySet.as_manager()

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(in_progress_credit__gte=0) & Q(in_progress_credit__lte=1),
                name="program_in_progress_credit_0_1",
            ),
            models.CheckConstraint(
                condition=Q(rag_red_below__lte=models.F("rag_amber_below")),
                name="program_rag_red_below_amber",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        errors = {}
        if not 0 <= self.in_progress_credit <= 1:
            errors["in_progress_credit"] = "Must be between 0 and 1."
        if self.rag_red_below > self.rag_amber_below:
            errors["rag_red_below"] = "Must not exceed the amber threshold."
        problem = levels_problem(self.levels)
        if problem:
            errors["levels"] = problem
        problem = level_rules_problem(self.level_rules)
        if problem:
            errors["level_rules"] = problem
        if errors:
            raise ValidationError(errors)

    def level_name(self, level: int | None) -> str:
        for entry in self.levels or []:
            if entry.get("level") == level:
                return str(entry.get("name", ""))
        return ""


def levels_problem(levels: object) -> str:
    """Why `levels` is not an ordered list of {level, name} starting at 1, or '' when it is."""
    if not isinstance(levels, list) or not levels:
        return "Give at least one level as a list of {level, name}."
    for position, entry in enumerate(levels, start=1):
        if (
            not isinstance(entry, dict)
            or entry.get("level") != position
            or not str(entry.get("name", "")).strip()
        ):
            return f"Entry {position} must be {{'level': {position}, 'name': '...'}}."
    return ""


def level_rules_problem(rules: object) -> str:
    """Why `rules` is not a list of {pattern, level}, or '' when it is."""
    if not isinstance(rules, list):
        return 'Give a list of {"pattern": "...", "level": N}.'
    for position, rule in enumerate(rules, start=1):
        if (
            not isinstance(rule, dict)
            or not isinstance(rule.get("pattern"), str)
            or not rule["pattern"].strip()
            or not isinstance(rule.get("level"), int)
            or isinstance(rule.get("level"), bool)
            or rule["level"] < 1
        ):
            return f'Rule {position} must be {{"pattern": "<section path pattern>", "level": <1 or more>}}.'
    return ""


class Phase(models.Model):
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="phases")
    order = models.PositiveSmallIntegerField(default=1)
    code = models.CharField(max_length=16, help_text="Short code such as P1.")
    name = models.CharField(max_length=200)
    start_month = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    end_month = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    objectives = models.TextField(blank=True)
    target_level = models.PositiveSmallIntegerField(null=True, blank=True)
    actual_start = models.DateField(null=True, blank=True)
    actual_end = models.DateField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["program", "order"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="phase_unique_code_per_program"),
            models.CheckConstraint(
                condition=Q(start_month__isnull=True)
                | Q(end_month__isnull=True)
                | Q(end_month__gte=models.F("start_month")),
                name="phase_end_not_before_start",
            ),
            models.CheckConstraint(
                condition=Q(start_month__isnull=True, end_month__isnull=True)
                | Q(start_month__isnull=False, end_month__isnull=False),
                name="phase_window_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.name}"

    def clean(self) -> None:
        if (self.start_month is None) != (self.end_month is None):
            raise ValidationError("Give both the start and the end month of the window, or neither.")
        if self.start_month and self.end_month and self.end_month < self.start_month:
            raise ValidationError({"end_month": "The window cannot end before it starts."})

    @property
    def window_label(self) -> str:
        if self.start_month is None:
            return ""
        return f"Months {self.start_month}–{self.end_month}"

    @property
    def planned_start(self) -> date | None:
        if self.start_month is None or self.program.start_date is None:
            return None
        return add_months(self.program.start_date, self.start_month - 1)

    @property
    def planned_end(self) -> date | None:
        """The last day of the window (month `end_month` of the roadmap, inclusive)."""
        if self.end_month is None or self.program.start_date is None:
            return None
        return add_months(self.program.start_date, self.end_month) - timedelta(days=1)


class Section(models.Model):
    """A heading of the strategy document; the tree mirrors the document's outline."""

    class Style(models.TextChoices):
        # How the section is written in the markdown document, so an export reads like the original.
        HEADING = "heading", "Heading"
        BOLD_GROUP = "bold", "Bold group label"
        NUMBERED_GROUP = "numbered", "Numbered group"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="sections")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    phase = models.ForeignKey(
        Phase, null=True, blank=True, on_delete=models.SET_NULL, related_name="sections"
    )
    title = models.CharField(max_length=300)
    order = models.PositiveIntegerField(default=0)
    is_capability_area = models.BooleanField(default=False, help_text="Scored as a capability area.")
    default_level = models.PositiveSmallIntegerField(null=True, blank=True)
    weight = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("1"))
    style = models.CharField(max_length=16, choices=Style.choices, default=Style.HEADING)
    source_line = models.PositiveIntegerField(
        null=True, blank=True, help_text="Line of the imported document; empty for sections added by hand."
    )
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["program", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "parent", "title"], name="section_unique_title_per_parent"
            ),
            models.UniqueConstraint(
                fields=["program", "title"],
                condition=Q(parent__isnull=True),
                name="section_unique_root_title",
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="section_weight_positive"),
        ]
        indexes = [models.Index(fields=["program", "parent"], name="section_tree_idx")]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if self.parent_id and self.parent and self.parent.program_id != self.program_id:
            raise ValidationError({"parent": "The parent section belongs to another program."})
        if self.phase_id and self.phase and self.phase.program_id != self.program_id:
            raise ValidationError({"phase": "The phase belongs to another program."})


class ChecklistItemQuerySet(models.QuerySet["ChecklistItem"]):
    def for_user(self, user: AnyUser) -> ChecklistItemQuerySet:
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(program__memberships__user=user)

    def active(self) -> ChecklistItemQuerySet:
        return self.filter(archived_at__isnull=True)

    def overdue(self, today: date | None = None) -> ChecklistItemQuerySet:
        today = today or timezone.localdate()
        return (
            self.active()
            .filter(due_date__lt=today)
            .exclude(status__in=[ChecklistItem.Status.DONE, ChecklistItem.Status.NOT_APPLICABLE])
        )


class ChecklistItem(models.Model):
    class Kind(models.TextChoices):
        TASK = "task", "Task"
        PRACTICE = "practice", "Practice"

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        IN_PROGRESS = "in_progress", "In progress"
        BLOCKED = "blocked", "Blocked"
        DONE = "done", "Done"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    STATUSES_NEEDING_REASON = frozenset({Status.BLOCKED, Status.NOT_APPLICABLE})

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="items")
    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="items")
    phase = models.ForeignKey(Phase, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    key = models.CharField(
        max_length=200,
        blank=True,
        help_text="Stable identifier, unique within the program; derived from section and title when left empty.",
    )
    ref = models.CharField(max_length=64, blank=True, help_text="Reference shown to people, e.g. P1.2.3.")
    # Requirements catalogues (OWASP ASVS) state a requirement in one sentence of up to ~600 characters.
    title = models.CharField(max_length=1000)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TASK)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NOT_STARTED)
    status_reason = models.TextField(blank=True, help_text="Required when blocked or not applicable.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_items"
    )
    due_date = models.DateField(null=True, blank=True)
    weight = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.01"))]
    )
    level = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: scored but does not gate."
    )
    blocking = models.BooleanField(default=True)
    attested_at = models.DateTimeField(null=True, blank=True)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    valid_for_days = models.PositiveIntegerField(null=True, blank=True, help_text="Evidence validity V.")
    grace_days = models.PositiveIntegerField(null=True, blank=True, help_text="Grace G after validity.")
    order = models.PositiveIntegerField(default=0)
    source_line = models.PositiveIntegerField(null=True, blank=True)
    evidence_url = models.URLField(
        max_length=1000, blank=True, help_text="Where the evidence for this item lives."
    )
    notes = models.TextField(blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Raised by every change: an edit based on an older version would silently undo someone else's, so the
    # services refuse it (optimistic locking; the API's ETag and If-Match carry it).
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at", "version"])
    objects = ChecklistItemQuerySet.as_manager()

    class Meta:
        ordering = ["program", "section__order", "order", "id"]
        # Spreadsheet import and export are their own rights, not implied by admin access.
        permissions = [
            ("import_checklistitem", "Can import checklist items from spreadsheets"),
            ("export_checklistitem", "Can export checklist items to spreadsheets"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["program", "key"], name="item_unique_key_per_program"),
            models.CheckConstraint(
                condition=~Q(status__in=["blocked", "not_applicable"]) | ~Q(status_reason=""),
                name="item_reason_when_blocked_or_na",
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="item_weight_positive"),
        ]
        indexes = [
            # The admin's status, owner, due-date and level filters and the roll-ups' group-by.
            models.Index(fields=["program", "status"], name="item_program_status_idx"),
            models.Index(fields=["program", "due_date"], name="item_program_due_idx"),
            models.Index(fields=["owner", "status"], name="item_owner_status_idx"),
            models.Index(fields=["phase", "status"], name="item_phase_status_idx"),
            models.Index(fields=["program", "level"], name="item_program_level_idx"),
            # The API's and the admin's item lists: one program's items in document order, a page at a time.
            models.Index(fields=["program", "order", "id"], name="item_program_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}".strip()

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.status in self.STATUSES_NEEDING_REASON and not self.status_reason.strip():
            errors["status_reason"] = f"Say why the item is {self.get_status_display().lower()}."
        if self.section_id and self.program_id and self.section.program_id != self.program_id:
            errors["section"] = "The section belongs to another program."
        if self.phase_id and self.program_id and self.phase.program_id != self.program_id:
            errors["phase"] = "The phase belongs to another program."
        if errors:
            raise ValidationError(errors)

    @property
    def is_overdue(self) -> bool:
        return item_is_overdue(due_date=self.due_date, status=self.status, today=timezone.localdate())

    def set_status(self, status: str, *, by: AnyUser | None, reason: str = "") -> None:
        """Move the item to `status`, keeping completion and attestation consistent with it.

        A reason is required for blocked and not-applicable; it is cleared when the item leaves those states.
        The caller saves the item (services do, so history records who made the change).
        """
        if status not in self.Status.values:
            raise ValidationError(
                {"status": f"Unknown status {status!r}; expected one of {', '.join(self.Status.values)}."}
            )
        reason = (reason or "").strip()
        if status in self.STATUSES_NEEDING_REASON:
            if not reason:
                raise ValidationError({"status_reason": f"A reason is required to mark an item {status}."})
            self.status_reason = reason
        else:
            self.status_reason = reason
        if status == self.Status.DONE and self.status != self.Status.DONE:
            now = timezone.now()
            self.completed_at = now
            self.attested_at = now
            self.attested_by = by if by is not None and by.is_authenticated else None
        elif status != self.Status.DONE:
            self.completed_at = None
        self.status = status


def item_is_overdue(*, due_date: date | None, status: str, today: date) -> bool:
    """Past due and neither done nor not applicable: `ChecklistItem.is_overdue`, also for rows read without
    a model instance (the API's item list reads `.values()`)."""
    return (
        due_date is not None
        and due_date < today
        and status not in (ChecklistItem.Status.DONE, ChecklistItem.Status.NOT_APPLICABLE)
    )


class ProgramMembershipQuerySet(models.QuerySet["ProgramMembership"]):
    def for_user(self, user: AnyUser) -> ProgramMembershipQuerySet:
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(program__in=Program.objects.for_user(user))


class ProgramMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()
    objects = ProgramMembershipQuerySet.as_manager()

    class Meta:
        ordering = ["program", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "program"], name="membership_one_role_per_program"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.program}"


class ImportRunQuerySet(models.QuerySet["ImportRun"]):
    def for_user(self, user: AnyUser) -> ImportRunQuerySet:
        return self.filter(program__in=Program.objects.for_user(user))


class ImportRun(models.Model):
    """One spreadsheet import: who, when, what file, what it did. Large ones run in Celery and report progress."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        REJECTED = "rejected", "Rejected (invalid rows, nothing written)"
        FAILED = "failed", "Failed"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="import_runs")
    source_name = models.CharField(max_length=300, blank=True)
    file_format = models.CharField(max_length=8)
    mapping = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64)
    # The upload waits here for a worker on any machine; it is cleared once the run has finished.
    source = models.BinaryField(null=True, blank=True, editable=False)
    mapping_text = models.TextField(blank=True, editable=False)
    dry_run = models.BooleanField(default=False)
    commit_valid = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    rows = models.PositiveIntegerField(default=0)
    progress = models.PositiveIntegerField(default=0, help_text="Rows processed so far.")
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ImportRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["program", "-created_at"], name="importrun_program_recent_idx")]

    def __str__(self) -> str:
        return f"{self.source_name or 'import'} into {self.program.key} ({self.get_status_display()})"
