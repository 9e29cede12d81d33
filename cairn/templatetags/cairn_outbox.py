from __future__ import annotations

from typing import Any

from django import template

from cairn import outbox

register = template.Library()


@register.simple_tag(takes_context=True)
def background_work_delayed(context: dict[str, Any]) -> str:
    """The banner's text when tasks have waited over a minute for the broker, else "". One query, for
    signed-in users only (the login page shares the dashboard's base template)."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    if outbox.delayed_since() is None:
        return ""
    return outbox.DELAYED_MESSAGE
