"""Markdown strategy documents → a plain outline (DESIGN §4). No database here; `strategy.services` applies it.

The parser reads the family of documents Cairn is built for, not one file: YAML front matter, a `#` title with an
optional `##` subtitle, document-control fields wherever they are written (bold labels, bullets, two-column
tables), phases in headings or bold bullets, `- [ ]` tasks under headings and bold or numbered group labels,
`- **Label:** text` practices in numbered groups, and metric definitions under headings about metrics.

Every problem it cannot work around raises `StrategyError` naming the line; everything it can work around
becomes a warning naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from cairn.lib.dates import parse_document_date
from cairn.lib.yaml import load_yaml
from roadmap.keys import PATH_SEPARATOR, item_key

# Column sizes of the models the outline is written to; longer text is refused, never cut.
MAX_SECTION_TITLE = 300
MAX_ITEM_TITLE = 1000
MAX_METRIC_NAME = 300
MAX_PHASE_NAME = 200
MAX_TITLE = 200
# Control values longer than their column are refused (distribution is free text).
MAX_CONTROL_VALUE = {
    "version": 64,
    "last_updated": 100,
    "review_date": 100,
    "next_review": 200,
    "owner": 300,
    "approver": 300,
    "distribution": 2000,
    "document_id": 100,
    "review_cycle": 200,
    "classification": 100,
}
MAX_FRONT_MATTER = {"title": MAX_TITLE, "category": 200, "created": 100}


class StrategyError(ValueError):
    """A document Cairn cannot import; the message says where and what was expected."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class OutlineSection:
    path: tuple[str, ...]
    style: str  # "heading", "bold" or "numbered" (roadmap.models.Section.Style)
    line: int
    phase_number: int | None = None

    @property
    def title(self) -> str:
        return self.path[-1]


@dataclass
class OutlinePhase:
    number: int
    name: str
    start_month: int | None
    end_month: int | None
    line: int
    objectives: str = ""
    section_path: tuple[str, ...] | None = None

    @property
    def code(self) -> str:
        return f"P{self.number}"


@dataclass
class OutlineItem:
    path: tuple[str, ...]
    title: str
    kind: str  # "task" or "practice"
    line: int
    text_column: int  # where the title (task) or the description (practice) starts on the line
    description: str = ""
    done: bool = False
    mark_column: int | None = None  # the character between the brackets of a task
    key: str = ""


@dataclass
class OutlineMetric:
    path: tuple[str, ...]
    name: str
    description: str
    line: int
    text_column: int
    key: str = ""


@dataclass
class ControlValue:
    field: str
    label: str
    value: str
    line: int
    value_column: int
    date: date | None = None


@dataclass
class Outline:
    title: str
    subtitle: str = ""
    summary: str = ""
    front_matter: dict[str, Any] = field(default_factory=dict)
    control: dict[str, ControlValue] = field(default_factory=dict)
    sections: list[OutlineSection] = field(default_factory=list)
    phases: list[OutlinePhase] = field(default_factory=list)
    items: list[OutlineItem] = field(default_factory=list)
    metrics: list[OutlineMetric] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    newline: str = "\n"
    title_line: int | None = None

    def section_path_text(self, path: tuple[str, ...]) -> str:
        return PATH_SEPARATOR.join(path)


# Labels as documents write them → the control field they fill. Matched case-insensitively.
CONTROL_LABELS = {
    "document version": "version",
    "version": "version",
    "last updated": "last_updated",
    "effective date": "last_updated",
    "review date": "review_date",
    "last review": "review_date",
    "last reviewed": "review_date",
    "next review": "next_review",
    "next review date": "next_review",
    "owner": "owner",
    "document owner": "owner",
    "approver": "approver",
    "approved by": "approver",
    "distribution": "distribution",
    "document id": "document_id",
    "policy code": "document_id",
    "policy id": "document_id",
    "review cycle": "review_cycle",
    "classification": "classification",
    "security classification": "classification",
}
CONTROL_DATE_FIELDS = frozenset({"last_updated", "review_date", "next_review"})
CONTROL_FIELD_NAMES = {
    "version": "Document Version",
    "last_updated": "Last Updated",
    "review_date": "Review Date",
    "next_review": "Next Review",
    "owner": "Owner",
    "approver": "Approver",
    "distribution": "Distribution",
    "document_id": "Document ID",
    "review_cycle": "Review Cycle",
    "classification": "Classification",
}
# Words in a heading or bold line that open a block of plain `- Label: value` control bullets.
_CONTROL_BLOCK = re.compile(
    r"document control|metadata|document information|policy information|document details", re.I
)
_OBJECTIVES_LABELS = frozenset({"objectives", "objective", "goals"})

# No pattern ends in a lazy group followed by `[ \t]*$`: that backtracks quadratically over a run of blanks inside
# a line (a 20,000-space line took 25 s), so the greedy groups below keep trailing blanks and callers strip them.
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TASK = re.compile(r"^([ \t]*)[-*+][ \t]+\[([ xX])\](?:[ \t]+(.*))?$")
_NUMBERED_GROUP = re.compile(r"^ {0,3}[0-9]{1,9}[.)][ \t]+\*\*(?P<title>[^*]+?)\*\*[ \t]*(?::[ \t]*)?$")
_BOLD_LABEL = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?P<bullet>[-*+])[ \t]+)?\*\*(?P<label>[^*]+?)(?::\*\*|\*\*[ \t]*:)[ \t]*(?P<value>.*)$"
)
_BOLD_LINE = re.compile(r"^[ \t]*\*\*(?P<text>[^*]+?)\*\*[ \t]*(?::[ \t]*)?$")
_PLAIN_BULLET = re.compile(r"^[ \t]*[-*+][ \t]+(?P<text>.*)$")
_PLAIN_LABEL = re.compile(r"^[ \t]*[-*+][ \t]+(?P<label>[A-Za-z][A-Za-z ]{1,40}?)[ \t]*:[ \t]*(?P<value>.*)$")
_TABLE_ROW = re.compile(r"^[ \t]*\|(?P<cells>.*)\|[ \t]*$")
_PHASE = re.compile(r"^(?:phase|stage)[ \t]+(?P<number>[0-9]{1,3})\b[ \t]*[:.\-–—]?[ \t]*(?P<rest>.*)$", re.I)
_WINDOW = re.compile(r"\((?P<window>[^()]*)\)[ \t]*$")
_MONTHS_FIRST = re.compile(r"^months?[ \t]*([0-9]{1,4})(?:[ \t]*(?:[-–—]|to)[ \t]*([0-9]{1,4}))?$", re.I)
_MONTHS_LAST = re.compile(r"^([0-9]{1,4})[ \t]*(?:[-–—]|to)[ \t]*([0-9]{1,4})[ \t]*months?$", re.I)
_QUARTERS = re.compile(r"^Q([1-4])(?:[ \t]*(?:[-–—]|to)[ \t]*Q([1-4]))?$", re.I)
_TEMPLATE_EXPRESSION = re.compile(r"<%.*?%>|\{\{.*?\}\}")
# Control characters no text document contains; finding one means the upload is binary or corrupted.
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
MAX_MONTH = 1200


MAX_FRONT_MATTER_BYTES = 64 * 1024


def _without_closing_hashes(title: str) -> str:
    """'Title ##' → 'Title': the optional closing sequence of an ATX heading (blanks, then hashes, at the end)."""
    bare = title.rstrip("#")
    return bare.rstrip(" \t") if bare != title and bare[-1:] in (" ", "\t") else title


def _line_at(text: bytes | str, offset: int) -> int:
    """The line `offset` falls on, counting CRLF, CR and LF line ends the way the parser splits lines."""
    prefix = text[:offset]
    if isinstance(prefix, bytes):
        prefix = prefix.decode("latin-1")  # one character per byte: only the line ends matter here
    return prefix.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def decode_document(data: bytes | str, *, max_bytes: int) -> str:
    """Text of an upload, or StrategyError for an empty, oversized, binary or non-UTF-8 one."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise StrategyError(
            f"the file is over the limit of {max_bytes:,} bytes (setting CAIRN_STRATEGY_MAX_BYTES)."
        )
    if (nul := raw.find(b"\x00")) >= 0:
        raise StrategyError("NUL byte: this looks like a binary file, not markdown.", _line_at(raw, nul))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_at(raw, exc.start)
        raise StrategyError(
            f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8.",
            line,
        ) from None
    if match := _BINARY.search(text):
        line = _line_at(text, match.start())
        raise StrategyError(
            f"control character U+{ord(match.group()):04X}: this looks like a binary file, not markdown.",
            line,
        )
    if not text.strip():
        raise StrategyError("the file is empty; expected a markdown strategy with '#' headings.", 1)
    return text


def parse_strategy(data: bytes | str, *, max_bytes: int = 5 * 1024 * 1024) -> Outline:
    text = decode_document(data, max_bytes=max_bytes)
    newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _Parser(lines, newline).parse()


class _Parser:
    def __init__(self, lines: list[str], newline: str) -> None:
        self.lines = lines
        self.outline = Outline(title="", lines=lines, newline=newline)
        self.headings: list[tuple[int, OutlineSection]] = []  # (number of #, section) from root to current
        self.sections_by_path: dict[tuple[str, ...], OutlineSection] = {}
        self.group: tuple[str, str, int] | None = None  # (title, style, line) until its first item
        self.group_section: OutlineSection | None = None
        self.items_by_key: dict[str, OutlineItem] = {}
        self.metrics_by_key: dict[str, OutlineMetric] = {}
        self.phases_by_number: dict[int, OutlinePhase] = {}
        self.control_block = False
        self.objectives_for: OutlinePhase | None = None
        self.summary_lines: list[str] | None = None
        self.saw_heading = False
        self.general_warned = False

    # --- driver -----------------------------------------------------------------------------------------

    def parse(self) -> Outline:
        start = self._front_matter()
        fence: str | None = None
        for index in range(start, len(self.lines)):
            number = index + 1
            line = self.lines[index]
            if match := _FENCE.match(line):
                marker = match.group(1)
                if fence is None:
                    fence = marker
                    continue
                if marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip()[len(marker) :]:
                    fence = None
                    continue
            if fence:
                continue
            self._line(line, number)
        self._finish_summary()
        if not self.saw_heading:
            raise StrategyError("no headings found; a strategy needs '# Title' and '## Section' headings.", 1)
        if not self.outline.title:
            self.outline.title = (
                self.outline.sections[0].title if self.outline.sections else "Untitled strategy"
            )
            self._warn(
                1, f"no '# Title' heading; the title is taken from the first heading: {self.outline.title!r}."
            )
        if not self.outline.items and not self.outline.metrics:
            self._warn(1, "no checklist items ('- [ ] task' lines) or metric definitions were found.")
        return self.outline

    def _line(self, line: str, number: int) -> None:
        if not line.strip():
            if self.summary_lines is not None:
                self.summary_lines.append("")
            return
        if match := _HEADING.match(line):
            self._heading(len(match.group(1)), match.group(2) or "", number)
            return
        if _RULE.match(line):
            self._end_group()
            self.objectives_for = None
            self._finish_summary()
            return
        if match := _TASK.match(line):
            self._task(match, number)
            return
        if (match := _NUMBERED_GROUP.match(line)) and match.group("title").strip():
            self._open_group(match.group("title").strip(), "numbered", number)
            return
        if match := _BOLD_LABEL.match(line):
            self._bold_label(match, number)
            return
        if (match := _BOLD_LINE.match(line)) and match.group("text").strip():
            text = match.group("text").strip()
            if _CONTROL_BLOCK.search(text):
                self.control_block = True
            else:
                self._open_group(text, "bold", number)
            return
        if match := _TABLE_ROW.match(line):
            self._table_row(match.group("cells"), line, number)
            return
        if match := _PLAIN_BULLET.match(line):
            self._plain_bullet(match, line, number)
            return
        self.objectives_for = None
        if self.summary_lines is not None:
            self.summary_lines.append(line.strip())

    # --- front matter -----------------------------------------------------------------------------------

    def _front_matter(self) -> int:
        """Read YAML front matter between '---' lines at the very top; return the index of the next line."""
        if not self.lines or self.lines[0].strip() != "---":
            return 0
        for index in range(1, len(self.lines)):
            if self.lines[index].strip() in ("---", "..."):
                break
        else:
            raise StrategyError("the front matter opened with '---' is never closed with '---'.", 1)
        block = "\n".join(self.lines[1:index])
        if len(block) > MAX_FRONT_MATTER_BYTES:
            raise StrategyError(f"the front matter is longer than {MAX_FRONT_MATTER_BYTES:,} characters.", 1)
        try:
            data = load_yaml(block)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise StrategyError(f"the front matter is not valid YAML ({problem}).", line) from None
        except (ValueError, RecursionError, OverflowError) as exc:
            raise StrategyError(f"the front matter has a value YAML cannot read ({exc}).", 1) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise StrategyError(
                "the front matter must be 'key: value' lines (title, category, tags, created).", 2
            )
        front: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).strip().casefold()
            if name == "tags":
                if isinstance(value, list | tuple):
                    front["tags"] = [str(tag).strip() for tag in value if str(tag).strip()]
                elif value is not None:
                    front["tags"] = [tag.strip() for tag in str(value).split(",") if tag.strip()]
            elif name in MAX_FRONT_MATTER:
                text = value.isoformat() if isinstance(value, date | datetime) else str(value).strip()
                front[name] = self._checked(text, MAX_FRONT_MATTER[name], f"the front matter {name}", 2)
        if len(front.get("tags", [])) > 50 or len(", ".join(front.get("tags", []))) > 1000:
            raise StrategyError("the front matter has more tags than Cairn keeps (50, 1,000 characters).", 2)
        self.outline.front_matter = front
        return index + 1

    # --- headings and groups ----------------------------------------------------------------------------

    def _heading(self, hashes: int, raw_title: str, number: int) -> None:
        title = _without_closing_hashes(raw_title.rstrip(" \t")).strip()
        self._end_group()
        self._finish_summary()
        self.objectives_for = None
        self.control_block = bool(_CONTROL_BLOCK.search(title))
        if not title:
            self._warn(number, "empty heading ignored.")
            return
        self.saw_heading = True
        outline = self.outline
        if hashes == 1 and not outline.title:
            outline.title = self._checked(title, MAX_TITLE, "the title", number)
            outline.title_line = number
            return
        if hashes == 2 and not outline.subtitle and outline.title_line == number - 1 and not self.headings:
            outline.subtitle = self._checked(title, MAX_TITLE, "the subtitle", number)
            return
        while self.headings and self.headings[-1][0] >= hashes:
            self.headings.pop()
        parent = self.headings[-1][1].path if self.headings else ()
        section = self._section((*parent, title), "heading", number)
        self.headings.append((hashes, section))
        if (phase := self._phase_from(title, number)) and section.phase_number is None:
            section.phase_number = phase.number
            phase.section_path = section.path
        if title.casefold() == "executive summary" and not outline.summary:
            self.summary_lines = []

    def _section(self, path: tuple[str, ...], style: str, number: int) -> OutlineSection:
        self._checked(path[-1], MAX_SECTION_TITLE, "a heading", number)
        existing = self.sections_by_path.get(path)
        if existing is not None:
            self._warn(
                number,
                f"{PATH_SEPARATOR.join(path)!r} repeats line {existing.line} under the same parent; "
                "their content is kept together in one section.",
            )
            return existing
        section = OutlineSection(path=path, style=style, line=number)
        self.sections_by_path[path] = section
        self.outline.sections.append(section)
        return section

    def _open_group(self, title: str, style: str, number: int) -> None:
        """A bold or numbered label opens a checklist group; it becomes a section once it holds something."""
        self._end_group()
        self.objectives_for = None
        self.group = (title, style, number)

    def _end_group(self) -> None:
        self.group = None
        self.group_section = None

    def _container(self, number: int) -> tuple[str, ...]:
        """The path of the section the next item belongs to, creating a pending group section if needed."""
        if self.group is not None and self.group_section is None:
            title, style, line = self.group
            self.group_section = self._section((*self._heading_path(number), title), style, line)
        if self.group_section is not None:
            return self.group_section.path
        return self._heading_path(number)

    def _heading_path(self, number: int) -> tuple[str, ...]:
        if self.headings:
            return self.headings[-1][1].path
        if not self.general_warned:
            self.general_warned = True
            self._warn(number, "content before the first section heading is filed under 'General'.")
        path = ("General",)
        if path not in self.sections_by_path:
            self._section(path, "heading", number)
        return path

    def _in_metric_context(self) -> bool:
        return any("metric" in title.casefold() for title in self._heading_titles())

    def _heading_titles(self) -> list[str]:
        return [section.title for _, section in self.headings]

    def _current_phase(self) -> OutlinePhase | None:
        for _, section in reversed(self.headings):
            if section.phase_number is not None:
                return self.phases_by_number[section.phase_number]
        return None

    # --- phases -----------------------------------------------------------------------------------------

    def _phase_from(self, text: str, number: int, objectives: str = "") -> OutlinePhase | None:
        match = _PHASE.match(text)
        if not match:
            return None
        phase_number = int(match.group("number"))
        if phase_number < 1:
            return None
        rest = match.group("rest").strip()
        start = end = None
        if window := _WINDOW.search(rest):
            months = self._window(window.group("window").strip(), number)
            if months is not None:
                start, end = months
                rest = rest[: window.start()].strip()
        name = rest.strip(" :.-–—") or f"Phase {phase_number}"
        if phase_number in self.phases_by_number:
            first = self.phases_by_number[phase_number]
            self._warn(
                number, f"phase {phase_number} is defined again (first at line {first.line}); ignored."
            )
            return None
        phase = OutlinePhase(
            number=phase_number,
            name=self._checked(name, MAX_PHASE_NAME, "a phase name", number),
            start_month=start,
            end_month=end,
            line=number,
            objectives=objectives,
        )
        self.phases_by_number[phase_number] = phase
        self.outline.phases.append(phase)
        return phase

    def _window(self, text: str, number: int) -> tuple[int, int] | None:
        """Months of a window such as 'Months 7-12', '0-6 months', 'Month 3' or 'Q1-Q2'; None if none."""
        if match := _MONTHS_FIRST.match(text):
            start = int(match.group(1))
            end = int(match.group(2) or start)
        elif match := _MONTHS_LAST.match(text):
            start, end = int(match.group(1)), int(match.group(2))
        elif match := _QUARTERS.match(text):
            first = int(match.group(1))
            last = int(match.group(2) or first)
            start, end = 3 * first - 2, 3 * last
        else:
            return None
        previous_end = max((phase.end_month or 0 for phase in self.outline.phases), default=0)
        # "0-6 months, 6-12 months" counts elapsed months: the next window starts after the previous one.
        if start == 0 or (previous_end and start == previous_end):
            start += 1
        if not 1 <= start <= end <= MAX_MONTH:
            self._warn(
                number, f"phase window ({text}) is not a range of months from 1 to {MAX_MONTH}; ignored."
            )
            return None
        return start, end

    # --- lines inside sections --------------------------------------------------------------------------

    def _task(self, match: re.Match[str], number: int) -> None:
        self.objectives_for = None
        title = (match.group(3) or "").strip()
        if not title:
            self._warn(number, "empty checklist item ignored.")
            return
        self._checked(title, MAX_ITEM_TITLE, "a checklist item", number)
        item = OutlineItem(
            path=self._container(number),
            title=title,
            kind="task",
            line=number,
            text_column=match.start(3),
            done=match.group(2) in "xX",
            mark_column=match.start(2),
        )
        self._add_item(item)

    def _add_item(self, item: OutlineItem) -> None:
        item.key = item_key(PATH_SEPARATOR.join(item.path), item.title)
        if first := self.items_by_key.get(item.key):
            raise StrategyError(
                f"duplicate item {item.title!r} in {PATH_SEPARATOR.join(item.path)!r}: the same as line "
                f"{first.line}. Remove one or reword it so each item can be tracked on its own.",
                item.line,
            )
        self.items_by_key[item.key] = item
        self.outline.items.append(item)

    def _bold_label(self, match: re.Match[str], number: int) -> None:
        label = match.group("label").strip()
        value = match.group("value").rstrip(" \t")
        bulleted = match.group("bullet") is not None
        if not label:
            self._warn(number, "a bold label with no text is ignored.")
            return
        field = CONTROL_LABELS.get(label.casefold())
        in_numbered_group = self.group is not None and self.group[1] == "numbered"
        # A control block ("**Document Control:**") or a bold label line outside lists is document control,
        # even after a metrics heading; bullets in numbered groups are practices, under metrics metrics.
        if field and value and (self.control_block or not bulleted):
            self._control(field, label, value, match.start("value"), number)
        elif bulleted and self._in_metric_context():
            self._metric(label, value, match.start("value"), number)
        elif bulleted and in_numbered_group:
            self._practice(label, value, match.start("value"), number)
        elif field and value:
            self._control(field, label, value, match.start("value"), number)
        elif bulleted and (phase_match := _PHASE.match(label)):
            self._phase_from(phase_match.group(0), number, objectives=value)
        elif not bulleted and label.casefold() in _OBJECTIVES_LABELS and (phase := self._current_phase()):
            self._end_group()
            if value and not phase.objectives:
                phase.objectives = value
            elif not phase.objectives:
                self.objectives_for = phase
        elif not bulleted and not value:
            if _CONTROL_BLOCK.search(label):
                self._end_group()
                self.control_block = True
            else:
                self._open_group(label, "bold", number)

    def _practice(self, label: str, value: str, column: int, number: int) -> None:
        self._checked(label, MAX_ITEM_TITLE, "a practice label", number)
        item = OutlineItem(
            path=self._container(number),
            title=label,
            description=value,
            kind="practice",
            line=number,
            text_column=column,
        )
        self._add_item(item)

    def _metric(self, name: str, description: str, column: int, number: int) -> None:
        self._checked(name, MAX_METRIC_NAME, "a metric name", number)
        metric = OutlineMetric(
            path=self._container(number), name=name, description=description, line=number, text_column=column
        )
        metric.key = item_key(PATH_SEPARATOR.join(metric.path), name)
        if first := self.metrics_by_key.get(metric.key):
            raise StrategyError(
                f"duplicate metric {name!r} in {PATH_SEPARATOR.join(metric.path)!r}: the same as line "
                f"{first.line}. Remove one or rename it.",
                number,
            )
        self.metrics_by_key[metric.key] = metric
        self.outline.metrics.append(metric)

    def _control(self, field: str, label: str, value: str, column: int, number: int) -> None:
        self._checked(value, MAX_CONTROL_VALUE[field], f"the {label} value", number)
        control = self.outline.control
        if first := control.get(field):
            if first.value != value:
                self._warn(
                    number,
                    f"{label} is given again ({value!r}); the value at line {first.line} ({first.value!r}) is kept.",
                )
            return
        parsed = parse_document_date(value) if field in CONTROL_DATE_FIELDS else None
        if field in CONTROL_DATE_FIELDS and parsed is None:
            why = (
                "an unrendered template expression"
                if _TEMPLATE_EXPRESSION.search(value)
                else "not a date Cairn can read"
            )
            self._warn(
                number, f"{label} {value!r} is {why}; kept as written, no reminder can be scheduled from it."
            )
        control[field] = ControlValue(
            field=field, label=label, value=value, line=number, value_column=column, date=parsed
        )

    def _table_row(self, cells_text: str, line: str, number: int) -> None:
        cells = [cell.strip() for cell in cells_text.split("|")]
        if len(cells) != 2:
            return
        label = cells[0].strip("*: ").strip()
        field = CONTROL_LABELS.get(label.casefold())
        if field and cells[1]:
            value = cells[1].strip("* ").strip()
            if value:
                second_cell = line.index("|", line.index("|") + 1) + 1
                self._control(field, label, value, line.index(value, second_cell), number)

    def _plain_bullet(self, match: re.Match[str], line: str, number: int) -> None:
        if self.control_block and (labelled := _PLAIN_LABEL.match(line)):
            field = CONTROL_LABELS.get(labelled.group("label").strip().casefold())
            if field and (value := labelled.group("value").rstrip(" \t")):
                self._control(
                    field,
                    labelled.group("label").strip(),
                    value,
                    labelled.start("value"),
                    number,
                )
                return
        if self.objectives_for is not None:
            phase = self.objectives_for
            phase.objectives = "\n".join(filter(None, [phase.objectives, match.group("text").rstrip(" \t")]))

    def _finish_summary(self) -> None:
        if self.summary_lines is None:
            return
        paragraphs = "\n".join(self.summary_lines).strip()
        self.outline.summary = re.sub(r"\n{2,}", "\n\n", paragraphs)
        self.summary_lines = None

    # --- helpers ----------------------------------------------------------------------------------------

    def _checked(self, text: str, limit: int, what: str, number: int) -> str:
        if len(text) > limit:
            raise StrategyError(f"{what} is {len(text)} characters long; at most {limit} fit.", number)
        return text

    def _warn(self, number: int, message: str) -> None:
        self.outline.warnings.append(f"line {number}: {message}")
