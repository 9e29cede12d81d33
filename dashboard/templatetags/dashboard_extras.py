from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def trend(current: float | None, previous: float | None, unit: str = "") -> str:
    """An arrow and the change against the previous figure, spelled out for screen readers."""
    if current is None or previous is None:
        return ""
    delta = round(current - previous, 2)
    if delta > 0:
        return format_html('<span class="up" title="up {}{}">▲ +{}{}</span>', delta, unit, delta, unit)
    if delta < 0:
        return format_html('<span class="down" title="down {}{}">▼ {}{}</span>', -delta, unit, delta, unit)
    return format_html('<span class="flat" title="unchanged">▶ 0{}</span>', unit)
