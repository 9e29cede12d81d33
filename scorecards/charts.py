"""The scorecard's charts as reportlab `Drawing`s, from plain data.

Pure functions: numbers and strings in, a drawing out, no database. The PDF places them as flowables; a web page
can render the same drawings to SVG with `reportlab.graphics.renderSVG.drawToString`. Text in a drawing is
drawn as given (never parsed as markup), so user text needs no escaping here, only shortening to fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

RAG_COLOURS = {
    "grey": colors.HexColor("#6b7280"),
    "blue": colors.HexColor("#1d4ed8"),
    "green": colors.HexColor("#15803d"),
    "amber": colors.HexColor("#b45309"),
    "red": colors.HexColor("#b91c1c"),
}
INK = colors.HexColor("#111827")
MUTED = colors.HexColor("#6b7280")
ACCENT = colors.HexColor("#1e3a8a")
GRID = colors.HexColor("#e5e7eb")


def score_colour(score: float | None) -> colors.Color:
    """Red below 40, amber below 70, green from 70; grey when there is no score."""
    if score is None:
        return RAG_COLOURS["grey"]
    if score < 40:
        return RAG_COLOURS["red"]
    if score < 70:
        return RAG_COLOURS["amber"]
    return RAG_COLOURS["green"]


def fit(text: str, width: float, font: str, size: float) -> str:
    """`text` shortened with an ellipsis until it fits `width` points."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def area_chart(
    areas: Sequence[tuple[str, float | None]], *, width: float = 480, font: str = "Helvetica"
) -> Drawing:
    """Horizontal bars of each capability area's score (0–100), the first area on top."""
    if not areas:
        return _empty(width, 40, "No capability areas scored yet.", font)
    size = 8
    label_width = min(max(stringWidth(name, font, size) for name, _ in areas) + 8, width * 0.4)
    bar_space = 16
    height = len(areas) * bar_space + 30
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = label_width, 20
    chart.width, chart.height = width - label_width - 36, len(areas) * bar_space
    chart.data = [[score or 0 for _, score in areas]]
    chart.categoryAxis.categoryNames = [fit(name, label_width - 8, font, size) for name, _ in areas]
    chart.categoryAxis.reverseDirection = 1
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = size
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.categoryAxis.strokeColor = MUTED
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = size
    chart.valueAxis.strokeColor = MUTED
    chart.valueAxis.visibleGrid = 1
    chart.valueAxis.gridStrokeColor = GRID
    chart.bars.strokeColor = None
    chart.barWidth = 10
    chart.groupSpacing = 6
    for position, (_, score) in enumerate(areas):
        chart.bars[(0, position)].fillColor = score_colour(score)
    chart.barLabelFormat = "values"
    chart.barLabelArray = [["—" if score is None else f"{score:.1f}" for _, score in areas]]
    chart.barLabels.fontName = font
    chart.barLabels.fontSize = size
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    drawing.add(chart)
    return drawing


def trend_chart(
    points: Sequence[tuple[date, float | None]],
    *,
    width: float = 480,
    height: float = 150,
    font: str = "Helvetica",
) -> Drawing:
    """The score over the stored snapshots (x: date, y: 0–100)."""
    data = [(day.toordinal(), score) for day, score in points if score is not None]
    if not data:
        return _empty(width, 40, "No stored snapshots with a score yet.", font)
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y = 34, 24
    plot.width, plot.height = width - 50, height - 36
    plot.data = [data]
    first, last = data[0][0], data[-1][0]
    if last - first < 14:  # a lone point or a short run still gets a readable axis
        first, last = first - 7, last + 7
    span = last - first
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = first, last
    plot.xValueAxis.valueStep = max(1, span // 6)
    plot.xValueAxis.labelTextFormat = lambda value: date.fromordinal(int(value)).strftime("%d %b %y")
    plot.xValueAxis.labels.fontName = font
    plot.xValueAxis.labels.fontSize = 7
    plot.xValueAxis.strokeColor = MUTED
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax, plot.yValueAxis.valueStep = 0, 100, 20
    plot.yValueAxis.labels.fontName = font
    plot.yValueAxis.labels.fontSize = 7
    plot.yValueAxis.strokeColor = MUTED
    plot.yValueAxis.visibleGrid = 1
    plot.yValueAxis.gridStrokeColor = GRID
    plot.lines[0].strokeColor = ACCENT
    plot.lines[0].strokeWidth = 1.5
    if len(data) <= 40:
        plot.lines[0].symbol = makeMarker("FilledCircle", size=3, fillColor=ACCENT, strokeColor=ACCENT)
    drawing.add(plot)
    return drawing


def sparkline(values: Sequence[float], *, width: float = 64, height: float = 14) -> Drawing:
    """A tiny line of the last measurements, oldest to newest, scaled to its own range; the latest is a dot."""
    drawing = Drawing(width, height)
    if not values:
        drawing.add(Line(0, height / 2, width, height / 2, strokeColor=GRID, strokeWidth=1))
        return drawing
    low, high = min(values), max(values)
    spread = (high - low) or 1.0
    pad = 2.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    coordinates: list[float] = []
    for position, value in enumerate(values):
        x = pad + position * step if len(values) > 1 else width / 2
        y = pad + (value - low) / spread * (height - 2 * pad) if high != low else height / 2
        coordinates.extend((x, y))
    if len(values) > 1:
        drawing.add(PolyLine(coordinates, strokeColor=ACCENT, strokeWidth=1))
    drawing.add(Circle(coordinates[-2], coordinates[-1], 1.6, fillColor=ACCENT, strokeColor=None))
    return drawing


def phase_strip(
    phases: Sequence[Mapping[str, Any]],
    *,
    width: float = 480,
    font: str = "Helvetica",
    bold: str = "Helvetica-Bold",
) -> Drawing:
    """One box per phase, left to right: code and RAG, name, progress and the forecast or window.

    Each phase is a mapping with `code`, `name`, `rag` and optional `progress` and `note` lines.
    """
    if not phases:
        return _empty(width, 30, "No phases defined.", font)
    height = 62
    gap = 6
    box = (width - gap * (len(phases) - 1)) / len(phases)
    drawing = Drawing(width, height)
    for position, phase in enumerate(phases):
        x = position * (box + gap)
        colour = RAG_COLOURS.get(str(phase.get("rag")), RAG_COLOURS["grey"])
        drawing.add(Rect(x, 0, box, height, fillColor=colors.white, strokeColor=GRID, strokeWidth=1))
        drawing.add(Rect(x, height - 16, box, 16, fillColor=colour, strokeColor=None))
        inner = box - 8
        heading = f"{phase.get('code', '')} · {str(phase.get('rag', 'grey')).upper()}"
        drawing.add(
            String(
                x + 4,
                height - 12,
                fit(heading, inner, bold, 8),
                fontName=bold,
                fontSize=8,
                fillColor=colors.white,
            )
        )
        lines = [(str(phase.get("name", "")), bold, 8, INK)]
        lines += [(str(phase[key]), font, 7, MUTED) for key in ("progress", "note") if phase.get(key)]
        for line, (text, face, size, colour_) in enumerate(lines):
            drawing.add(
                String(
                    x + 4,
                    height - 28 - 11 * line,
                    fit(text, inner, face, size),
                    fontName=face,
                    fontSize=size,
                    fillColor=colour_,
                )
            )
    return drawing


def _empty(width: float, height: float, message: str, font: str) -> Drawing:
    drawing = Drawing(width, height)
    drawing.add(String(0, height / 2 - 4, message, fontName=font, fontSize=9, fillColor=MUTED))
    return drawing
