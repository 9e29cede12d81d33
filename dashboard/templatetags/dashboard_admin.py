from __future__ import annotations

from typing import Any

from django import template

from dashboard.selectors import program_summaries
from roadmap.models import Program

register = template.Library()


@register.inclusion_tag("admin/dashboard/program_attention.html", takes_context=True)
def program_attention(context: dict[str, Any]) -> dict[str, Any]:
    """The admin index's panel: each of the user's programs, its progress and what needs attention."""
    user = context["request"].user
    programs = Program.objects.for_user(user).exclude(status=Program.Status.CLOSED).order_by("title")
    return {"summaries": program_summaries(programs)}
