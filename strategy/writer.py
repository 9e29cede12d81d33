"""A program back to markdown, so a strategy kept in git round-trips: import → work → export → diff shows ticks.

With the text of the last import at hand the writer edits that text in place (ticks, renamed items, current
control values, items added since) so everything else — prose, tables, spacing — stays as the author wrote it.
A program that never had a document is written from its outline in the same structure the parser reads.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml

from roadmap.keys import normalise_text
from roadmap.selectors import section_path_tuples
from strategy.parser import (
    CONTROL_FIELD_NAMES,
    PATH_SEPARATOR,
    ControlValue,
    parse_strategy,
)

if TYPE_CHECKING:
    from governance.models import ControlledDocument
    from metrics.models import Metric
    from roadmap.models import ChecklistItem, Program, Section

# Control field → ControlledDocument column; the import fills the same columns.
DOCUMENT_COLUMNS = {
    "version": "version_label",
    "last_updated": "last_updated",
    "review_date": "review_date",
    "next_review": "next_review",
    "owner": "owner",
    "approver": "approver",
    "distribution": "distribution",
    "document_id": "doc_id",
    "review_cycle": "review_cycle",
    "classification": "classification",
}
HEADER_FIELDS = ("version", "last_updated", "review_date")
FOOTER_FIELDS = (
    "owner",
    "approver",
    "next_review",
    "distribution",
    "document_id",
    "review_cycle",
    "classification",
)
UNLIMITED = 1 << 62


def _document_value(document: ControlledDocument | None, field: str) -> str:
    return str(getattr(document, DOCUMENT_COLUMNS[field], "") or "") if document is not None else ""


_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` on one line: a title written with a line break would otherwise start a heading or an item of its own
    when the export is imported again (markdown injection)."""
    return _LINE_BREAKS.sub(" ", text)


def _task_line(prefix: str, item: ChecklistItem) -> str:
    return f"{prefix}- [{'x' if item.status == 'done' else ' '}] {one_line(item.title)}"


def _labelled_line(prefix: str, label: str, text: str) -> str:
    return f"{prefix}- **{one_line(label)}:** {one_line(text)}".rstrip()


def _item_line(prefix: str, item: ChecklistItem) -> str:
    if item.kind == "practice":
        return _labelled_line(prefix, item.title, item.description)
    return _task_line(prefix, item)


# --- editing the imported text ------------------------------------------------------------------------------


def render_from_source(
    source: str,
    *,
    document: ControlledDocument | None,
    items: Sequence[ChecklistItem],
    metrics: Sequence[Metric],
    sections: Sequence[Section],
) -> str:
    outline = parse_strategy(source, max_bytes=UNLIMITED)
    lines = list(outline.lines)
    paths = section_path_tuples(sections)
    dropped: set[int] = set()  # 0-based indexes of lines whose item or metric is gone
    inserts: dict[int, list[str]] = defaultdict(list)  # after 0-based index → new lines

    by_key = {item.key: item for item in items}
    by_title = {(paths.get(item.section_id), normalise_text(item.title)): item for item in items}
    written: set[int] = set()
    last_line_of_section: dict[tuple[str, ...], tuple[int, str]] = {}
    for parsed in outline.items:
        index = parsed.line - 1
        item = by_key.get(parsed.key) or by_title.get((parsed.path, normalise_text(parsed.title)))
        if item is None or item.pk in written:
            dropped.add(index)
            continue
        written.add(item.pk)
        line = lines[index]
        if parsed.kind == "task":
            assert parsed.mark_column is not None
            mark = line[parsed.mark_column]
            wanted = (mark if mark in "xX" else "x") if item.status == "done" else " "
            end = parsed.text_column + len(parsed.title)
            title = (
                one_line(item.title)
                if normalise_text(item.title) != normalise_text(parsed.title)
                else parsed.title
            )
            line = f"{line[: parsed.mark_column]}{wanted}{line[parsed.mark_column + 1 : parsed.text_column]}{title}{line[end:]}"
        elif item.description != parsed.description:
            line = f"{line[: parsed.text_column]}{item.description}{line[parsed.text_column + len(parsed.description) :]}"
        lines[index] = line
        prefix = line[: len(line) - len(line.lstrip())]
        last_line_of_section[parsed.path] = (index, prefix)

    metric_by_key = {metric.key: metric for metric in metrics}
    written_metrics: set[int] = set()
    for parsed_metric in outline.metrics:
        index = parsed_metric.line - 1
        metric = metric_by_key.get(parsed_metric.key)
        if metric is None:
            dropped.add(index)
            continue
        written_metrics.add(metric.pk)
        line = lines[index]
        if metric.description != parsed_metric.description:
            start = parsed_metric.text_column
            line = f"{line[:start]}{metric.description}{line[start + len(parsed_metric.description) :]}"
            lines[index] = line
        last_line_of_section[parsed_metric.path] = (index, line[: len(line) - len(line.lstrip())])

    _write_control_values(lines, inserts, outline.control, document)

    # Items and metrics added since the import go after the last line of their section, or under its label.
    heading_line = {section.path: section.line - 1 for section in outline.sections}
    unplaced: list[Any] = []
    additions = [
        (paths.get(item.section_id, ()), _item_line, item) for item in items if item.pk not in written
    ] + [
        (paths.get(metric.category_id, ()), _metric_line, metric)
        for metric in metrics
        if metric.pk not in written_metrics
    ]
    for path, render, row in additions:
        if path in last_line_of_section:
            index, prefix = last_line_of_section[path]
        elif path in heading_line:
            index, prefix = heading_line[path], "   " if path and _numbered(sections, paths, path) else ""
        else:
            unplaced.append(row)
            continue
        inserts[index].append(render(prefix, row))

    output: list[str] = []
    for index, line in enumerate(lines):
        if index not in dropped:
            output.append(line)
        output.extend(inserts.get(index, []))
    if unplaced:
        trailing = output and output[-1] == ""
        if trailing:
            output.pop()
        output.extend(["", *_unplaced_block(unplaced, paths)])
        if trailing:
            output.append("")
    return outline.newline.join(output)


def _metric_line(prefix: str, metric: Metric) -> str:
    return _labelled_line(prefix, metric.name, metric.description)


def _numbered(sections: Sequence[Section], paths: dict[int, tuple[str, ...]], path: tuple[str, ...]) -> bool:
    return any(paths.get(section.pk) == path and section.style == "numbered" for section in sections)


def _unplaced_block(rows: list[Any], paths: dict[int, tuple[str, ...]]) -> list[str]:
    """Rows of sections the imported text does not have, each under a heading naming its section path."""
    block: list[str] = []
    current: tuple[str, ...] | None = None
    for row in rows:
        path = paths.get(getattr(row, "section_id", None) or getattr(row, "category_id", None), ())
        if path != current:
            current = path
            if block:
                block.append("")
            block.append(f"## {PATH_SEPARATOR.join(path) or 'Added in Cairn'}")
        block.append(_metric_line("", row) if hasattr(row, "category_id") else _item_line("", row))
    return block


def _write_control_values(
    lines: list[str],
    inserts: dict[int, list[str]],
    control: dict[str, ControlValue],
    document: ControlledDocument | None,
) -> None:
    """Current control values replace the ones written; values the text lacks join its control block."""
    for field, written in control.items():
        value = _document_value(document, field)
        if value and value != written.value:
            line = lines[written.line - 1]
            start = written.value_column
            lines[written.line - 1] = f"{line[:start]}{value}{line[start + len(written.value) :]}"
    missing = [
        field
        for field in (*HEADER_FIELDS, *FOOTER_FIELDS)
        if field not in control and _document_value(document, field)
    ]
    if not missing:
        return
    if control:
        last = max(control.values(), key=lambda value: value.line)
        template = lines[last.line - 1]
        indent = template[: len(template) - len(template.lstrip())]
        bullet = "- " if template.lstrip().startswith(("-", "*", "+")) else ""
        hard_break = "  " if template.endswith("  ") else ""
        inserts[last.line - 1].extend(
            f"{indent}{bullet}**{CONTROL_FIELD_NAMES[field]}:** {_document_value(document, field)}{hard_break}"
            for field in missing
        )
        return
    end = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
    block = ["", "---", "", "**Document Control:**"] + [
        f"- **{CONTROL_FIELD_NAMES[field]}:** {_document_value(document, field)}" for field in missing
    ]
    inserts[end - 1].extend(block)


# --- writing a program that has no imported text ------------------------------------------------------------


def render_generated(
    program: Program,
    *,
    document: ControlledDocument | None,
    items: Sequence[ChecklistItem],
    metrics: Sequence[Metric],
    sections: Sequence[Section],
) -> str:
    out: list[str] = []
    front = _front_matter(program, document)
    if front:
        out += ["---", *yaml.safe_dump(front, sort_keys=False, allow_unicode=True).splitlines(), "---", ""]
    out.append(f"# {one_line(program.title)}")
    if program.subtitle:
        out.append(f"## {one_line(program.subtitle)}")
    header = [
        f"**{CONTROL_FIELD_NAMES[field]}:** {_document_value(document, field)}  "
        for field in HEADER_FIELDS
        if _document_value(document, field)
    ]
    if header:
        out += ["", *header]
    out += ["", "---"]

    children: dict[int | None, list[Section]] = defaultdict(list)
    for section in sections:
        children[section.parent_id].append(section)
    items_by_section: dict[int, list[ChecklistItem]] = defaultdict(list)
    for item in items:
        items_by_section[item.section_id].append(item)
    metrics_by_section: dict[int | None, list[Metric]] = defaultdict(list)
    for metric in metrics:
        metrics_by_section[metric.category_id].append(metric)

    def write(section: Section, depth: int, number: int) -> None:
        indent = ""
        if section.style == "numbered":
            out.append(f"{number}. **{one_line(section.title)}**")
            indent = "   "
        elif section.style == "bold":
            out.append(f"**{one_line(section.title)}:**")
        else:
            out.extend(["", f"{'#' * min(depth + 1, 6)} {one_line(section.title)}"])
            if section.phase is not None and section.phase.objectives:
                out.append(f"**Objectives:** {section.phase.objectives}")
            if section.title.casefold() == "executive summary" and program.summary:
                out.extend(["", program.summary])
        out.extend(_item_line(indent, item) for item in items_by_section[section.pk])
        out.extend(_metric_line(indent, metric) for metric in metrics_by_section[section.pk])
        # Groups before subheadings: a group label written after a subheading would belong to that subheading.
        ordered = sorted(children[section.pk], key=lambda child: child.style == "heading")
        numbered = 0
        for child in ordered:
            if child.style != "heading":
                out.append("")
            numbered += child.style == "numbered"
            write(child, depth + 1, numbered)

    for root in children[None]:
        write(root, 1, 1)
    footer = [
        f"- **{CONTROL_FIELD_NAMES[field]}:** {_document_value(document, field)}"
        for field in FOOTER_FIELDS
        if _document_value(document, field)
    ]
    if footer:
        out += ["", "---", "", "**Document Control:**", *footer]
    return "\n".join(out).strip("\n") + "\n"


def _front_matter(program: Program, document: ControlledDocument | None) -> dict[str, Any]:
    if document is None:
        return {}
    front: dict[str, Any] = {}
    if document.category or document.tags or document.created:
        front["title"] = program.title
    if document.category:
        front["category"] = document.category
    if document.tags:
        front["tags"] = list(document.tags)
    if document.created:
        front["created"] = document.created
    return front
