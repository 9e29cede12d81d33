"""Checklist items as spreadsheet rows (django-import-export), in the canonical columns the importer reads.

The admin's export and `export_checklist` both go through `ChecklistItemResource`; its queryset is scoped to
what the user may see, and every text cell a spreadsheet could run as a formula is escaped.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from import_export import fields, resources
from import_export.formats import base_formats

from cairn.lib.spreadsheets import escape_cell
from roadmap.checklists import CANONICAL_COLUMNS
from roadmap.keys import PATH_SEPARATOR
from roadmap.models import ChecklistItem, Program, Section
from roadmap.selectors import section_path_tuples

EXPORT_FORMATS = {
    "csv": base_formats.CSV,
    "xlsx": base_formats.XLSX,
    "json": base_formats.JSON,
    "yaml": base_formats.YAML,
}


class ChecklistItemResource(resources.ModelResource):
    program = fields.Field(attribute="program__key", column_name="program")
    phase = fields.Field(attribute="phase__code", column_name="phase")
    section = fields.Field(column_name="section")
    owner = fields.Field(attribute="owner__username", column_name="owner")

    class Meta:
        model = ChecklistItem
        # status_reason too: a blocked or not-applicable item re-imports with its reason.
        fields = ("program", *CANONICAL_COLUMNS, "status_reason")
        export_order = ("program", *CANONICAL_COLUMNS, "status_reason")

    def __init__(self, *, user: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = user
        self.paths: dict[int, tuple[str, ...]] = {}

    def get_queryset(self) -> QuerySet[ChecklistItem]:
        items = ChecklistItem.objects.active().select_related("program", "phase", "owner", "section")
        return items.for_user(self.user) if self.user is not None else items

    def before_export(self, queryset: QuerySet[ChecklistItem], **kwargs: Any) -> None:
        # Section paths for every program on the page in one query each, not one per row.
        program_ids = set(queryset.values_list("program_id", flat=True).distinct())
        self.paths = section_path_tuples(Section.objects.filter(program_id__in=program_ids))

    def dehydrate_section(self, item: ChecklistItem) -> str:
        return PATH_SEPARATOR.join(self.paths.get(item.section_id, (item.section.title,)))

    def export_field(self, field: fields.Field, instance: ChecklistItem, **kwargs: Any) -> Any:
        return escape_cell(super().export_field(field, instance, **kwargs))


def checklist_export(*, program: Program, by: Any, file_format: str) -> bytes | str:
    """The program's active items in `file_format` (csv, xlsx, json, yaml); `by=None` is an operator."""
    resource = ChecklistItemResource(user=by)
    items = resource.get_queryset().filter(program=program).order_by("section__order", "order", "pk")
    dataset = resource.export(queryset=items)
    return EXPORT_FORMATS[file_format]().export_data(dataset)
