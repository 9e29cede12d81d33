"""The program manager's workbench. Every write goes through `roadmap.services`; every list is scoped."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from roadmap import access, selectors, services
from roadmap.admin_checklists import ChecklistImportExportMixin
from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership, Section
from roadmap.selectors import Progress

RAG_COLOURS = {"grey": "#6b7280", "blue": "#1d4ed8", "green": "#15803d", "amber": "#b45309", "red": "#b91c1c"}


def progress_bar(progress: Progress | None) -> str:
    if progress is None:
        return "—"
    percent = progress.percent
    if percent is None:
        return progress.label
    return format_html(
        '<span class="cairn-progress" title="{}"><meter min="0" max="100" value="{}" aria-label="{}"></meter> {}</span>',
        progress.label,
        percent,
        progress.label,
        progress.label,
    )


def rag_badge(rag: str, reasons: list[str]) -> str:
    return format_html(
        '<span class="cairn-rag" style="background:{};color:#fff;padding:1px 6px;border-radius:3px" title="{}">{}</span>',
        RAG_COLOURS.get(rag, "#6b7280"),
        "; ".join(reasons),
        rag.upper(),
    )


class RollupChangeList(ChangeList):
    """Lets the admin attach roll-ups to the rows of one page in a fixed number of queries."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.model_admin.attach_rollups(list(self.result_list))


class ScopedHistoryAdmin(SimpleHistoryAdmin):
    """History pages only for objects the user can see.

    django-simple-history falls back to the latest historical record when the object is outside
    `get_queryset`, which would show other programs' history; here such an object does not exist.
    """

    def _require_visible(self, request: HttpRequest, object_id: str) -> None:
        # get_object() answers None for a malformed id as well as for one outside the user's scope.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such object.")

    def _keeps_versions(self) -> bool:
        return hasattr(self.model._meta, "simple_history_manager_attribute")

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        self._require_visible(request, object_id)
        if not self._keeps_versions():  # a model without HistoricalRecords: the admin's own change log
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self._require_visible(request, object_id)
        if not self._keeps_versions():
            raise Http404("This object keeps no versions.")
        # django-simple-history saves a posted (reverted) version without asking whether the user may change it.
        if request.method == "POST" and not self.has_change_permission(
            request, self.get_object(request, unquote(object_id))
        ):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class ProgramScopedAdmin(ScopedHistoryAdmin):
    """Base for models that belong to a program: rows of other programs do not exist for the user."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(program__in=Program.objects.for_user(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and Program.objects.managed_by(request.user).exists()

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return access.can_manage_program(request.user, obj.program_id)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Nothing a program owns is deleted from the admin: history and evidence must survive.
        return False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RollupChangeList

    def attach_rollups(self, objects: list[Any]) -> None:
        """Override to decorate the page's rows with computed values."""

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        managed = Program.objects.managed_by(request.user)
        scoped = {
            "program": managed,
            "phase": Phase.objects.filter(program__in=managed).select_related("program"),
            "section": Section.objects.filter(program__in=managed).select_related("program"),
            "parent": Section.objects.filter(program__in=managed).select_related("program"),
            "owner": get_user_model().objects.filter(memberships__program__in=managed).distinct(),
            "user": get_user_model().objects.filter(is_active=True),
        }
        if db_field.name in scoped:
            kwargs["queryset"] = scoped[db_field.name]
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0
    fields = ["order", "code", "name", "start_month", "end_month", "target_level", "objectives"]
    can_delete = False

    def has_change_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return super().has_change_permission(request, obj) and (
            obj is None or access.can_manage_program(request.user, obj.pk)
        )

    def has_add_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return super().has_add_permission(request, obj) and (
            obj is None or access.can_manage_program(request.user, obj.pk)
        )


class MembershipInline(admin.TabularInline):
    model = ProgramMembership
    extra = 0
    fields = ["user", "role"]
    autocomplete_fields = ["user"]

    def has_change_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return super().has_change_permission(request, obj) and (
            obj is None or access.can_manage_program(request.user, obj.pk)
        )

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(Program)
class ProgramAdmin(ScopedHistoryAdmin):
    list_display = ["title", "key", "status", "start_date", "progress_column"]
    list_filter = ["status"]
    search_fields = ["key", "title", "summary"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["key", "title", "subtitle", "summary", "status", "start_date"]}),
        ("Maturity and progress settings", {
            "fields": [
                "levels", "level_rules", "area_depth", "in_progress_credit", "rag_red_below", "rag_amber_below",
            ],
            "classes": ["collapse"],
        }),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]  # fmt: skip

    def get_inlines(self, request: HttpRequest, obj: Program | None) -> list[type]:
        return [PhaseInline, MembershipInline] if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj: Program | None = None) -> list[str]:
        # The key is the program's identity in URLs, the API and re-imports.
        return [*self.readonly_fields, "key"] if obj is not None else list(self.readonly_fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Program]:
        return (
            super().get_queryset(request).filter(pk__in=Program.objects.for_user(request.user).values("pk"))
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RollupChangeList

    def attach_rollups(self, objects: list[Program]) -> None:
        progress = selectors.program_progress(objects)
        for program in objects:
            program.progress = progress[program.pk]

    @admin.display(description="Progress")
    def progress_column(self, program: Program) -> str:
        return progress_bar(getattr(program, "progress", None))

    def has_change_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or access.can_manage_program(request.user, obj.pk))

    def has_delete_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Program, form: forms.ModelForm, change: bool) -> None:
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data}
            original = Program.objects.get(pk=obj.pk)
            saved = services.program_update(program=original, by=request.user, data=data)
        else:
            fields = {
                name: value for name, value in form.cleaned_data.items() if name not in ("key", "title")
            }
            saved = services.program_create(
                by=request.user, key=form.cleaned_data["key"], title=form.cleaned_data["title"], **fields
            )
        obj.__dict__.update(saved.__dict__)


@admin.register(Phase)
class PhaseAdmin(ProgramScopedAdmin):
    list_display = [
        "__str__", "program", "window", "planned_start", "planned_end", "progress_column", "rag_column",
        "forecast_column",
    ]  # fmt: skip
    list_filter = [("program", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["program"]
    search_fields = ["code", "name", "objectives"]
    ordering = ["program", "order"]
    readonly_fields = ["planned_start", "planned_end"]

    def attach_rollups(self, objects: list[Phase]) -> None:
        health = selectors.phase_health(objects)
        for phase in objects:
            phase.health = health[phase.pk]

    @admin.display(description="Window")
    def window(self, phase: Phase) -> str:
        return phase.window_label or "—"

    @admin.display(description="Progress")
    def progress_column(self, phase: Phase) -> str:
        health = getattr(phase, "health", None)
        return progress_bar(health.progress if health else None)

    @admin.display(description="RAG")
    def rag_column(self, phase: Phase) -> str:
        health = getattr(phase, "health", None)
        return rag_badge(health.rag, health.reasons) if health else "—"

    @admin.display(description="Forecast end")
    def forecast_column(self, phase: Phase) -> str:
        health = getattr(phase, "health", None)
        return health.forecast_end.isoformat() if health and health.forecast_end else "—"

    def save_model(self, request: HttpRequest, obj: Phase, form: forms.ModelForm, change: bool) -> None:
        services.phase_save(phase=obj, by=request.user)


def with_owner_choices_loaded_once(base: type[forms.ModelForm]) -> type[forms.ModelForm]:
    """Each row of a changelist or inline renders an owner select: load its choices once per page, not per row."""
    owner_choices: list[tuple[Any, str]] = []

    class OwnerChoicesOnce(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if "owner" in self.fields:
                if not owner_choices:
                    owner_choices.extend(self.fields["owner"].choices)
                self.fields["owner"].choices = owner_choices

    return OwnerChoicesOnce


def program_members(program_id: int) -> QuerySet:
    return get_user_model().objects.filter(memberships__program_id=program_id).distinct().order_by("username")


class VersionedItemForm(forms.ModelForm):
    """An item form that remembers which version of the item it showed.

    Without it a form posted after someone else's change would put back every value it showed (the admin
    compares what is posted with the item as it is now), silently undoing that change.
    """

    # Not `version`: a non-editable model field cannot be a model form field.
    based_on_version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["based_on_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        shown = cleaned.get("based_on_version")
        if self.instance.pk is not None and shown is not None and shown != self.instance.version:
            raise ValidationError(edit_conflict_message(self.instance, shown))
        return cleaned

    def has_changed(self) -> bool:
        return bool(set(self.changed_data) - {"based_on_version"})


def edit_conflict_message(current: ChecklistItem, shown: int) -> str:
    latest = current.history.select_related("history_user").first()
    who = f" by {latest.history_user} on {latest.history_date:%Y-%m-%d %H:%M}" if latest else ""
    return (
        f"{current.ref or current.key} was changed{who} after you opened it (you edited version {shown}; it is "
        f"now version {current.version}). Nothing was saved: open it again to see that change, then apply yours."
    )


class EditConflictRedirects:
    """A conflict found while saving (another edit landed between the form check and the save) is reported
    like the form check's: a message, nothing saved, back to the page."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]
        except services.EditConflict as conflict:
            return self._conflict_reported(request, conflict)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc]
        except services.EditConflict as conflict:
            return self._conflict_reported(request, conflict)

    def _conflict_reported(self, request: HttpRequest, conflict: services.EditConflict) -> HttpResponse:
        messages.error(request, edit_conflict_message(conflict.current, conflict.expected_version))
        return HttpResponseRedirect(request.get_full_path())


def item_update_from_form(request: HttpRequest, form: forms.ModelForm) -> ChecklistItem:
    """Save what an item form changed through the item service (history, completion, reasons)."""
    original = ChecklistItem.objects.select_related("program").get(pk=form.instance.pk)
    data = {name: form.cleaned_data[name] for name in form.changed_data if name != "based_on_version"}
    return services.checklist_item_update(
        item=original, by=request.user, data=data, expected_version=form.cleaned_data.get("based_on_version")
    )


class SectionItemInline(admin.TabularInline):
    """The section's checklist items, editable in place; each change goes through the item service."""

    model = ChecklistItem
    form = VersionedItemForm
    fields = ["ref", "title", "status", "status_reason", "owner", "due_date", "based_on_version"]
    readonly_fields = ["ref", "title"]
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ["order", "id"]
    verbose_name_plural = "checklist items"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChecklistItem]:
        return super().get_queryset(request).filter(archived_at__isnull=True).select_related("owner")

    def has_add_permission(self, request: HttpRequest, obj: Section | None = None) -> bool:
        return False  # new items come from the item form, an import or the strategy

    def has_change_permission(self, request: HttpRequest, obj: Section | None = None) -> bool:
        if obj is None:
            return super().has_change_permission(request, obj)
        return access.can_manage_program(request.user, obj.program_id)

    def get_formset(self, request: HttpRequest, obj: Section | None = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None and "owner" in formset.form.base_fields:
            # Owners come from the section's own program; anyone else is "not a valid choice" on the form.
            # (Subclassing a ModelForm rebuilds its fields, so the queryset is set on the subclass.)
            formset.form = with_owner_choices_loaded_once(formset.form)
            formset.form.base_fields["owner"].queryset = program_members(obj.program_id)
        return formset


@admin.register(Section)
class SectionAdmin(EditConflictRedirects, ProgramScopedAdmin):
    list_display = ["outline_title", "program", "phase", "is_capability_area", "progress_column"]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "is_capability_area"]
    list_select_related = ["program", "phase"]
    search_fields = ["title"]
    ordering = ["program", "order", "id"]
    readonly_fields = ["source_line"]

    def attach_rollups(self, objects: list[Section]) -> None:
        progress = selectors.section_progress(objects)
        paths: dict[int, str] = {}
        for program_id in {s.program_id for s in objects}:
            paths.update(selectors.section_paths(program_id))
        for section in objects:
            section.progress = progress[section.pk]
            section.path = paths.get(section.pk, section.title)

    @admin.display(description="Section", ordering="order")
    def outline_title(self, section: Section) -> str:
        path = getattr(section, "path", section.title)
        depth = path.count(" > ")
        return format_html(
            '<span style="padding-left:{}em" title="{}">{}</span>', depth * 1.5, path, section.title
        )

    @admin.display(description="Progress")
    def progress_column(self, section: Section) -> str:
        return progress_bar(getattr(section, "progress", None))

    def get_inlines(self, request: HttpRequest, obj: Section | None) -> list[type]:
        return [SectionItemInline] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Section, form: forms.ModelForm, change: bool) -> None:
        services.section_save(section=obj, by=request.user)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        """Inline item edits take the same path as the item form: one service call per changed item."""
        # What formset.save() would have recorded, for the admin's change message.
        formset.new_objects, formset.deleted_objects, formset.changed_objects = [], [], []
        for item_form in formset.forms:
            if item_form.instance.pk is None or not item_form.has_changed():
                continue
            saved = item_update_from_form(request, item_form)
            formset.changed_objects.append((saved, item_form.changed_data))


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ChecklistItem]) -> QuerySet[ChecklistItem]:
        overdue = ChecklistItem.objects.overdue(timezone.localdate()).values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=overdue)
        if self.value() == "no":
            return queryset.exclude(pk__in=overdue)
        return queryset


class ArchivedFilter(admin.SimpleListFilter):
    """Archived items (lines removed from the strategy) are hidden unless asked for."""

    title = "archived"
    parameter_name = "archived"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Archived"), ("all", "All")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ChecklistItem]) -> QuerySet[ChecklistItem]:
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(archived_at__isnull=True)


class StatusReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded on every selected item and in its history.",
    )


@admin.register(ChecklistItem)
class ChecklistItemAdmin(EditConflictRedirects, ChecklistImportExportMixin, ProgramScopedAdmin):
    form = VersionedItemForm
    list_display = [
        "ref", "title", "section", "phase", "status", "owner", "due_date", "level", "overdue_flag",
    ]  # fmt: skip
    list_display_links = ["ref", "title"]
    list_editable = ["status", "owner", "due_date"]
    list_filter = [
        ("program", admin.RelatedOnlyFieldListFilter),
        ("phase", admin.RelatedOnlyFieldListFilter),
        ("section", admin.RelatedOnlyFieldListFilter),
        "status",
        ("owner", admin.RelatedOnlyFieldListFilter),
        "level",
        OverdueFilter,
        "kind",
        ArchivedFilter,
    ]
    list_select_related = ["section", "phase", "owner", "program"]
    search_fields = ["key", "ref", "title", "description"]
    ordering = ["program", "order", "id"]
    list_per_page = 100
    # Evidence links are https unless someone writes http:// (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["mark_in_progress", "mark_done", "mark_blocked", "mark_not_applicable"]
    readonly_fields = [
        "completed_at",
        "attested_at",
        "attested_by",
        "archived_at",
        "source_line",
        "created_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "program",
                    "section",
                    "phase",
                    "key",
                    "ref",
                    "title",
                    "description",
                    "kind",
                    "based_on_version",
                ]
            },
        ),
        (
            "Progress",
            {
                "fields": [
                    "status",
                    "status_reason",
                    "owner",
                    "due_date",
                    "completed_at",
                    "evidence_url",
                    "notes",
                ]
            },
        ),
        ("Scoring", {"fields": ["weight", "level", "blocking", "valid_for_days", "grace_days"]}),
        ("Record", {"fields": ["attested_at", "attested_by", "archived_at", "source_line", "created_at"]}),
    ]

    def has_change_permission(self, request: HttpRequest, obj: ChecklistItem | None = None) -> bool:
        allowed = admin.ModelAdmin.has_change_permission(self, request, obj)
        if obj is None or not allowed:
            return allowed
        return access.can_change_item(request.user, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: ChecklistItem | None = None) -> list[str]:
        readonly = list(self.readonly_fields)
        if obj is not None:
            readonly.append("program")
            changeable = access.item_fields_changeable(request.user, obj)
            if changeable is not None:
                every_field = [f for _, options in self.fieldsets for f in options["fields"]]
                readonly += [
                    f
                    for f in every_field
                    if f not in changeable and f not in readonly and f != "based_on_version"
                ]
        return readonly

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        if not Program.objects.managed_by(request.user).exists():
            # Only managers edit in the list; contributors update their items on the item page.
            changelist.list_editable = ()
        return changelist

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        kwargs.setdefault("form", VersionedItemForm)
        base = with_owner_choices_loaded_once(super().get_changelist_form(request, **kwargs))
        user = request.user

        class ChangelistItemForm(base):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.instance.pk and self.has_changed():
                    changeable = access.item_fields_changeable(user, self.instance)
                    if changeable is not None and not set(self.changed_data) <= changeable:
                        raise ValidationError(f"You may not change {self.instance.ref or self.instance.key}.")
                return cleaned

        return ChangelistItemForm

    @admin.display(description="Overdue", boolean=True)
    def overdue_flag(self, item: ChecklistItem) -> bool:
        return item.is_overdue

    def save_model(
        self, request: HttpRequest, obj: ChecklistItem, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            saved = item_update_from_form(request, form)
        else:
            fields = dict(form.cleaned_data)
            fields.pop("based_on_version", None)
            fields["phase_id"] = fields.pop("phase").pk if fields.get("phase") else None
            saved = services.checklist_item_create(by=request.user, **fields)
        obj.__dict__.update(saved.__dict__)

    def _apply_status(
        self, request: HttpRequest, queryset: QuerySet[ChecklistItem], status: str, reason: str = ""
    ) -> None:
        try:
            changed = services.checklist_items_set_status(
                item_ids=list(queryset.values_list("pk", flat=True)),
                status=status,
                by=request.user,
                reason=reason,
            )
        except (PermissionDenied, ValidationError) as exc:
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, f"Nothing was changed: {message}", messages.ERROR)
            return
        label = ChecklistItem.Status(status).label.lower()
        self.message_user(request, f"{changed} item(s) marked {label}.", messages.SUCCESS)

    def _apply_status_with_reason(
        self, request: HttpRequest, queryset: QuerySet[ChecklistItem], status: str
    ) -> HttpResponse | None:
        form = StatusReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._apply_status(request, queryset, status, form.cleaned_data["reason"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Mark items {ChecklistItem.Status(status).label.lower()}",
            "items": queryset.select_related("section"),
            "form": form,
            "action": request.POST.get("action"),
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/roadmap/checklistitem/status_reason.html", context)

    @admin.action(description="Mark selected items in progress", permissions=["change"])
    def mark_in_progress(self, request: HttpRequest, queryset: QuerySet[ChecklistItem]) -> None:
        self._apply_status(request, queryset, ChecklistItem.Status.IN_PROGRESS)

    @admin.action(description="Mark selected items done", permissions=["change"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet[ChecklistItem]) -> None:
        self._apply_status(request, queryset, ChecklistItem.Status.DONE)

    @admin.action(description="Mark selected items blocked (asks for a reason)", permissions=["change"])
    def mark_blocked(self, request: HttpRequest, queryset: QuerySet[ChecklistItem]) -> HttpResponse | None:
        return self._apply_status_with_reason(request, queryset, ChecklistItem.Status.BLOCKED)

    @admin.action(
        description="Mark selected items not applicable (asks for a reason)", permissions=["change"]
    )
    def mark_not_applicable(
        self, request: HttpRequest, queryset: QuerySet[ChecklistItem]
    ) -> HttpResponse | None:
        return self._apply_status_with_reason(request, queryset, ChecklistItem.Status.NOT_APPLICABLE)


@admin.register(ProgramMembership)
class ProgramMembershipAdmin(ProgramScopedAdmin):
    list_display = ["user", "program", "role", "created_at"]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "role"]
    list_select_related = ["user", "program"]
    search_fields = ["user__username", "user__email", "program__key"]
    autocomplete_fields = ["user"]

    def has_delete_permission(self, request: HttpRequest, obj: ProgramMembership | None = None) -> bool:
        allowed = admin.ModelAdmin.has_delete_permission(self, request, obj)
        return allowed and (obj is None or access.can_manage_program(request.user, obj.program_id))

    def save_model(
        self, request: HttpRequest, obj: ProgramMembership, form: forms.ModelForm, change: bool
    ) -> None:
        services.membership_save(membership=obj, by=request.user)
