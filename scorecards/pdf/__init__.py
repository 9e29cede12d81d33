"""The executive scorecard as a PDF (reportlab platypus), rendered from a `ScorecardReport`.

Page 1 answers "where are we, are we on track, what needs my decision"; the pages after it back every number:
areas, trend, phases against plan, metrics, document control, waivers, top risks and an appendix of every
requirement with its evidence. The same report and template always give the same bytes: reportlab runs in
invariant mode and the document carries no wall-clock time, only the snapshot's as-of date.

User text (titles, names, reasons) reaches paragraph markup only through `esc`, so `<b>` or `<img src=…>` in a
title prints as written and nothing is fetched or interpreted.
"""

from scorecards.pdf.layout import TEMPLATE_VERSION, Rendered, esc, fonts
from scorecards.pdf.pages import appendix, render_appendix_alone, render_scorecard

__all__ = [
    "TEMPLATE_VERSION",
    "Rendered",
    "appendix",
    "esc",
    "fonts",
    "render_appendix_alone",
    "render_scorecard",
]
