"""What the scorecard says, page by page: the cover for the five-minute reader, then the evidence pages and
the appendix of every requirement. Every piece of user text goes through `esc` (or a plain table cell, which is
never parsed) before it reaches reportlab.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    NextPageTemplate,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from scorecards import charts
from scorecards.pdf.layout import (
    CONTENT_WIDTH,
    TEMPLATE_VERSION,
    Footer,
    Rendered,
    build,
    cells,
    clip,
    decimal_text,
    esc,
    fonts,
    glyph,
    heading,
    lines,
    number,
    para,
    styles,
    table,
    tint,
)
from scorecards.report import (
    RequirementRow,
    ScorecardReport,
    area_rows,
    change,
    phase_strip_rows,
    show_date,
)

COVER_RISKS = 5
ARROWS = {"up": ("↑", "+"), "down": ("↓", "-"), "flat": ("→", "=")}  # the glyph, and its ASCII stand-in
RISK_LABELS = {
    "blocked": "Blocked",
    "overdue": "Overdue",
    "review": "Review overdue",
    "failing": "Failing",
    "stale": "Evidence fading",
}


def render_scorecard(report: ScorecardReport) -> Rendered:
    """The whole scorecard: the cover, the evidence pages and the appendix."""
    fonts()
    flowables: list[Flowable] = [*_cover(report), NextPageTemplate("body"), PageBreak(), *_body(report)]
    flowables += [PageBreak(), *appendix(report.requirements)]
    return build(
        flowables,
        footer=_footer(report),
        title=f"{report.program_title} — scorecard {report.as_of.isoformat()}",
        subject=f"Executive scorecard as of {report.as_of.isoformat()}",
    )


def render_appendix_alone(rows: Sequence[RequirementRow]) -> bytes:
    """Only the appendix table, with the same page setup: the floor the scorecard benchmark compares with."""
    fonts()
    return build(
        appendix(rows), footer=Footer(left="", model=""), title="Appendix", subject="Appendix"
    ).content


def _footer(report: ScorecardReport) -> Footer:
    return Footer(
        left=f"{report.program_title} — scorecard as of {report.as_of:%d %B %Y}",
        model=f"Model {report.model_version} · inputs sha256 {report.inputs_hash} · template {TEMPLATE_VERSION}",
    )


# --- page 1 ----------------------------------------------------------------------------------------------


def _arrow(now: float | None, before: float | None, digits: int = 1, unit: str = "") -> str:
    """ "↑ 4.2" style change against the previous scorecard (already markup-safe: numbers only)."""
    moved = change(now, before, digits)
    if moved is None:
        return "no earlier figure"
    direction, figure = moved
    arrow = glyph(*ARROWS[direction])
    if direction == "flat":
        return f"{arrow} unchanged"
    return f"{arrow} {figure.lstrip('+-')}{unit}"  # the arrow carries the sign


def _kpis(report: ScorecardReport) -> Table:
    now, before = report.current, report.previous
    s = styles()

    def tile(
        label: str, value: str, note: str, colour: colors.Color = charts.INK, unit: str = ""
    ) -> list[Paragraph]:
        value_style = ParagraphStyle("kv", parent=s["kpi_value"], textColor=colour)
        suffix = f'<font size="11">{esc(unit)}</font>' if unit and value != "—" else ""
        return [
            Paragraph(esc(label), s["kpi_label"]),
            Paragraph(esc(value) + suffix, value_style),
            Paragraph(esc(note), s["kpi_note"]),
        ]

    def since(attribute: str, digits: int = 1) -> str:
        if before is None:
            return "first scorecard"
        return _arrow(getattr(now, attribute), getattr(before, attribute), digits)

    level = f"{now.level}{'*' if now.level_waived else ''}"
    tiles = [
        tile("LEVEL", level, (now.level_name or "no level reached yet") + f" · {since('level', 0)}"),
        tile("MATURITY INDEX", f"{now.index:.2f}", since("index", 2)),
        tile("SCORE", number(now.score), since("score"), charts.score_colour(now.score)),
        tile("COVERAGE", number(now.coverage), since("coverage"), unit=" %"),
        tile("FRESHNESS", number(now.freshness), since("freshness"), unit=" %"),
    ]
    table = Table([tiles], colWidths=[CONTENT_WIDTH / 5] * 5)
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.6, charts.GRID),
                ("LINEBEFORE", (1, 0), (-1, -1), 0.6, charts.GRID),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return table


def _cover(report: ScorecardReport) -> list[Flowable]:
    regular, bold = fonts()
    now = report.current
    meta = [f"As of {now.as_of:%d %B %Y}"]
    if report.period:
        meta.append(f"period {report.period}")
    meta.append(
        f"compared with the scorecard of {report.previous.as_of:%d %B %Y}"
        if report.previous
        else "first scorecard"
    )
    flowables: list[Flowable] = [para(report.program_title, "title")]
    if report.program_subtitle:
        flowables.append(para(report.program_subtitle, "subtitle"))
    flowables += [Spacer(0, 4), para(" · ".join(meta), "base"), Spacer(0, 10), _kpis(report), Spacer(0, 4)]
    waiver_note = " * A risk waiver counts toward this level." if now.level_waived else ""
    if report.next_level > now.level:
        next_note = (
            f"Next: level {report.next_level}"
            + (f" ({report.next_level_name})" if report.next_level_name else "")
            + f", {report.next_level_progress * 100:.0f} % of its blocking weight met."
        )
    else:
        next_note = "No higher level is defined with blocking requirements."
    flowables.append(para(next_note + waiver_note, "small"))
    flowables += [heading("Executive summary"), para(" ".join(report.summary), "summary")]
    flowables += [
        heading("Phases"),
        charts.phase_strip(phase_strip_rows(report), width=CONTENT_WIDTH, font=regular, bold=bold),
        Spacer(0, 4),
        para(
            "Colour: progress against the planned window (grey not started, blue complete, red late or far behind, "
            "amber behind or blocked). Forecasts extrapolate each phase's burn-up.",
            "small",
        ),
    ]
    if report.risks:
        shown = report.risks[:COVER_RISKS]
        rows = [
            [
                para(RISK_LABELS.get(risk.kind, risk.kind), "cell"),
                para(clip(risk.requirement, 160), "cell"),
                para(clip(risk.detail or "—", 120), "cell"),
            ]
            for risk in shown
        ]
        flowables += [
            heading("Needs attention"),
            table(["Risk", "Requirement", "Detail"], rows, cells([0.16, 0.5, 0.34])),
        ]
        if (more := report.risks_total - len(shown)) > 0:
            flowables.append(para(f"{more} more under Top risks and in the appendix.", "small"))
    return flowables


# --- evidence pages --------------------------------------------------------------------------------------


def _areas(report: ScorecardReport) -> list[Flowable]:
    regular, _ = fonts()
    return [
        heading("Maturity by capability area"),
        para(
            "Score of each area (0–100) and the highest level all its blocking requirements reach (L).",
            "small",
        ),
        Spacer(0, 4),
        charts.area_chart(area_rows(report), width=CONTENT_WIDTH, font=regular),
    ]


def _trend(report: ScorecardReport) -> list[Flowable]:
    regular, _ = fonts()
    scored = [(day, score) for day, score in report.trend if score is not None]
    note = (
        f"{len(scored)} stored snapshot(s) from {show_date(scored[0][0])} to {show_date(scored[-1][0])}."
        if scored
        else "Snapshots are stored daily; the line grows from the first one."
    )
    return [
        CondPageBreak(60 * mm),
        heading("Score trend"),
        para(note, "small"),
        charts.trend_chart(report.trend, width=CONTENT_WIDTH, font=regular),
    ]


def _phases(report: ScorecardReport) -> list[Flowable]:
    s = styles()
    if not report.phases:
        return [heading("Phase progress against plan"), para("No phases defined.", "small")]
    rows, extra = [], []
    for position, phase in enumerate(report.phases, start=1):
        dates = (
            f"{show_date(phase.planned_start)} – {show_date(phase.planned_end)}"
            if phase.planned_start and phase.planned_end
            else "no start date set"
        )
        plan = (
            f"{phase.plan_status.upper()}: index {report.current.index:.2f} vs plan {phase.planned_index:.2f}"
            if phase.planned_index is not None
            else "no plan (window or target missing)"
        )
        rows.append(
            [
                Paragraph(f"<b>{esc(phase.code)}</b> {esc(phase.name)}", s["cell"]),
                lines(phase.window or "no window", dates),
                para(phase.progress_label, "cell"),
                "—" if phase.expected_percent is None else f"{phase.expected_percent} %",
                Paragraph(f"<b>{esc(phase.rag.upper())}</b><br/>{esc('; '.join(phase.reasons))}", s["cell"]),
                para(plan, "cell"),
                show_date(phase.forecast_end),
            ]
        )
        extra.append(("BACKGROUND", (4, position), (4, position), tint(phase.rag)))
    header = ["Phase", "Window", "Progress", "Expected", "RAG", "Maturity vs plan", "Forecast end"]
    return [
        CondPageBreak(40 * mm),
        heading("Phase progress against plan"),
        table(header, rows, cells([0.18, 0.15, 0.14, 0.1, 0.17, 0.15, 0.11]), extra=extra),
    ]


def _metrics(report: ScorecardReport) -> list[Flowable]:
    if not report.metrics:
        return [heading("Metrics"), para("The program defines no metrics yet.", "small")]
    rows = []
    for metric in report.metrics:
        unit = f" {metric.unit}" if metric.unit else ""
        latest = "—" if metric.latest is None else f"{decimal_text(metric.latest)}{unit}"
        target = (
            "—"
            if metric.target is None
            else f"{'≥' if metric.direction == 'higher' else '≤'} {decimal_text(metric.target)}{unit}"
        )
        rows.append(
            [
                para(metric.name, "cell"),
                para(target, "cell"),
                lines(latest, show_date(metric.observed_at.date()) if metric.observed_at else ""),
                para(metric.status, "cell"),
                charts.sparkline(metric.series) if metric.series else "",
            ]
        )
    measurable = sum(1 for metric in report.metrics if metric.measurable)
    return [
        CondPageBreak(40 * mm),
        heading("Metrics"),
        para(
            f"{measurable} of {len(report.metrics)} metric(s) have a target and data; the others are defined, "
            "not yet measurable. The line shows the last measurements, oldest to newest.",
            "small",
        ),
        Spacer(0, 3),
        table(
            ["Metric", "Target", "Latest", "Status", "Last values"],
            rows,
            cells([0.36, 0.13, 0.15, 0.22, 0.14]),
        ),
    ]


def _documents(report: ScorecardReport) -> list[Flowable]:
    if not report.documents:
        return [heading("Document control"), para("No controlled documents.", "small")]
    rows, extra = [], []
    for position, document in enumerate(report.documents, start=1):
        overdue = (
            f"{document.days_overdue} days"
            if document.days_overdue
            else ("due today" if document.days_overdue == 0 else "no")
        )
        title = document.title + (f" ({document.doc_id})" if document.doc_id else "")
        rows.append(
            [
                para(title, "cell"),
                para(document.version or "—", "cell"),
                para(document.owner or "—", "cell"),
                para(document.approver or "—", "cell"),
                para(document.last_review or "—", "cell"),
                para(document.next_review or "—", "cell"),
                para(overdue, "cell"),
            ]
        )
        if document.days_overdue is not None:
            extra.append(("BACKGROUND", (6, position), (6, position), tint("red")))
    header = ["Document", "Version", "Owner", "Approver", "Last review", "Next review", "Overdue"]
    return [
        CondPageBreak(30 * mm),
        heading("Document control"),
        table(header, rows, cells([0.27, 0.08, 0.15, 0.13, 0.13, 0.13, 0.11]), extra=extra),
    ]


def _waivers(report: ScorecardReport) -> list[Flowable]:
    if not report.waivers:
        return [heading("Waivers in force"), para("No waivers are in force.", "small")]
    rows = [
        [
            para(waiver.requirement, "cell"),
            para(waiver.type, "cell"),
            para(waiver.reason, "cell"),
            para(f"{waiver.approved_by} (asked by {waiver.requested_by})", "cell"),
            lines(show_date(waiver.expires_on), f"in {waiver.days_left} days"),
        ]
        for waiver in report.waivers
    ]
    return [
        CondPageBreak(30 * mm),
        heading("Waivers in force"),
        table(
            ["Requirement", "Type", "Reason", "Approved by", "Expires"],
            rows,
            cells([0.3, 0.12, 0.3, 0.15, 0.13]),
        ),
    ]


def _risks(report: ScorecardReport) -> list[Flowable]:
    if not report.risks:
        return [
            heading("Top risks"),
            para("No blocked or overdue items, overdue reviews or failing evidence.", "small"),
        ]
    rows = [
        [
            para(
                RISK_LABELS.get(risk.kind, risk.kind) + ("" if risk.blocking else " (non-blocking)"), "cell"
            ),
            para(risk.requirement, "cell"),
            para(risk.detail or "—", "cell"),
            para(risk.owner or "—", "cell"),
        ]
        for risk in report.risks
    ]
    flowables: list[Flowable] = [
        CondPageBreak(30 * mm),
        heading("Top risks"),
        table(["Risk", "Requirement", "Detail", "Owner"], rows, cells([0.14, 0.42, 0.32, 0.12])),
    ]
    if report.risks_total > len(report.risks):
        flowables.append(
            para(f"{report.risks_total - len(report.risks)} more in the appendix (state column).", "small")
        )
    return flowables


def _body(report: ScorecardReport) -> list[Flowable]:
    sections: list[Callable[[ScorecardReport], list[Flowable]]] = [
        _areas, _trend, _phases, _metrics, _documents, _waivers, _risks,
    ]  # fmt: skip
    flowables: list[Flowable] = []
    for section in sections:
        flowables += section(report)
        flowables.append(Spacer(0, 6))
    return flowables


def appendix(rows: Sequence[RequirementRow]) -> list[Flowable]:
    """Every requirement with its state and the evidence behind it; the header repeats on each page."""
    regular, _ = fonts()
    widths = cells([0.17, 0.35, 0.14, 0.04, 0.13, 0.17])
    # Text that fits its column on one line goes in as a plain string (drawn as is, never parsed, and far cheaper
    # than a paragraph over thousands of rows); longer text wraps in an escaped paragraph.
    rooms = [width - 6 for width in widths]
    cell = styles()["tiny"]

    def wrapped(text: str, room: float) -> str | Paragraph:
        return text if pdfmetrics.stringWidth(text, regular, 7) <= room else Paragraph(esc(text), cell)

    data = []
    for row in rows:
        evidence = "none"
        if row.observed_on is not None:
            evidence = f"{row.observed_on.isoformat()} · {row.age_days:.0f} d"
            if row.source:
                evidence += f" · {row.source}"
        data.append(
            [
                wrapped(row.ident, rooms[0]),
                wrapped(row.title, rooms[1]),
                charts.fit(row.area, rooms[2], regular, 7),
                "—" if row.level is None else str(row.level),
                wrapped(row.state, rooms[4]),
                wrapped(evidence, rooms[5]),
            ]
        )
    intro = (
        f"{len(rows)} requirement(s): checklist items, metrics with a target and controlled documents, with the "
        "state the maturity engine gave each on the as-of date and the evidence it used (observed date, age in "
        "days, source)."
    )
    header = ["Ref or key", "Requirement", "Area", "Lvl", "State", "Evidence"]
    if not data:
        return [
            heading("Appendix: every requirement"),
            para("The program has no requirements yet.", "small"),
        ]
    return [
        heading("Appendix: every requirement"),
        para(intro, "small"),
        Spacer(0, 4),
        table(header, data, widths, long=True, size=7),
    ]
