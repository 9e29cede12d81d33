"""The scorecard's page machinery: a Unicode font, paragraph styles, escaping, tables, and an A4 document whose
pages all carry a footer saying "page x of y", the program, the as-of date, the model and the inputs hash.

Rendering is deterministic: reportlab runs in invariant mode and nothing here reads the clock.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    LongTable,
    PageTemplate,
    Paragraph,
    Table,
    TableStyle,
)

from scorecards import charts

# Bump when the layout or wording changes: a scorecard records the template that rendered it.
TEMPLATE_VERSION = "SC-1"
FONT, FONT_BOLD = "CairnSans", "CairnSans-Bold"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 16 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
FOOTER_SPACE = 14 * mm
# Frames without padding, so tables and drawings CONTENT_WIDTH wide line up with the margins.
FLUSH = {"leftPadding": 0, "rightPadding": 0, "topPadding": 0, "bottomPadding": 0}


@dataclass(frozen=True)
class Rendered:
    content: bytes
    pages: int


# --- fonts and text --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def fonts() -> tuple[str, str]:
    """Register a Unicode TTF family: Debian's DejaVu Sans when installed, else the Vera reportlab ships."""
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        bundled = Path(reportlab.__file__).resolve().parent / "fonts"
        regular, bold = bundled / "Vera.ttf", bundled / "VeraBd.ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(regular)))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)
    return FONT, FONT_BOLD


def glyph(char: str, fallback: str) -> str:
    """`char` when the registered font draws it (Vera has no arrows), else an ASCII stand-in."""
    face = pdfmetrics.getFont(fonts()[0]).face
    return char if ord(char) in getattr(face, "charToGlyph", {}) else fallback


def esc(value: object) -> str:
    """User text made safe for paragraph markup: &, < and > become entities, so nothing is interpreted."""
    return escape(str(value))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def number(value: float | None, digits: int = 1, empty: str = "—") -> str:
    return empty if value is None else f"{value:.{digits}f}"


def decimal_text(value: Any) -> str:
    return "—" if value is None else f"{value.normalize():f}"


@lru_cache(maxsize=1)
def styles() -> dict[str, ParagraphStyle]:
    regular, bold = fonts()
    base = ParagraphStyle("base", fontName=regular, fontSize=9, leading=12, textColor=charts.INK)
    return {
        "base": base,
        "summary": ParagraphStyle("summary", parent=base, fontSize=10, leading=14),
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=charts.MUTED),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10),
        "tiny": ParagraphStyle("tiny", parent=base, fontSize=7, leading=8.6),
        "header": ParagraphStyle(
            "header", parent=base, fontName=bold, fontSize=8, leading=10, textColor=colors.white
        ),
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=22, leading=27, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=12, leading=16, textColor=charts.MUTED),
        "h1": ParagraphStyle(
            "h1", parent=base, fontName=bold, fontSize=14, leading=18, spaceBefore=10, spaceAfter=6
        ),
        "h2": ParagraphStyle(
            "h2", parent=base, fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4
        ),
        "kpi_label": ParagraphStyle(
            "kpi_label", parent=base, fontSize=7.5, leading=9, textColor=charts.MUTED
        ),
        "kpi_value": ParagraphStyle("kpi_value", parent=base, fontName=bold, fontSize=20, leading=24),
        "kpi_note": ParagraphStyle("kpi_note", parent=base, fontSize=7.5, leading=9.5),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
    }


def para(text: object, style: str = "base") -> Paragraph:
    """A paragraph of plain (user) text."""
    return Paragraph(esc(text), styles()[style])


def lines(*parts: object, style: str = "cell") -> Paragraph:
    """Plain text parts, one per line."""
    return Paragraph("<br/>".join(esc(part) for part in parts if part not in (None, "")), styles()[style])


def heading(text: str, style: str = "h1") -> Paragraph:
    return Paragraph(esc(text), styles()[style])


# --- pages -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Footer:
    left: str
    model: str


class _PagedCanvas(Canvas):
    """Holds every page until the end so each footer can say "page x of y"."""

    def __init__(self, *args: Any, footer: Footer, pages: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._page_count = pages
        self._held: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._held.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._held)
        for state in self._held:
            self.__dict__.update(state)
            self._draw_footer(total)
            super().showPage()
        self._page_count.append(total)
        super().save()

    def _draw_footer(self, total: int) -> None:
        regular, _ = fonts()
        y = MARGIN * 0.55
        self.saveState()
        self.setStrokeColor(charts.GRID)
        self.line(MARGIN, y + 16, PAGE_WIDTH - MARGIN, y + 16)
        self.setFont(regular, 7)
        self.setFillColor(charts.MUTED)
        page = f"Page {self._pageNumber} of {total}"
        self.drawRightString(PAGE_WIDTH - MARGIN, y + 7, page)
        room = CONTENT_WIDTH - pdfmetrics.stringWidth(page, regular, 7) - 12
        self.drawString(MARGIN, y + 7, charts.fit(self._footer.left, room, regular, 7))
        self.setFont(regular, 6.5)
        self.drawString(MARGIN, y - 1, self._footer.model)
        self.restoreState()


def _cover_band(canvas: Canvas, doc: BaseDocTemplate) -> None:
    _, bold = fonts()
    canvas.saveState()
    canvas.setFillColor(charts.ACCENT)
    canvas.rect(0, PAGE_HEIGHT - 12 * mm, PAGE_WIDTH, 12 * mm, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont(bold, 9)
    canvas.drawString(MARGIN, PAGE_HEIGHT - 7.5 * mm, "CAIRN · EXECUTIVE SCORECARD")
    canvas.restoreState()


class ScorecardDocument(BaseDocTemplate):
    def __init__(self, buffer: io.BytesIO, *, title: str, subject: str) -> None:
        super().__init__(
            buffer,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN + FOOTER_SPACE / 2,
            title=title,
            subject=subject,
            author="Cairn",
            creator=f"Cairn scorecard template {TEMPLATE_VERSION}",
            invariant=1,
        )
        height = PAGE_HEIGHT - self.topMargin - self.bottomMargin
        self.addPageTemplates(
            [
                PageTemplate(
                    id="cover",
                    frames=[
                        Frame(MARGIN, self.bottomMargin, CONTENT_WIDTH, height - 8 * mm, id="cover", **FLUSH)
                    ],
                    onPage=_cover_band,
                ),
                PageTemplate(
                    id="body",
                    frames=[Frame(MARGIN, self.bottomMargin, CONTENT_WIDTH, height, id="body", **FLUSH)],
                ),
            ]
        )


def build(flowables: list[Flowable], *, footer: Footer, title: str, subject: str) -> Rendered:
    buffer = io.BytesIO()
    pages: list[int] = []
    document = ScorecardDocument(buffer, title=title, subject=subject)

    def canvas_maker(*args: Any, **kwargs: Any) -> _PagedCanvas:
        return _PagedCanvas(*args, footer=footer, pages=pages, **kwargs)

    document.build(flowables, canvasmaker=canvas_maker)
    return Rendered(content=buffer.getvalue(), pages=pages[0])


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    *,
    extra: Sequence[tuple[Any, ...]] = (),
    long: bool = False,
    size: float = 8,
) -> Table:
    """A table whose header row repeats on every page; strings are drawn as plain text, never as markup."""
    s = styles()
    data = [[Paragraph(esc(text), s["header"]) for text in header], *rows]
    table = (LongTable if long else Table)(data, colWidths=list(widths), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), fonts()[0], size),
                ("BACKGROUND", (0, 0), (-1, 0), charts.ACCENT),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4f6")]),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, charts.GRID),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                *extra,
            ]
        )
    )
    return table


def cells(widths: Sequence[float]) -> list[float]:
    return [CONTENT_WIDTH * share for share in widths]


def tint(rag: str) -> colors.Color:
    colour = charts.RAG_COLOURS.get(rag, charts.RAG_COLOURS["grey"])
    return colors.Color(colour.red, colour.green, colour.blue, alpha=0.18)
