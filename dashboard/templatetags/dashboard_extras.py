from __future__ import annotations

from django import template
from django.utils.html import format_html

from scorecards.report import change

register = template.Library()

ARROWS = {"up": "▲", "down": "▼", "flat": "▶"}


@register.simple_tag
def trend(current: float | None, previous: float | None, digits: int = 1, unit: str = "") -> str:
    """An arrow and the change against the previous figure, rounded as the PDF rounds it, spelled out for
    screen readers."""
    moved = change(current, previous, digits)
    if moved is None:
        return ""
    direction, figure = moved
    words = "unchanged" if direction == "flat" else f"{direction} {figure.lstrip('+-')}{unit}"
    return format_html(
        '<span class="{}" title="{}">{} {}{}</span>', direction, words, ARROWS[direction], figure, unit
    )
